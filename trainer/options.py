"""Command-line options the trainer's commands share: where the data is, and further training sources.

Its own module so that every command (train, ablation, compare, gpu-run) imports it without importing the
command line that registers them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trainer.config import DEFAULT_DATA_ENV
from trainer.data import DatasetError, isic_split_folders

DATA_KEYS = ("train_images", "train_masks", "val_images", "val_masks")


def add_source_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=IMAGES,MASKS[,SHARE]",
        help="a further training source (repeatable), e.g. ham10000=DIR/images,DIR/masks,0.5; images of a committed "
        "hold-out split are never trained on",
    )


def data_paths(args: argparse.Namespace) -> dict[str, str]:
    """Explicit folders win; otherwise the official ISIC layout (2016/2017/2018) under --data or $LESIONLENS_DATA."""
    root = getattr(args, "data", None) or os.environ.get(DEFAULT_DATA_ENV)
    paths = {key: str(Path(getattr(args, key))) for key in DATA_KEYS if getattr(args, key, None)}
    if root:
        for prefix, split in (("train", "Training"), ("val", "Validation")):
            if f"{prefix}_images" not in paths or f"{prefix}_masks" not in paths:
                try:
                    images, masks = isic_split_folders(root, split)
                except DatasetError as error:
                    raise SystemExit(f"error: {error}") from error
                paths.setdefault(f"{prefix}_images", str(images))
                paths.setdefault(f"{prefix}_masks", str(masks))
    missing = [key for key in DATA_KEYS if key not in paths]
    if missing:
        raise SystemExit(
            f"error: no data given for {', '.join(missing)}: pass --data ISIC_FOLDER (or set "
            f"{DEFAULT_DATA_ENV}), or the --train-images/--train-masks/--val-images/--val-masks folders"
        )
    return paths


def parse_source(text: str) -> dict:
    """``NAME=IMAGES,MASKS[,SHARE]`` as a source entry of the training configuration."""
    name, _, rest = text.partition("=")
    parts = rest.split(",")
    if not name or len(parts) not in (2, 3):
        raise SystemExit(f"error: --source {text!r}: expected NAME=IMAGES,MASKS[,SHARE]")
    try:
        share = float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError as error:
        raise SystemExit(f"error: --source {text!r}: the share {parts[2]!r} is not a number") from error
    if not 0.0 <= share <= 1.0:
        raise SystemExit(f"error: --source {text!r}: the share must be between 0 and 1")
    return {"name": name, "images": str(Path(parts[0])), "masks": str(Path(parts[1])), "share": share}
