"""Plain-skin crops: rectangles of skin clear of the expert's lesion, cut from images with expert masks.

They are the quality estimate's no-lesion test (``trainer.quality``: the model should find nothing there) and, written
to a folder pair with empty masks, negatives for training (``python -m trainer plain-skin``), so the network itself
learns to output nothing on plain skin:

    .venv/bin/python -m trainer plain-skin --from IMAGES MASKS [--from IMAGES MASKS ...] --out data/plain_skin
    .venv/bin/python -m trainer train ... --source plain_skin=data/plain_skin/images,data/plain_skin/masks,0.1

Images of the committed HAM10000 hold-out are never cut (their crops are the quality estimate's test set), so a run
that trains on these negatives has still not seen any hold-out image.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segmentation.imageio import read_image, read_mask, write_image, write_mask
from segmentation.naming import mask_name
from trainer.data import find_samples
from trainer.splits import held_out_image_ids

CROP_MARGIN = 8  # pixels kept clear of the expert's lesion around a plain-skin crop
CROP_MIN_HEIGHT = 40
CROP_SUFFIX = "_skin"  # ISIC_0000000.jpg -> ISIC_0000000_skin.png: never the name of a real image


def plain_skin_crop(image: np.ndarray, truth: np.ndarray, aspect: float = 1.25) -> np.ndarray | None:
    """The largest ``aspect`` (width/height) rectangle of skin clear of the expert's lesion (and of the dark
    vignette of a dermatoscope) by ``CROP_MARGIN`` pixels; None when it would be under ``CROP_MIN_HEIGHT``."""
    size = 2 * CROP_MARGIN + 1
    clear = ~cv2.dilate(truth.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    clear &= cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) > 50
    integral = cv2.integral((~clear).astype(np.uint8))
    height, width = clear.shape
    for h in range(height, CROP_MIN_HEIGHT - 1, -2):
        w = round(h * aspect)
        if w > width:
            continue
        blocked = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
        ys, xs = np.nonzero(blocked == 0)
        if len(ys):
            return image[ys[0] : ys[0] + h, xs[0] : xs[0] + w].copy()
    return None


def pictures(
    items: list[tuple[str, str, Path, Path]],
) -> Iterator[tuple[str, str, str, np.ndarray, np.ndarray | None]]:
    """(set, id, kind, picture, expert mask or None): each image ("lesion"), then its plain-skin crop ("skin") when
    it has one."""
    for subset, image_id, image_path, mask_path in items:
        image, truth = read_image(image_path), read_mask(mask_path)
        yield subset, image_id, "lesion", image, truth
        crop = plain_skin_crop(image, truth)
        if crop is not None:
            yield subset, image_id, "skin", crop, None


@dataclass(frozen=True)
class PlainSkinSummary:
    written: int
    too_small: int  # no clear rectangle of CROP_MIN_HEIGHT pixels
    held_out: int  # hold-out images, never cut


def write_plain_skin_folder(pairs: list[tuple[Path, Path]], out: Path) -> PlainSkinSummary:
    """Cut one crop from every image of the (images, masks) folder pairs into ``out/images`` (lossless PNG) with an
    all-skin mask in ``out/masks``; hold-out images are skipped. Crops already written are kept (rerunnable)."""
    held_out = held_out_image_ids()
    written = too_small = skipped = 0
    for images, masks in pairs:
        for sample in find_samples(images, masks):
            if sample.image_id in held_out:
                skipped += 1
                continue
            name = f"{sample.image.stem}{CROP_SUFFIX}"
            image_path, mask_path = out / "images" / f"{name}.png", out / "masks" / mask_name(name)
            if image_path.exists() and mask_path.exists():
                written += 1
                continue
            crop = plain_skin_crop(read_image(sample.image), read_mask(sample.mask))
            if crop is None:
                too_small += 1
                continue
            image_path.parent.mkdir(parents=True, exist_ok=True)
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            write_image(image_path, crop)
            write_mask(mask_path, np.zeros(crop.shape[:2], bool))
            written += 1
    return PlainSkinSummary(written, too_small, skipped)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plain-skin", help="cut plain-skin crops with empty masks: negatives for training")
    parser.add_argument(
        "--from",
        dest="pairs",
        nargs=2,
        action="append",
        required=True,
        metavar=("IMAGES", "MASKS"),
        help="a folder of images and the folder of their expert masks (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/images and OUT/masks")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    summary = write_plain_skin_folder([(Path(i), Path(m)) for i, m in args.pairs], args.out)
    print(
        f"{summary.written} plain-skin crops in {args.out} ({summary.too_small} images without a clear rectangle of "
        f"{CROP_MIN_HEIGHT} px, {summary.held_out} hold-out images left out)"
    )
    return 0
