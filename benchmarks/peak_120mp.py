"""Peak memory of ``lesionlens segment`` on a 120-megapixel photo (the largest the batch command accepts).

    .venv/bin/python -m benchmarks.peak_120mp [--out FILE.json]

The photo is synthesised in a temporary folder by upscaling the largest full-resolution ISIC sample (4288x2848) to
just under the 120-megapixel limit and saving it as a JPEG; the command then segments it in a child process whose
own peak resident memory (VmHWM) is reported, with ``--overlay`` off and on. Target: under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import cv2

from benchmarks.common import FULLRES_IMAGES, machine, peak_rss_mb
from segmentation.imageio import read_image_size

TARGET_MB = 2048
SAMPLE = "ISIC_0014055.jpg"  # 4288x2848, the largest of the samples
LIMIT_MEGAPIXELS = 120.0


def synthesise(folder: Path, megapixels: float = LIMIT_MEGAPIXELS - 0.1) -> Path:
    """A JPEG of about ``megapixels``, upscaled from the full-resolution sample (bilinear, like a finer sensor)."""
    source = FULLRES_IMAGES / SAMPLE
    if not source.is_file():
        raise SystemExit(f"benchmark data not found: {source} (../shared/datasets beside the repository)")
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    factor = math.sqrt(megapixels * 1e6 / (image.shape[0] * image.shape[1]))
    size = (int(image.shape[1] * factor), int(image.shape[0] * factor))
    big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    del image
    path = folder / "upscaled_120mp.jpg"
    if not cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise SystemExit(f"could not write {path}")
    return path


VARIANTS = {"segment": [], "segment_overlay": ["--overlay"]}


def run(variants: list[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="lesionlens-bench-120mp-") as tmp:
        folder = Path(tmp)
        image = synthesise(folder)
        width, height = read_image_size(image)
        results: dict = {"image": f"{width}x{height}", "megapixels": round(width * height / 1e6, 2)}
        for name in variants or list(VARIANTS):
            extra = VARIANTS[name]
            out = folder / f"out_{name}"
            peak, seconds = peak_rss_mb(["segment", str(image), "--out", str(out), "--device", "cpu", *extra])
            results[name] = {"peak_rss_mb": round(peak, 1), "seconds": round(seconds, 1), "target_mb": TARGET_MB}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_120mp", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    parser.add_argument("--only", choices=list(VARIANTS), action="append", help="run only this variant")
    args = parser.parse_args(argv)
    results = {"machine": machine(), **run(args.only)}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
