"""Training configuration: presets, overrides from a config file and the command line, and saving."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from segmentation.network import NetworkConfig
from segmentation.preprocessing import Preprocessing
from trainer.data import Source

DEFAULT_DATA_ENV = "LESIONLENS_DATA"
QUALITY_BAR_DICE = 0.88  # the product's bar for the bundled model: mean Dice over the validation images


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` in the run folder."""

    variant: str = "full"
    base_width: int = 16
    input_height: int = 224
    input_width: int = 224
    interpolation: str = "bicubic"
    epochs: int = 250
    batch_size: int = 16
    learning_rate: float = 3e-4
    schedule: str = "step"  # step | cosine | onecycle | constant
    step_epochs: int = 20  # "step": divide by 10 every step_epochs
    step_factor: float = 0.1
    warmup_fraction: float = 0.03  # cosine / onecycle
    weight_decay: float = 0.0
    repeats: int = 4  # each training image this many times per epoch, freshly augmented (the paper's 4x)
    augment: bool = True
    # Augmentation (trainer.data.Augmentation): the paper's operations, then those aimed at the failure modes.
    flip_probability: float = 0.5
    sharpen_probability: float = 0.5
    rotate_probability: float = 0.5
    max_rotation_degrees: float = 90.0
    scale_probability: float = 0.0
    scale_min: float = 0.7
    scale_max: float = 1.4
    photometric_probability: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.25
    saturation: float = 0.3
    hue_degrees: float = 10.0
    gamma: float = 0.25
    focal_gamma: float = 2.0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = False
    seed: int = 0
    num_workers: int = 1
    time_budget_minutes: float = 0.0  # >0: the schedule runs on elapsed time and training stops at the budget
    max_steps: int = 0  # >0: stop after this many optimiser steps (smoke tests, ablation step budgets)
    train_images: str = ""
    train_masks: str = ""
    train_name: str = "isic2017"  # the first training source's name (recorded in the weights' metadata)
    train_share: float = 0.0  # its sampling share; 0: in proportion to its image count
    sources: tuple = ()  # further training sources: {"name", "images", "masks", "share"} each
    epoch_images: int = 0  # draws per epoch; 0: all sources' images times ``repeats``
    val_images: str = ""
    val_masks: str = ""
    holdout_images: str = ""  # a second validation set (the HAM10000 hold-out): logged, never used for selection
    holdout_masks: str = ""
    cache_dir: str = "data/cache"
    init_weights: str = ""  # an exported weights file this run started from, with fresh counters (fine-tuning)
    warm_start: str = ""  # an exported weights file this run continued from (its run folder was lost)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.input_height, self.input_width)

    @property
    def network(self) -> NetworkConfig:
        """The network this run trains: the one place the trainer builds it from the options."""
        return NetworkConfig(variant=self.variant, base_width=self.base_width)

    @property
    def preprocessing(self) -> Preprocessing:
        """How this run resizes and normalises images: written into the exported weights."""
        return Preprocessing(input_size=self.input_size, interpolation=self.interpolation)

    def training_sources(self) -> list[Source]:
        """Every training source, the first one (``train_images``/``train_masks``) included."""
        first = Source(self.train_name, self.train_images, self.train_masks, self.train_share)
        return [first, *(Source(**dict(source)) for source in self.sources)]

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        return cls().override(json.loads(Path(path).read_text()))

    def override(self, values: dict) -> TrainConfig:
        """A copy with ``values`` applied; unknown keys are an error naming them."""
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        cast = {key: _cast(getattr(self, key), value) for key, value in values.items()}
        return replace(self, **cast)


def _cast(default, value):
    if isinstance(default, tuple):
        return tuple(dict(item) for item in value)
    if isinstance(default, bool) and isinstance(value, str):
        return value.lower() in {"1", "true", "yes", "on"}
    return type(default)(value)


PRESETS: dict[str, dict] = {
    # The paper's recipe, Sec. III-E. The paper gives no channel width; 16 keeps the CPU forward pass in budget.
    "paper": {},
    # The best model two CPU cores can train: chosen by measurement, see docs/CPU_PRESET.md.
    "cpu": {
        "input_height": 128,
        "input_width": 160,
        "epochs": 60,
        "learning_rate": 1e-3,
        "schedule": "cosine",
        "repeats": 1,
        "precision": "auto",  # bf16 where AMX makes it 2.4x faster, fp32 elsewhere (docs/CPU_PRESET.md)
        # Aimed at the v1 model's failures (faint and pink lesions, lesions filling the frame): docs/training/.
        "scale_probability": 0.5,
        "photometric_probability": 0.8,
    },
    # A few steps on tiny inputs: smoke tests and CI.
    "smoke": {
        "base_width": 4,
        "input_height": 48,
        "input_width": 64,
        "epochs": 2,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "repeats": 1,
        "precision": "fp32",
        "num_workers": 0,
    },
}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig().override(PRESETS[name])
