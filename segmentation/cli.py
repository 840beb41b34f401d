"""``lesionlens segment``: headless batch segmentation of image files and folders."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from segmentation.backends import BACKEND_CHOICES, BACKEND_ENV
from segmentation.batch import (
    RESULTS_NAME,
    BatchInputError,
    BatchSegmenter,
    ResultsTable,
    check_output_folder,
    collect_inputs,
    skipped_note,
)
from segmentation.bundled_model import pinned_sha256
from segmentation.folderlock import FolderLockedError, output_folder_lock
from segmentation.imageio import OutputWriteError, write_reason
from segmentation.inference import DEVICE_CHOICES, Predictor
from segmentation.naming import BATCH_SUFFIXES
from segmentation.plain_text import plain_text
from segmentation.resources import WEIGHTS_ENV, default_weights_path
from segmentation.weights import WeightsError

log = logging.getLogger("lesionlens.segment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesionlens segment",
        description=f"Segment the skin lesion in every image and write <stem>{BATCH_SUFFIXES['mask']} masks (0 = skin, "
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
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="lesion probability threshold, 0 < t < 1 (default 0.5)"
    )
    parser.add_argument(
        "--overlay", action="store_true", help=f"also write <stem>{BATCH_SUFFIXES['overlay']} with the boundary"
    )
    parser.add_argument(
        "--save-probability",
        action="store_true",
        help=f"also write <stem>{BATCH_SUFFIXES['probability']}, the model's probability map as 8-bit grey "
        "(0-255 = 0-1)",
    )
    parser.add_argument(
        "--geojson",
        action="store_true",
        help=f"also write <stem>{BATCH_SUFFIXES['geojson']} (polygons with holes, pixels)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip images whose outputs this program wrote earlier (intact) and results.csv lists as ok",
    )
    parser.add_argument("--recursive", action="store_true", help="walk subfolders; the output mirrors them")
    parser.add_argument("--mm-per-pixel", type=float, help="calibration: measurements in mm instead of pixels (> 0)")
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=120.0,
        help="refuse larger images before decoding (> 0, default 120)",
    )
    parser.add_argument(
        "--allow-input-folder",
        action="store_true",
        help="allow --out to be an input folder (masks beside the images)",
    )
    return parser


def _check_numbers(args: argparse.Namespace) -> str:
    """Why a numeric option is unusable ("" when all are fine): NaN, infinities, zero and negatives are refused."""
    if not 0.0 < args.threshold < 1.0:  # NaN fails this too; 0 would make every pixel lesion, 1 none
        return f"--threshold must be between 0 and 1 (0 < t < 1), got {args.threshold}"
    for option, value in (("--mm-per-pixel", args.mm_per_pixel), ("--max-megapixels", args.max_megapixels)):
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{option} must be a finite number greater than 0, got {value}"
    return ""


def main(argv: list[str] | None = None) -> int:
    """``lesionlens segment``; Ctrl+C while the model loads (or a second Ctrl+C) ends it with status 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("lesionlens segment: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if problem := _check_numbers(args):
        return _fail(problem)
    for raw in args.inputs:  # before the model loads and before --out is made
        try:
            present = os.path.lexists(raw)
        except (OSError, ValueError):
            present = False
        if not present:
            return _fail(f"{raw}: no such file or folder")
    weights = args.weights or default_weights_path()
    if args.weights is None and os.environ.get(WEIGHTS_ENV) and not weights.exists():
        return _fail(f"${WEIGHTS_ENV} points to {weights}, which does not exist")
    if args.weights is None and not weights.exists():
        return _fail(
            "no bundled model yet: pass --weights FILE (a LesionLens .safetensors file; train one with "
            "`python -m trainer train` and write it with `python -m trainer export`)"
        )
    skipped: Counter = Counter()
    items, problems = collect_inputs(args.inputs, recursive=args.recursive, skipped=skipped)
    note = skipped_note(skipped)
    if not items and not problems:
        found = "no images found in " + ", ".join(map(str, args.inputs)) + " (JPEG, PNG, BMP or TIFF)"
        return _fail(f"{found}; {note}" if note else found)
    if note:
        log.warning("note: %s", note)
    try:
        check_output_folder(args.inputs, args.out, allow_input_folder=args.allow_input_folder, recursive=args.recursive)
        predictor = Predictor(weights, args.device, expected_sha256=pinned_sha256(weights), backend=args.backend)
        args.out.mkdir(parents=True, exist_ok=True)
    except (WeightsError, BatchInputError, RuntimeError, ValueError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot create the output folder {args.out}: {error.strerror or error}")
    try:
        with output_folder_lock(args.out):
            return _run(args, predictor, items, problems)
    except FolderLockedError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot write into the output folder {args.out}: {write_reason(error)}")


def _run(args: argparse.Namespace, predictor: Predictor, items: list, problems: list) -> int:
    log.info(
        "model %s (%s) on %s; %d images",
        plain_text(predictor.info.name),
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
        probability=args.save_probability,
        geojson=args.geojson,
    )
    table = ResultsTable(args.out / RESULTS_NAME, segmenter.provenance())
    counts = {"ok": 0, "skipped": 0, "error": 0}
    progress = _Progress(len(items) + len(problems))
    cancel = threading.Event()
    try:
        with _ctrl_c_cancels(cancel):
            for result in itertools.chain(problems, segmenter.run(items, cancel=cancel, finished=table.finished())):
                counts[result.status] += 1
                table.add(result)
                progress.update(result)
    except KeyboardInterrupt:  # a second Ctrl+C: stop at once
        cancel.set()
    finally:
        progress.close()
        try:
            table.save()
            table_saved = True
        except OutputWriteError as error:
            log.error("%s", error)
            table_saved = False  # not counted as an image: the summary below counts images
    total = len(items) + len(problems)
    if cancel.is_set():
        log.info(
            "interrupted: %d of %d images not started; every mask on disk has its row in results.csv; rerun with "
            "--resume to do the rest",
            total - sum(counts.values()),
            total,
        )
    log.info(
        "%d of %d images succeeded (%d segmented, %d already done), %d failed; results in %s",
        counts["ok"] + counts["skipped"],
        total,
        counts["ok"],
        counts["skipped"],
        counts["error"],
        args.out / RESULTS_NAME,
    )
    if cancel.is_set():
        return 130
    return 0 if counts["error"] == 0 and table_saved and sum(counts.values()) == total else 1


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl+C (SIGINT) cancels the batch: no new image starts, the ones in progress are finished and get
    their rows. A second one raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        log.info("stopping: finishing the images in progress (Ctrl+C again to stop at once)")

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
