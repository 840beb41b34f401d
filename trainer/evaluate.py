"""``python -m trainer evaluate``: score a weights file on a folder through the app's own predictor."""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Collection
from pathlib import Path

from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor
from segmentation.metrics import METRIC_ABBREVIATIONS, METRIC_NAMES, ConfusionCounts, MetricSummary, scores, summarize
from trainer.data import find_samples
from trainer.splits import held_out_image_ids

# The paper's numbers (fractions): Table II's full-model row (ISBI 2017 validation) and Table I (ISBI 2017 test).
# The one place they are written; tables and cards format them from here.
PAPER_ROWS = {
    "validation": {"dice": 0.9453, "jaccard": 0.8419, "recall": 0.949},
    "test": {"accuracy": 0.975, "specificity": 0.9694, "recall": 0.9429, "dice": 0.9116, "jaccard": 0.8383},
}


def paper_row_text(split: str = "validation") -> str:
    """The paper's row in percent with the metrics' abbreviations, e.g. ``DC 94.53, JSI 84.19, REC 94.9``."""
    return ", ".join(f"{METRIC_ABBREVIATIONS[name]} {100 * value:.4g}" for name, value in PAPER_ROWS[split].items())


def evaluate_folder(
    predictor: Predictor,
    images_dir: Path,
    masks_dir: Path,
    *,
    threshold: float = 0.5,
    progress: bool = False,
    only: Collection[str] | None = None,
) -> tuple[MetricSummary, list[dict]]:
    """Full-resolution image in, mask at its original size out, scored against the expert mask.

    ``only``: image ids (file stems) to score, e.g. a committed hold-out split; the others are passed over.
    """
    rows, counts = [], []
    samples = find_samples(images_dir, masks_dir)
    if only is not None:
        samples = [sample for sample in samples if sample.image_id in only]
        if not samples:
            raise ValueError(f"{images_dir}: none of the {len(only)} requested images is in this folder")
    for index, sample in enumerate(samples, 1):
        started = time.perf_counter()
        image = read_image(sample.image)
        truth = read_mask(sample.mask)
        prediction = predictor.predict(image, threshold).mask
        count = ConfusionCounts.from_masks(prediction, truth)
        counts.append(count)
        rows.append(
            {
                "image": sample.image.name,
                **{k: round(v, 5) for k, v in scores(count).items()},
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        if progress and index % 25 == 0:
            print(f"  {index}/{len(samples)} images", flush=True)
    return summarize(counts), rows


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="score a weights file on images with expert masks")
    parser.add_argument("--weights", help="weights file (default: the bundled model)")
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--masks", required=True, type=Path)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--holdout", action="store_true", help="score only the committed hold-out images (trainer/splits/) found there"
    )
    parser.add_argument("--json", type=Path, help="write the summary as JSON")
    parser.add_argument("--csv", type=Path, help="write per-image scores as CSV")
    parser.add_argument(
        "--compare-paper",
        choices=sorted(PAPER_ROWS),
        nargs="?",
        const="validation",
        help="print the paper's matching row beside ours (validation: Table II; test: Table I)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from segmentation.resources import default_weights_path

    predictor = Predictor(args.weights or default_weights_path(), args.device)
    only = held_out_image_ids() if args.holdout else None
    summary, rows = evaluate_folder(
        predictor, args.images, args.masks, threshold=args.threshold, progress=True, only=only
    )
    paper = PAPER_ROWS[args.compare_paper] if args.compare_paper else None
    print(f"model {predictor.info.name} ({predictor.info.short_hash}) on {args.images}")
    print(summary.format_table(paper))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": predictor.info.name,
                    "sha256": predictor.info.sha256,
                    "threshold": args.threshold,
                    **summary.to_dict(),
                },
                indent=2,
            )
        )
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", *METRIC_NAMES, "seconds"])
            writer.writeheader()
            writer.writerows(rows)
    return 0
