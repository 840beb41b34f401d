"""``python -m trainer arms RUN_DIR...``: compare training arms that started from the same point.

Each arm's best epoch is exported and scored through the app's own predictor (the whole image in, a mask at its own
size out, threshold 0.5) on the ISIC 2017 validation images and on the committed HAM10000 hold-out. The table gives
each arm's mean Dice with its 95 % bootstrap interval, and each arm's paired difference from the baseline (the
same images resampled for both, so the interval says whether the difference is more than which images were drawn),
with its image-steps, training images/s and hardware. The baseline is ``--reference WEIGHTS`` (the model every arm
started from, scored the same way) or else the first arm. ``--contrast B:A`` adds the paired difference B - A
between two arms: the question each arm was built to answer. Model selection stays on ISIC validation; the hold-out
is the second check.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segmentation.inference import Predictor
from segmentation.metrics import bootstrap_ci
from trainer import checkpoint
from trainer.config import TrainConfig
from trainer.data import isic_split_folders
from trainer.engine import images_per_second
from trainer.evaluate import evaluate_folder
from trainer.export import export_run
from trainer.splits import held_out_image_ids


@dataclass(frozen=True)
class Arm:
    """One arm's record: what it trained on and how, and its per-image Dice on each evaluation set."""

    name: str
    sources: str
    augmentation: str
    image_steps: int
    images_per_second: float
    dice: dict[str, list[float]]  # evaluation set -> per-image Dice, in the sets' fixed image order


def describe(config: TrainConfig) -> tuple[str, str]:
    sources = " + ".join(
        f"{source.name} ({f'{source.share:.0%}' if source.share else 'by count'})"
        for source in config.training_sources()
    )
    extra = config.scale_probability > 0 or config.photometric_probability > 0
    augmentation = "paper + scale/crop + photometric" if extra else "paper"
    return sources, augmentation


def per_image_dice(
    predictor: Predictor, evaluation_sets: dict[str, tuple[Path, Path, frozenset[str] | None]]
) -> dict[str, list[float]]:
    """Each set's per-image Dice through the app's predictor, in the set's fixed (image name) order."""
    dice = {}
    for name, (images, masks, only) in evaluation_sets.items():
        _, rows = evaluate_folder(predictor, images, masks, only=only)
        dice[name] = [float(row["dice"]) for row in sorted(rows, key=lambda row: row["image"])]
    return dice


def score_arm(
    run_dir: Path, evaluation_sets: dict[str, tuple[Path, Path, frozenset[str] | None]], device: str = "cpu"
) -> Arm:
    last = checkpoint.load(run_dir / "last.pt")  # the arm's whole budget; its best epoch is what gets scored
    config = TrainConfig().override(last["config"])
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "arm.safetensors"
        export_run(run_dir, weights, name=run_dir.name)
        dice = per_image_dice(Predictor(weights, device), evaluation_sets)
    sources, augmentation = describe(config)
    return Arm(
        name=run_dir.name,
        sources=sources,
        augmentation=augmentation,
        image_steps=int(last["step"]) * config.batch_size,
        images_per_second=images_per_second(run_dir / "log.csv"),
        dice=dice,
    )


def score_reference(
    weights: Path, evaluation_sets: dict[str, tuple[Path, Path, frozenset[str] | None]], device: str = "cpu"
) -> Arm:
    """An exported model (the arms' common starting point) scored exactly as the arms are."""
    predictor = Predictor(weights, device)
    dice = per_image_dice(predictor, evaluation_sets)
    training = predictor.info.training
    steps = int(training.get("steps", 0)) * int(training.get("config", {}).get("batch_size", 0))
    names = [str(source.get("name", "?")) for source in training.get("data_sources", [])]
    return Arm(
        name=f"{weights.stem} (start)",
        sources=" + ".join(names) or str(training.get("data", "—")),
        augmentation="—",
        image_steps=steps,
        images_per_second=0.0,
        dice=dice,
    )


def paired_difference(baseline: list[float], other: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``other - baseline`` over the same images, with its 95 % paired bootstrap interval."""
    differences = np.asarray(other) - np.asarray(baseline)
    low, high = bootstrap_ci(differences, seed=seed)
    return float(differences.mean()), low, high


def contrasts(arms: list[Arm], pairs: list[tuple[str, str]]) -> list[dict]:
    """``[(B, A), ...]`` by arm name: the paired difference B - A on every evaluation set."""
    by_name = {arm.name: arm for arm in arms}
    rows = []
    for later, earlier in pairs:
        missing = [name for name in (later, earlier) if name not in by_name]
        if missing:
            raise ValueError(f"--contrast {later}:{earlier}: no arm named {', '.join(missing)}")
        row: dict = {"contrast": f"{later} - {earlier}"}
        for name, values in by_name[later].dice.items():
            mean, low, high = paired_difference(by_name[earlier].dice[name], values)
            row[name] = {"mean": mean, "ci95": [low, high]}
        rows.append(row)
    return rows


def comparison(arms: list[Arm], pairs: list[tuple[str, str]] = ()) -> dict:
    baseline = arms[0]
    rows = []
    for arm in arms:
        row = {
            "arm": arm.name,
            "sources": arm.sources,
            "augmentation": arm.augmentation,
            "image_steps": arm.image_steps,
            "images_per_second": arm.images_per_second,
        }
        for name, values in arm.dice.items():
            low, high = bootstrap_ci(values)
            row[name] = {"n": len(values), "mean": float(np.mean(values)), "ci95": [low, high]}
            if arm is not baseline:
                mean, low, high = paired_difference(baseline.dice[name], values)
                row[name]["vs_first"] = {"mean": mean, "ci95": [low, high]}
        rows.append(row)
    return {
        "baseline": baseline.name,
        "hardware": platform.processor() or platform.machine(),
        "arms": rows,
        "contrasts": contrasts(arms, list(pairs)),
    }


def markdown(result: dict, hardware: str) -> str:
    sets = [key for key in result["arms"][0] if isinstance(result["arms"][0][key], dict)]
    header = ["arm", "sources", "augmentation", "image-steps", "images/s"]
    for name in sets:
        header += [f"{name} Dice (95 % CI)", f"{name} vs {result['baseline']}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["arms"]:
        cells = [
            row["arm"],
            row["sources"],
            row["augmentation"],
            f"{row['image_steps']:,}" if row["image_steps"] else "—",
            f"{round(row['images_per_second'], 2):g}" if row["images_per_second"] else "—",
        ]
        for name in sets:
            score = row[name]
            cells.append(f"{score['mean']:.4f} ({score['ci95'][0]:.4f}-{score['ci95'][1]:.4f}), n={score['n']}")
            diff = score.get("vs_first")
            cells.append(f"{diff['mean']:+.4f} ({diff['ci95'][0]:+.4f} to {diff['ci95'][1]:+.4f})" if diff else "—")
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("contrasts"):
        lines += ["", "| paired difference | " + " | ".join(f"{name} (95 % CI)" for name in sets) + " |"]
        lines.append("|" + "---|" * (len(sets) + 1))
        for row in result["contrasts"]:
            cells = [row["contrast"]]
            cells += [f"{row[n]['mean']:+.4f} ({row[n]['ci95'][0]:+.4f} to {row[n]['ci95'][1]:+.4f})" for n in sets]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nHardware: {hardware}. Dice is the mean over images through the app's predictor.\n"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("arms", help="compare training arms on ISIC validation and the HAM hold-out")
    parser.add_argument("run_dirs", type=Path, nargs="+", help="the arms' run folders; the first is the baseline")
    parser.add_argument("--isic", type=Path, required=True, help="ISIC 2017 folder (official layout)")
    parser.add_argument("--ham", type=Path, help="HAM10000 folder (images/, masks/): scores its committed hold-out")
    parser.add_argument("--hardware", default="", help="what the arms were trained on, for the table")
    parser.add_argument("--json", type=Path, help="write the comparison as JSON")
    parser.add_argument("--markdown", type=Path, help="write the comparison table as Markdown")
    parser.add_argument("--reference", type=Path, help="weights every arm started from: scored first, the baseline")
    parser.add_argument(
        "--contrast", action="append", default=[], metavar="B:A", help="also report arm B - arm A (repeatable)"
    )
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    names = {run_dir.name for run_dir in args.run_dirs}
    pairs = []
    for text in args.contrast:  # checked before the minutes of scoring, not after
        later, separator, earlier = text.partition(":")
        if not separator or not {later, earlier} <= names:
            raise SystemExit(
                f"error: --contrast {text}: expected B:A, two of the arms' folder names ({', '.join(sorted(names))})"
            )
        pairs.append((later, earlier))
    images, masks = isic_split_folders(args.isic, "Validation")
    sets: dict[str, tuple[Path, Path, frozenset[str] | None]] = {"isic_val": (images, masks, None)}
    if args.ham:
        sets["ham_holdout"] = (args.ham / "images", args.ham / "masks", held_out_image_ids())
    arms = [score_reference(args.reference, sets, args.device)] if args.reference else []
    arms += [score_arm(run_dir, sets, args.device) for run_dir in args.run_dirs]
    result = comparison(arms, pairs)
    hardware = args.hardware or result["hardware"]
    table = markdown(result, hardware)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({**result, "hardware": hardware}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    per_image = args.json.with_suffix(".csv") if args.json else None
    if per_image:
        with per_image.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["arm", "set", "index", "dice"])
            for arm in arms:
                for name, values in arm.dice.items():
                    writer.writerows([arm.name, name, index, round(value, 5)] for index, value in enumerate(values))
    return 0
