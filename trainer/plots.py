"""Training curves as a PNG, redrawn after every epoch."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(log: str | os.PathLike, out: str | os.PathLike) -> None:
    with Path(log).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    figure, (losses, dice) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(epochs, [float(r["train_loss"]) for r in rows], label="training")
    losses.plot(epochs, [float(r["val_loss"]) for r in rows], label="validation")
    losses.set(xlabel="epoch", ylabel="Dice + focal loss", title="Loss")
    losses.legend()
    dice.plot(epochs, [float(r["val_dice"]) for r in rows], label="Dice")
    dice.plot(epochs, [float(r["val_jaccard"]) for r in rows], label="Jaccard")
    dice.set(xlabel="epoch", ylabel="mean over validation images", title="Validation")
    dice.legend()
    dice.grid(alpha=0.3)
    figure.tight_layout()
    tmp = Path(out).with_name(f".{Path(out).name}.tmp.png")
    figure.savefig(tmp, dpi=80)
    plt.close(figure)
    os.replace(tmp, out)
