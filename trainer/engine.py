"""The training loop: reads like the method section, details in small overridable steps (nnU-Net style)."""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from segmentation.imageio import read_mask
from segmentation.inference import select_device, upsample_probability
from segmentation.metrics import METRIC_NAMES, ConfusionCounts, scores
from segmentation.network import build_model
from trainer import checkpoint
from trainer.config import TrainConfig
from trainer.data import Augmentation, CachedSplit, SegmentationDataset, find_samples, worker_init
from trainer.determinism import set_determinism
from trainer.losses import DiceFocalLoss
from trainer.plots import plot_curves

LOG_FIELDS = (
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "val_dice",
    "val_jaccard",
    "holdout_dice",
    "learning_rate",
    "seconds",
    "images_per_second",
)


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; a plain run is a world of one."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        return cls(rank=dist.get_rank(), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def resolve_precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the hardware runs it natively, fp16 on older GPUs, else full precision."""
    if requested == "fp32":
        return None
    if requested == "fp16":
        return torch.float16
    if requested == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_amx():
        return torch.bfloat16
    return None


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles, where bf16 training clearly beats fp32.

    With AVX-512 BF16 alone it does not always: on this project's 2-core Xeon, bf16 autocast trained the width-16
    network at 6.1-6.3 images/s against 7.7-8.0 in fp32 at 128x160 (2.6 against 2.35 at 224x224); on a 2-core Xeon
    with AMX, bf16 trained at 17.1 images/s against 7.1 in fp32. See docs/CPU_PRESET.md; ``--precision bf16``
    still forces it.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def learning_rate_factor(config: TrainConfig, progress: float, epoch: int) -> float:
    """Multiplier of the base learning rate; ``progress`` in 0..1 of the whole run."""
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "step":
        return config.step_factor ** (epoch // max(1, config.step_epochs))
    warmup = config.warmup_fraction
    if config.schedule == "onecycle":
        if progress < 0.3:
            return 0.04 + 0.96 * (1 - math.cos(math.pi * progress / 0.3)) / 2
        return 1e-3 + (1 - 1e-3) * (1 + math.cos(math.pi * (progress - 0.3) / 0.7)) / 2
    if config.schedule == "cosine":
        if progress < warmup:
            return max(progress / warmup, 0.01)
        return 0.01 + 0.99 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup)))) / 2
    raise ValueError(f"unknown schedule {config.schedule!r}")


class Trainer:
    """Train one model on one split, validate each epoch, keep the best and last checkpoints in ``run_dir``."""

    def __init__(
        self, config: TrainConfig, run_dir: str | os.PathLike, *, device: str = "auto", quiet: bool = False
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.quiet = quiet
        self.distributed = Distributed.from_environment()
        self.device = self._device(device)
        set_determinism(config.seed + self.distributed.rank)
        self.autocast_dtype = resolve_precision(config.precision, self.device)
        self.preprocessing = config.preprocessing
        self.model = build_model(config.network).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.network = (
            DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.distributed.world_size > 1
            else self.model
        )
        self.loss = DiceFocalLoss(gamma=config.focal_gamma)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.epoch = 0
        self.step = 0
        self.elapsed = 0.0
        self.best_dice = -1.0
        self._setup_data()

    def _device(self, requested: str) -> torch.device:
        if self.distributed.world_size > 1 and torch.cuda.is_available():
            torch.cuda.set_device(self.distributed.local_rank)
            return torch.device("cuda", self.distributed.local_rank)
        return select_device(requested)

    def _setup_data(self) -> None:
        config = self.config
        sources = config.training_sources()
        train_samples = [source.samples() for source in sources]
        val_samples = find_samples(config.val_images, config.val_masks)
        holdout_samples = self._holdout_samples()
        # Rank 0 builds the caches first so other ranks only read them.
        if not self.distributed.is_main:
            dist.barrier()
        train_splits = [CachedSplit(samples, self.preprocessing, config.cache_dir) for samples in train_samples]
        self.val_split = CachedSplit(val_samples, self.preprocessing, config.cache_dir)
        self.holdout_split = (
            CachedSplit(holdout_samples, self.preprocessing, config.cache_dir) if holdout_samples else None
        )
        if self.distributed.is_main and self.distributed.world_size > 1:
            dist.barrier()
        self.val_truth = [read_mask(s.mask) for s in val_samples]
        self.holdout_truth = [read_mask(s.mask) for s in holdout_samples]
        self.train_set = SegmentationDataset(
            train_splits,
            augmentation=Augmentation.from_config(config) if config.augment else None,
            repeats=config.repeats,
            seed=config.seed,
            shares=[source.share for source in sources],
            epoch_length=config.epoch_images,
        )
        self.val_set = SegmentationDataset(self.val_split)
        self.holdout_set = SegmentationDataset(self.holdout_split) if self.holdout_split else None
        self.source_images = {source.name: len(split) for source, split in zip(sources, train_splits, strict=True)}

    def _holdout_samples(self) -> list:
        """The second validation set: the committed hold-out's images found in ``holdout_images``."""
        if not self.config.holdout_images:
            return []
        from trainer.splits import held_out_image_ids

        held_out = held_out_image_ids()
        samples = [
            s for s in find_samples(self.config.holdout_images, self.config.holdout_masks) if s.image_id in held_out
        ]
        if not samples:
            raise ValueError(f"{self.config.holdout_images}: none of the committed hold-out images is in this folder")
        return samples

    def _loader(self, epoch: int) -> DataLoader:
        self.train_set.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        sampler = None
        if self.distributed.world_size > 1:
            sampler = DistributedSampler(
                self.train_set,
                num_replicas=self.distributed.world_size,
                rank=self.distributed.rank,
                shuffle=True,
                seed=self.config.seed,
                drop_last=True,
            )
            sampler.set_epoch(epoch)
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator,
            drop_last=True,
            num_workers=self.config.num_workers,
            worker_init_fn=worker_init if self.config.num_workers else None,
            pin_memory=self.device.type == "cuda",
        )

    # -- the loop -------------------------------------------------------------------------------------------------
    def fit(self) -> float:
        """Train until the epoch count, step budget or time budget is reached; returns the best validation Dice."""
        if self.distributed.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.run_dir / "config.json")
        while self.epoch < self.config.epochs and not self._budget_spent():
            started = time.perf_counter()
            train_loss, images = self.train_epoch()
            seconds = time.perf_counter() - started
            self.epoch += 1
            if self.distributed.is_main:
                val_loss, val_scores = self.validation_step()
                self.end_of_epoch(train_loss, val_loss, val_scores, seconds, images)
            if self.distributed.world_size > 1:
                dist.barrier()
        return self.best_dice

    def train_epoch(self) -> tuple[float, int]:
        self.network.train()
        loader = self._loader(self.epoch)
        total, batches, images = 0.0, 0, 0
        started = time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            disable=self.quiet or not self.distributed.is_main,
            mininterval=1.0 if sys.stderr.isatty() else 60.0,
            leave=False,
        )
        for image, mask in bar:
            self.set_learning_rate(self.elapsed + time.perf_counter() - started)
            loss = self.train_step(image, mask)
            total += loss
            batches += 1
            images += image.shape[0]
            self.step += 1
            bar.set_postfix(loss=f"{total / batches:.4f}", refresh=False)
            if self._budget_spent(time.perf_counter() - started):
                break
        self.elapsed += time.perf_counter() - started
        return total / max(1, batches), images * self.distributed.world_size

    def train_step(self, image: torch.Tensor, mask: torch.Tensor) -> float:
        image, mask = image.to(self.device, non_blocking=True), mask.to(self.device, non_blocking=True)
        if self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            logits = self.network(image)
        loss = self.loss(logits.float(), mask)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    @torch.inference_mode()
    def validation_step(self) -> tuple[float, dict[str, float]]:
        """Loss at model resolution; Dice and Jaccard on each image's own mask at its own size (as reported).

        With a hold-out set, its mean Dice is added as ``holdout_dice`` (logged, never used to select).
        """
        loss, scores_ = self.score(self.val_set, self.val_truth)
        if self.holdout_set is not None:
            scores_["holdout_dice"] = self.score(self.holdout_set, self.holdout_truth)[1]["dice"]
        return loss, scores_

    @torch.inference_mode()
    def score(self, dataset: SegmentationDataset, truths: list[np.ndarray]) -> tuple[float, dict[str, float]]:
        self.model.eval()
        counts, losses = [], []
        loader = DataLoader(dataset, batch_size=self.config.batch_size, shuffle=False)
        index = 0
        for image, mask in loader:
            image = image.to(self.device)
            with torch.autocast(
                self.device.type,
                dtype=self.autocast_dtype or torch.float32,
                enabled=self.autocast_dtype is not None,
            ):
                logits = self.model(image).float()
            losses.append(float(self.loss(logits, mask.to(self.device))) * image.shape[0])
            for probability in torch.sigmoid(logits)[:, 0].cpu().numpy():
                truth = truths[index]
                prediction = upsample_probability(probability, truth.shape) >= 0.5
                counts.append(ConfusionCounts.from_masks(prediction, truth))
                index += 1
        per_image = [scores(c) for c in counts]
        mean = {name: float(np.mean([s[name] for s in per_image])) for name in METRIC_NAMES}
        return sum(losses) / len(dataset), mean

    def end_of_epoch(
        self, train_loss: float, val_loss: float, scores: dict[str, float], seconds: float, images: int
    ) -> None:
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": round(train_loss, 5),
            "val_loss": round(val_loss, 5),
            "val_dice": round(scores["dice"], 5),
            "val_jaccard": round(scores["jaccard"], 5),
            "holdout_dice": round(scores["holdout_dice"], 5) if "holdout_dice" in scores else "",
            "learning_rate": f"{self.optimizer.param_groups[0]['lr']:.3g}",
            "seconds": round(seconds, 1),
            "images_per_second": round(images / max(seconds, 1e-9), 2),
        }
        log = self.run_dir / "log.csv"
        new = not log.exists()
        with log.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        improved = scores["dice"] > self.best_dice
        if improved:
            self.best_dice = scores["dice"]
        state = self.state_dict()
        if improved:  # best.pt first: a kill between the two never leaves a best Dice without its best.pt
            checkpoint.save(self.run_dir / "best.pt", state)
        checkpoint.save(self.run_dir / "last.pt", state)
        plot_curves(log, self.run_dir / "curves.png", batch_size=self.config.batch_size)
        if not self.quiet:
            holdout = f", hold-out Dice {scores['holdout_dice']:.4f}" if "holdout_dice" in scores else ""
            print(
                f"epoch {self.epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, val Dice "
                f"{scores['dice']:.4f}{' (best)' if improved else ''}{holdout}, {seconds:.0f} s, "
                f"{row['images_per_second']} img/s",
                flush=True,
            )

    # -- schedule and budgets ---------------------------------------------------------------------------------------
    def set_learning_rate(self, elapsed: float) -> None:
        config = self.config
        if config.time_budget_minutes > 0:
            progress = elapsed / (60.0 * config.time_budget_minutes)
        elif config.max_steps > 0:
            progress = self.step / config.max_steps
        else:
            steps_per_epoch = max(1, len(self.train_set) // (config.batch_size * self.distributed.world_size))
            progress = self.step / (steps_per_epoch * config.epochs)
        factor = learning_rate_factor(config, min(progress, 1.0), self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate * factor

    def _budget_spent(self, extra_seconds: float = 0.0) -> bool:
        config = self.config
        if config.max_steps and self.step >= config.max_steps:
            return True
        return config.time_budget_minutes > 0 and self.elapsed + extra_seconds >= 60.0 * config.time_budget_minutes

    # -- checkpoints ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "elapsed": self.elapsed,
            "best_dice": self.best_dice,
            "config": self.config.to_dict(),
            "source_images": self.source_images,
            "rng": checkpoint.rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.elapsed, self.best_dice = float(state["elapsed"]), float(state["best_dice"])
        checkpoint.restore_rng(state["rng"])

    def warm_start(self, weights: str | os.PathLike, log: str | os.PathLike | None = None) -> None:
        """Continue a run whose folder is lost from its exported weights (the bundled model, say).

        The model's tensors and the run's counters (epoch, step, training time, best Dice) come from the weights
        file's metadata, so the learning-rate schedule carries on where the exported epoch left it; the optimiser's
        moments are not in an exported file and start afresh. ``log`` (the lost run's ``log.csv``, for example the
        copy in ``docs/training/``) supplies the earlier epochs' rows so the run's log and curves stay whole.
        """
        info = self._load_tensors(weights)
        training = info.training
        self.epoch = int(training.get("epochs_run", 0))
        self.step = int(training.get("steps", 0))
        self.elapsed = float(training.get("training_seconds", 0.0))
        self.best_dice = float(info.validation.get("val_dice_mean_at_selection", -1.0))
        self.config = self.config.override({"warm_start": str(weights)})
        if log is not None and self.distributed.is_main:
            with open(log, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= self.epoch]
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with (self.run_dir / "log.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
                writer.writeheader()
                writer.writerows(rows)

    def initialise_from(self, weights: str | os.PathLike) -> None:
        """Start a new run (fresh counters and schedule) from an exported model's tensors: fine-tuning arms that
        must all start from the same point. The input size may differ (the network is fully convolutional): the
        capacity arm fine-tunes the 128x160 model at a larger input."""
        self._load_tensors(weights, same_input_size=False)
        self.config = self.config.override({"init_weights": str(weights)})

    def _load_tensors(self, weights: str | os.PathLike, *, same_input_size: bool = True):
        from segmentation.weights import load_weights

        model, info = load_weights(weights)
        expected = self.config.network
        if info.network != expected:
            raise ValueError(f"{weights}: weights are for {info.network}, this run trains {expected}")
        if same_input_size and tuple(info.preprocessing.input_size) != self.config.input_size:
            raise ValueError(
                f"{weights}: weights were trained at {info.preprocessing.input_size}, this run at "
                f"{self.config.input_size}"
            )
        self.model.load_state_dict(model.state_dict())
        return info

    def resume(self) -> None:
        """Continue from ``last.pt``; log rows written after that checkpoint (a killed epoch) are dropped."""
        self.load_state_dict(checkpoint.load(self.run_dir / "last.pt", map_location=self.device))
        # Killed after best.pt and before last.pt: best.pt is better than last.pt knows; never overwrite it with worse.
        self.best_dice = max(self.best_dice, checkpoint.recorded_best_dice(self.run_dir / "best.pt") or -1.0)
        log = self.run_dir / "log.csv"
        if log.exists() and self.distributed.is_main:
            with log.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= self.epoch]
            with log.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
                writer.writeheader()
                writer.writerows(rows)


def images_per_second(log: Path) -> float:
    with log.open(newline="") as handle:
        values = [float(row["images_per_second"]) for row in csv.DictReader(handle)]
    return float(np.median(values)) if values else 0.0
