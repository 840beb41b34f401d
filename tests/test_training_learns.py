"""A short training run on synthetic lesions learns: the loss falls and the Dice rises past a clear floor.

The smoke test elsewhere only checks that a run folder is written; this one fails when the pipeline is broken in a
way that still runs (an optimiser that never steps, masks that no longer match their images).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.config import preset
from trainer.engine import Trainer


def skin_with_a_lesion(rng: np.random.Generator, height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Textured skin-like noise (smooth colour variation plus grain) with a darker, irregular disc."""
    base = np.array([215, 170, 145], np.float32) + rng.normal(0, 12, 3)
    smooth = cv2.resize(rng.normal(0, 14, (6, 8, 3)).astype(np.float32), (width, height), cv2.INTER_CUBIC)
    image = base + smooth + rng.normal(0, 9, (height, width, 3))
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    radius = rng.uniform(0.12, 0.3) * height
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6.3))
    mask = np.hypot(yy - cy, xx - cx) <= radius * wobble
    lesion_colour = np.array([120, 75, 55], np.float32) + rng.normal(0, 10, 3)
    image[mask] = 0.25 * image[mask] + 0.75 * (lesion_colour + rng.normal(0, 8, (int(mask.sum()), 3)))
    return np.clip(image, 0, 255).astype(np.uint8), mask.astype(np.uint8) * 255


def write_split(folder: Path, count: int, seed: int) -> tuple[Path, Path]:
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        image, mask = skin_with_a_lesion(rng)
        cv2.imwrite(str(images / f"SYN_{index:04d}.png"), image[..., ::-1])
        cv2.imwrite(str(masks / f"SYN_{index:04d}_segmentation.png"), mask)
    return images, masks


@pytest.mark.slow  # a training run
def test_training_on_synthetic_lesions_lowers_the_loss_and_raises_the_dice(tmp_path: Path) -> None:
    train_images, train_masks = write_split(tmp_path / "train", 48, seed=0)
    val_images, val_masks = write_split(tmp_path / "val", 16, seed=1)
    config = preset("smoke").override(
        {
            "train_images": str(train_images),
            "train_masks": str(train_masks),
            "val_images": str(val_images),
            "val_masks": str(val_masks),
            "cache_dir": str(tmp_path / "cache"),
            "batch_size": 8,
            "epochs": 8,
            "epoch_images": 48,  # 6 steps an epoch, 48 steps in all
            "learning_rate": 1e-2,
            "schedule": "constant",
        }
    )
    run = tmp_path / "run"
    best = Trainer(config, run, device="cpu", quiet=True).fit()
    with (run / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    losses = [float(row["train_loss"]) for row in rows]
    dice = [float(row["val_dice"]) for row in rows]
    assert int(rows[-1]["step"]) == 48
    assert losses[-1] < 0.6 * losses[0], losses
    assert dice[0] < 0.6 and best >= 0.85, dice  # from a near-constant mask to the lesion's outline
    assert min(dice[-2:]) >= 0.85


@pytest.mark.parametrize("seed", [0])
def test_synthetic_lesions_are_what_the_mask_says(seed: int) -> None:
    image, mask = skin_with_a_lesion(np.random.default_rng(seed))
    inside, outside = image[mask > 0].mean(), image[mask == 0].mean()
    assert inside < outside - 40  # the lesion is visibly darker than its skin
