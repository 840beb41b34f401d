"""``python -m trainer quality WEIGHTS``: refit the quality estimator of a weights file (the fitting is
``trainer.quality``).

It writes the estimated-Dice model and the review operating point into that file's metadata, nothing else. The
bundled model is not refitted here: changing its metadata changes the file's SHA-256, so its pin, self-test
reference and model card must follow, and that is the regenerate-all command's job
(``scripts/publish_model.py --weights resources/models/lesionlens.safetensors``), in one place.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segmentation.resources import bundled_weights_path
from trainer.quality import SHARED, refit


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("quality", help="fit the estimated Dice and review flag into a weights file")
    parser.add_argument("weights", type=Path, help="weights file (an exported run; not the bundled model)")
    parser.add_argument("--ham", type=Path, default=SHARED / "ham10000")
    parser.add_argument("--isic", type=Path, default=SHARED / "isic2017")
    parser.add_argument("--cache", type=Path, help="keep the predictor's outputs here (reused for the same tensors)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int | str:
    bundled = bundled_weights_path()
    if bundled.exists() and args.weights.resolve() == bundled.resolve():
        return (
            f"{args.weights} is the bundled model: refit and republish it with "
            f"scripts/publish_model.py --weights {args.weights} (it also updates the pin, self-test and model card)"
        )
    estimator = refit(args.weights, ham=args.ham, isic=args.isic, cache=args.cache)
    print(f"quality estimator written into {args.weights}: needs_review below {estimator.review_below:.3f}")
    return 0
