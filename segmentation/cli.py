"""``lesionlens segment``: headless batch segmentation of image files and folders."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import threading
import time
from pathlib import Path

from segmentation.backends import BACKEND_CHOICES, BACKEND_ENV
from segmentation.batch import (
    RESULTS_NAME,
    BatchInputError,
    BatchSegmenter,
    ResultsTable,
    check_output_folder,
    collect_inputs,
)
from segmentation.bundled_model import pinned_sha256
from segmentation.imageio import OutputWriteError
from segmentation.inference import DEVICE_CHOICES, Predictor
from segmentation.resources import WEIGHTS_ENV, default_weights_path
from segmentation.weights import WeightsError

log = logging.getLogger("lesionlens.segment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesionlens segment",
        description="Segment the skin lesion in every image and write <stem>_segmentation.png masks (0 = skin, "
        "255 = lesion) plus results.csv into the output folder.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--weights", type=Path, help=f"weights file (default: the bundled model, or ${WEIGHTS_ENV})")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        help=f"what runs the network on the CPU (default: ${BACKEND_ENV}, else auto: ONNX Runtime when installed "
        "and faster, else PyTorch)",
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="lesion probability threshold (0-1)")
    parser.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg with the boundary")
    parser.add_argument("--resume", action="store_true", help="skip images whose mask already exists")
    parser.add_argument("--recursive", action="store_true", help="walk subfolders; the output mirrors them")
    parser.add_argument("--mm-per-pixel", type=float, help="calibration: measurements in mm instead of pixels")
    parser.add_argument(
        "--max-megapixels", type=float, default=120.0, help="refuse larger images before decoding (default 120)"
    )
    parser.add_argument(
        "--allow-input-folder",
        action="store_true",
        help="allow --out to be an input folder (masks beside the images)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not 0.0 <= args.threshold <= 1.0:
        return _fail(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.mm_per_pixel is not None and args.mm_per_pixel <= 0:
        return _fail(f"--mm-per-pixel must be positive, got {args.mm_per_pixel}")
    weights = args.weights or default_weights_path()
    if args.weights is None and os.environ.get(WEIGHTS_ENV) and not weights.exists():
        return _fail(f"${WEIGHTS_ENV} points to {weights}, which does not exist")
    if args.weights is None and not weights.exists():
        return _fail(
            "no bundled model yet: pass --weights FILE (a LesionLens .safetensors file; train one with "
            "`python -m trainer train` and write it with `python -m trainer export`)"
        )
    items, problems = collect_inputs(args.inputs, recursive=args.recursive)
    if not items and not problems:
        return _fail("no images found in " + ", ".join(map(str, args.inputs)) + " (JPEG, PNG, BMP or TIFF)")
    try:
        check_output_folder(args.inputs, args.out, allow_input_folder=args.allow_input_folder)
        predictor = Predictor(weights, args.device, expected_sha256=pinned_sha256(weights), backend=args.backend)
        args.out.mkdir(parents=True, exist_ok=True)
    except (WeightsError, BatchInputError, RuntimeError, ValueError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot create the output folder {args.out}: {error.strerror or error}")
    log.info(
        "model %s (%s) on %s; %d images",
        predictor.info.name,
        predictor.info.short_hash,
        predictor.device_description,
        len(items),
    )
    segmenter = BatchSegmenter(
        predictor,
        args.out,
        threshold=args.threshold,
        overlay=args.overlay,
        resume=args.resume,
        mm_per_pixel=args.mm_per_pixel,
        max_megapixels=args.max_megapixels,
    )
    table = ResultsTable(args.out / RESULTS_NAME, segmenter.provenance())
    owned = table.written_files()
    counts = {"ok": 0, "skipped": 0, "error": 0}
    progress = _Progress(len(items) + len(problems))
    cancel = threading.Event()
    try:
        for result in itertools.chain(problems, segmenter.run(items, cancel=cancel, owned=owned)):
            counts[result.status] += 1
            table.add(result)
            progress.update(result)
    except KeyboardInterrupt:
        cancel.set()
        log.info("interrupted: finished masks are complete; rerun with --resume to do the rest")
    finally:
        progress.close()
        try:
            table.save()
            table_saved = True
        except OutputWriteError as error:
            log.error("%s", error)
            table_saved = False  # not counted as an image: the summary below counts images
    total = sum(counts.values())
    log.info(
        "%d of %d images succeeded (%d segmented, %d already done), %d failed; results in %s",
        counts["ok"] + counts["skipped"],
        total,
        counts["ok"],
        counts["skipped"],
        counts["error"],
        args.out / RESULTS_NAME,
    )
    return 0 if counts["error"] == 0 and table_saved and total == len(items) + len(problems) else 1


class _Progress:
    """A progress bar with count and ETA on a terminal, plain log lines otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="image", dynamic_ncols=True)

    def update(self, result) -> None:
        self.done += 1
        if result.status == "error":
            message = f"error: {result.error}"
            (self.bar.write(message, file=sys.stderr) if self.bar else log.error("%s", message))
        if self.bar:
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        log.info(
            "[%d/%d] %s %s (%.2f s, ETA %.0f s)",
            self.done,
            self.total,
            result.status,
            result.item.source,
            result.seconds,
            eta,
        )

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def _fail(message: str) -> int:
    print(f"lesionlens segment: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
