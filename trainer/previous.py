"""The model being published against the model it replaces, image by image.

The regenerate-all command (``scripts/publish_model.py``) overwrites ``docs/model/*_per_image.csv``; before it does,
the previous model's per-image scores are read here, and the model card then says, on the same images: each set's
mean Dice for both models with the paired difference and its 95 % bootstrap interval, and how the previous model's
five worst validation images (its failure modes) fare now.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.arms import paired_difference

WORST = 5


@dataclass(frozen=True)
class PreviousModel:
    """The bundled model's name, file identity and per-image Dice on each evaluation set (image name -> Dice)."""

    name: str
    sha256: str
    dice: dict[str, dict[str, float]]


def read_previous(model_dir: Path, sets: tuple[str, ...] = ("validation", "ham_holdout")) -> PreviousModel | None:
    """From ``docs/model/{set}.json`` and ``{set}_per_image.csv``; None when there is nothing (a first publish)."""
    summary = model_dir / f"{sets[0]}.json"
    if not summary.exists():
        return None
    meta = json.loads(summary.read_text(encoding="utf-8"))
    dice = {}
    for name in sets:
        path = model_dir / f"{name}_per_image.csv"
        if path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                dice[name] = {row["image"]: float(row["dice"]) for row in csv.DictReader(handle)}
    return PreviousModel(str(meta.get("model", "previous model")), str(meta.get("sha256", "")), dice)


def paired(previous: dict[str, float], rows: list[dict]) -> dict:
    """Both models' mean Dice on the images both were scored on, and the paired difference with its 95 % CI."""
    now = {row["image"]: float(row["dice"]) for row in rows}
    common = sorted(set(previous) & set(now))
    if not common:
        raise ValueError("the previous model was scored on none of these images")
    before = [previous[image] for image in common]
    after = [now[image] for image in common]
    difference, low, high = paired_difference(before, after)
    return {
        "n": len(common),
        "previous": float(np.mean(before)),
        "now": float(np.mean(after)),
        "difference": difference,
        "ci95": [low, high],
    }


def comparison_table(previous: PreviousModel, results: dict[str, list[dict]], labels: dict[str, str]) -> str:
    """Markdown: one row per evaluation set the previous model was also scored on."""
    lines = [
        f"| set | images | `{previous.name}` (previous) | this model | paired difference (95 % CI) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, rows in results.items():
        if name not in previous.dice:
            continue
        row = paired(previous.dice[name], rows)
        lines.append(
            f"| {labels.get(name, name)} | {row['n']} | {row['previous']:.4f} | {row['now']:.4f} | "
            f"{row['difference']:+.4f} ({row['ci95'][0]:+.4f} to {row['ci95'][1]:+.4f}) |"
        )
    return "\n".join(lines)


def worst_revisited(previous: dict[str, float], rows: list[dict], count: int = WORST) -> str:
    """Markdown: the previous model's ``count`` worst images, its Dice and this model's."""
    now = {row["image"]: float(row["dice"]) for row in rows}
    worst = sorted((image for image in previous if image in now), key=lambda image: previous[image])[:count]
    lines = ["| image | previous Dice | this model's Dice | change |", "|---|---:|---:|---:|"]
    for image in worst:
        change = now[image] - previous[image]
        lines.append(f"| {Path(image).stem} | {previous[image]:.3f} | {now[image]:.3f} | {change:+.3f} |")
    return "\n".join(lines)
