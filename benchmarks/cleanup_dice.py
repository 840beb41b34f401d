"""Does a default clean-up help? Dice of the bundled model's masks on the 150 ISIC 2017 validation images, raw and
after each clean-up step, through the app's own predictor (``segmentation.inference.Predictor``).

    .venv/bin/python -m benchmarks.cleanup_dice [--weights FILE] [--out FILE.json]

Each mask is compared with its official ground truth at the image's own size (the validation copies are 256x192),
as ``scripts/publish_model.py`` measures the model's validation Dice. Reported per variant: the mean Dice, the paired
difference from the raw masks with a 95 % bootstrap interval, and how many images got better or worse. The numbers
and the decision they support are in docs/MEASUREMENTS.md ("Default clean-up").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import ISIC, REPO, machine
from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor
from segmentation.metrics import ConfusionCounts, dice
from segmentation.naming import mask_name
from segmentation.postprocess import clean_up
from segmentation.resources import bundled_weights_path

VALIDATION_MASKS = ISIC / "ISIC-2017_Validation_Part1_GroundTruth"
VARIANTS: dict[str, tuple[str, ...]] = {
    "raw": (),
    "fill_holes": ("fill_holes",),
    "keep_largest": ("keep_largest",),
    "fill_holes+keep_largest": ("fill_holes", "keep_largest"),
}


def _dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 1.0 if not prediction.any() and not truth.any() else dice(ConfusionCounts.from_masks(prediction, truth))


def _bootstrap(values: np.ndarray, *, seed: int = 0, rounds: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run(weights: Path, images: Path = ISIC / "ISIC-2017_Validation_Data", masks: Path = VALIDATION_MASKS) -> dict:
    predictor = Predictor(weights, "cpu")
    per_image: dict[str, list[float]] = {name: [] for name in VARIANTS}
    regions: list[int] = []
    holes: list[bool] = []
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() == ".jpg")
    for path in paths:
        truth = read_mask(masks / mask_name(path.stem))
        raw = predictor.predict(read_image(path)).mask
        for name, steps in VARIANTS.items():
            per_image[name].append(_dice(clean_up(raw, steps), truth))
        import cv2

        regions.append(cv2.connectedComponents(raw.astype(np.uint8), connectivity=8)[0] - 1)
        holes.append(bool((clean_up(raw, ("fill_holes",)) != raw).any()))
    raw = np.asarray(per_image["raw"])
    out: dict = {
        "machine": machine(),
        "weights": str(weights.relative_to(REPO)) if weights.is_relative_to(REPO) else str(weights),
        "weights_model": predictor.info.name,
        "images": len(paths),
        "raw_masks_with_more_than_one_region": int(sum(r > 1 for r in regions)),
        "raw_masks_max_regions": int(max(regions)),
        "raw_masks_with_holes": int(sum(holes)),
        "variants": {},
    }
    for name, values in per_image.items():
        values = np.asarray(values)
        difference = values - raw
        low, high = _bootstrap(difference)
        out["variants"][name] = {
            "mean_dice": round(float(values.mean()), 5),
            "difference_from_raw": round(float(difference.mean()), 5),
            "difference_95ci": [round(low, 5), round(high, 5)],
            "better": int((difference > 1e-9).sum()),
            "worse": int((difference < -1e-9).sum()),
            "largest_gain": round(float(difference.max()), 4),
            "largest_loss": round(float(difference.min()), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cleanup_dice", description=__doc__)
    parser.add_argument("--weights", type=Path, default=bundled_weights_path())
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args(argv)
    results = run(args.weights)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
