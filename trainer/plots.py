"""Training curves as a PNG, redrawn after every epoch."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from trainer.config import QUALITY_BAR_DICE

PAPER_IMAGE_STEPS = 2_000_000  # the paper's recipe: 250 epochs x 2000 images x 4 augmented copies


def plot_curves(log: str | os.PathLike, out: str | os.PathLike, *, batch_size: int = 16) -> None:
    """Loss and validation scores per epoch, and validation Dice against training images seen (log scale)."""
    with Path(log).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    dice_values = [float(r["val_dice"]) for r in rows]
    figure, (losses, dice, seen) = plt.subplots(1, 3, figsize=(15, 4))
    losses.plot(epochs, [float(r["train_loss"]) for r in rows], label="training")
    losses.plot(epochs, [float(r["val_loss"]) for r in rows], label="validation")
    losses.set(xlabel="epoch", ylabel="Dice + focal loss", title="Loss")
    losses.legend()
    dice.plot(epochs, dice_values, label="Dice")
    dice.plot(epochs, [float(r["val_jaccard"]) for r in rows], label="Jaccard")
    dice.set(xlabel="epoch", ylabel="mean over validation images", title="Validation")
    dice.legend()
    dice.grid(alpha=0.3)
    seen.semilogx([int(r["step"]) * batch_size for r in rows], dice_values, marker=".", label="validation Dice")
    seen.axvline(PAPER_IMAGE_STEPS, color="grey", linestyle="--", label="paper's recipe (2M)")
    seen.axhline(QUALITY_BAR_DICE, color="tab:red", linestyle=":", label=f"quality bar ({QUALITY_BAR_DICE})")
    seen.set(xlabel="training images seen (image-steps)", ylabel="mean Dice over validation images")
    seen.set(title="Validation Dice against training budget")
    seen.legend(loc="lower right")
    seen.grid(alpha=0.3, which="both")
    figure.tight_layout()
    tmp = Path(out).with_name(f".{Path(out).name}.tmp.png")
    figure.savefig(tmp, dpi=80)
    plt.close(figure)
    os.replace(tmp, out)
