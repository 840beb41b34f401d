"""Hold-out splits that are committed before any training on them: HAM10000 split by ``lesion_id``, never by image.

The split file lists both the lesion ids and the image ids, so a reader needs no metadata to exclude or select
the hold-out images. :func:`ham10000_holdout` rebuilds the split deterministically from the metadata: a test checks
that the committed file is exactly what the rule gives, so nobody can move an image across after seeing results.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
HAM10000_HOLDOUT = SPLITS_DIR / "ham10000_holdout.json"
HOLDOUT_FRACTION = 0.10
HOLDOUT_SEED = 20261202


@dataclass(frozen=True)
class HoldoutSplit:
    """Images set aside from a training source; ``image_ids`` are file stems such as ``ISIC_0024306``."""

    dataset: str
    lesion_ids: tuple[str, ...]
    image_ids: tuple[str, ...]
    seed: int
    fraction: float

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "grouped_by": "lesion_id",
            "seed": self.seed,
            "fraction_of_lesions": self.fraction,
            "lesions": len(self.lesion_ids),
            "images": len(self.image_ids),
            "lesion_ids": list(self.lesion_ids),
            "image_ids": list(self.image_ids),
        }

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike = HAM10000_HOLDOUT) -> HoldoutSplit:
        data = json.loads(Path(path).read_text())
        return cls(
            dataset=data["dataset"],
            lesion_ids=tuple(data["lesion_ids"]),
            image_ids=tuple(data["image_ids"]),
            seed=int(data["seed"]),
            fraction=float(data["fraction_of_lesions"]),
        )


def read_lesion_ids(metadata_csv: str | os.PathLike) -> dict[str, str]:
    """``image_id -> lesion_id`` from ``HAM10000_metadata.csv``."""
    with open(metadata_csv, newline="") as handle:
        return {row["image_id"]: row["lesion_id"] for row in csv.DictReader(handle)}


def ham10000_holdout(
    metadata_csv: str | os.PathLike, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED
) -> HoldoutSplit:
    """About ``fraction`` of the lesions (all images of each chosen lesion), drawn with a fixed seed."""
    lesion_of = read_lesion_ids(metadata_csv)
    lesions = sorted(set(lesion_of.values()))
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(lesions, size=round(fraction * len(lesions)), replace=False).tolist())
    images = sorted(image for image, lesion in lesion_of.items() if lesion in chosen)
    return HoldoutSplit("HAM10000", tuple(sorted(chosen)), tuple(images), seed, fraction)


def held_out_image_ids() -> frozenset[str]:
    """Every image id of every committed hold-out split: the trainer never trains on these."""
    ids: set[str] = set()
    for path in sorted(SPLITS_DIR.glob("*_holdout.json")):
        ids.update(HoldoutSplit.load(path).image_ids)
    return frozenset(ids)
