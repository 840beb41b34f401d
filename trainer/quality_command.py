"""``python -m trainer quality [WEIGHTS]``: refit the quality estimator of a weights file (the bundled one by default).

The fitting is ``trainer.quality``; this command adds what a changed bundled file needs, the same way the
regenerate-all command (``scripts/publish_model.py``) does it: the whole file's SHA-256 changes with its metadata, so
the pin beside it (``segmentation.bundled_model.write_pin``), the self-test reference and the hash in the model card
follow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segmentation.bundled_model import write_pin
from segmentation.imageio import atomic_write_bytes, read_image, write_mask
from segmentation.inference import Predictor
from segmentation.resources import DEFAULT_WEIGHTS_NAME, resources_dir
from segmentation.selftest import selftest_files
from segmentation.weights import file_sha256
from trainer.quality import REPO, SHARED, refit


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("quality", help="fit the estimated Dice and review flag into a weights file")
    parser.add_argument("weights", type=Path, nargs="?", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--ham", type=Path, default=SHARED / "ham10000")
    parser.add_argument("--isic", type=Path, default=SHARED / "isic2017")
    parser.add_argument("--cache", type=Path, help="keep the predictor's outputs here (reused for the same tensors)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    bundled = resources_dir() / "models" / DEFAULT_WEIGHTS_NAME
    weights = args.weights or bundled
    before = file_sha256(weights) if weights.exists() else ""
    estimator = refit(weights, ham=args.ham, isic=args.isic, cache=args.cache)
    if weights.resolve() == bundled.resolve():  # the file changed: its pin, self-test and card follow, as in bundle
        after = write_pin(weights)
        files = selftest_files()  # what ``lesionlens --self-test`` compares the bundle's mask with
        write_mask(files.reference, Predictor(weights, "cpu").predict(read_image(files.sample)).mask)
        card = REPO / "docs" / "MODEL_CARD.md"
        if before and card.exists():
            atomic_write_bytes(card, card.read_text().replace(before, after).encode())
    print(f"quality estimator written into {weights}: needs_review below {estimator.review_below:.3f}")
    return 0
