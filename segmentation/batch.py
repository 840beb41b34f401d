"""Batch segmentation of many images: the engine behind ``lesionlens segment`` and the GUI's batch dialog.

Plain Python, no Qt: the caller iterates over :meth:`BatchSegmenter.run` and gets one :class:`BatchResult` per
image as it finishes, so a terminal shows a progress bar and the GUI a table, from the same code.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segmentation.backends import sharing_the_cores
from segmentation.export import OverlayStyle, render_overlay
from segmentation.imageio import (
    ImageReadError,
    OutputWriteError,
    atomic_write_bytes,
    is_image_path,
    is_unsupported_image_path,
    read_image,
    write_image,
    write_mask,
)
from segmentation.inference import Predictor
from segmentation.lesion import LesionSegmentation
from segmentation.measurements import measure_lesion

MASK_SUFFIX = "_segmentation.png"
OVERLAY_SUFFIX = "_overlay.jpg"
RESULTS_NAME = "results.csv"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")  # atomic_write_bytes's temp files
log = logging.getLogger("lesionlens.batch")
IN_FLIGHT = 3  # images in the reader -> network -> finisher pipeline at once
BATCH_OVERLAY = OverlayStyle(fill=False)  # the boundary alone: the lesion itself stays visible


class BatchInputError(Exception):
    """The batch cannot start (no inputs, output folder is the input folder...)."""


@dataclass(frozen=True)
class BatchItem:
    """One image to segment and where its outputs go (``relative`` mirrors subfolders with --recursive)."""

    source: Path
    relative: Path

    def mask_path(self, out_dir: Path) -> Path:
        return out_dir / self.relative.parent / f"{self.relative.stem}{MASK_SUFFIX}"

    def overlay_path(self, out_dir: Path) -> Path:
        return out_dir / self.relative.parent / f"{self.relative.stem}{OVERLAY_SUFFIX}"


@dataclass
class BatchResult:
    item: BatchItem
    status: str  # "ok", "error", "skipped" (resume: mask already there)
    error: str = ""
    mask_path: Path | None = None
    seconds: float = 0.0
    row: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in {"ok", "skipped"}


def is_output_name(name: str) -> bool:
    """Files LesionLens itself writes: never taken as inputs, so a rerun does not segment its own masks."""
    return name.endswith((MASK_SUFFIX, OVERLAY_SUFFIX, "_overlay.png"))  # batch and GUI-export overlays


def collect_inputs(
    inputs: Iterable[str | os.PathLike], *, recursive: bool = False
) -> tuple[list[BatchItem], list[BatchResult]]:
    """Expand files and folders into batch items; inputs that do not exist and folders that cannot be listed come
    back as error results.

    Folders are walked without following symbolic links to folders, so a symlink loop cannot trap the walk. Broken
    or looping links to files and formats we refuse (DICOM, GIF, HEIC...) are items too: each then gets its own
    error ("no such file", "DICOM files are not supported yet...") instead of being skipped in silence.
    """
    items: list[BatchItem] = []
    problems: list[BatchResult] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve() if path.exists() else path
        if key not in seen:
            seen.add(key)
            items.append(BatchItem(path, relative))

    def unlistable(error: OSError) -> None:
        folder = Path(error.filename or "")
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror or str(error)
        message = f"{folder}: cannot list the folder ({reason})"
        problems.append(BatchResult(BatchItem(folder, Path(folder.name)), "error", error=message))

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            if recursive:
                for folder, subfolders, files in os.walk(path, onerror=unlistable, followlinks=False):
                    subfolders.sort()
                    for name in sorted(files):
                        file = Path(folder) / name
                        if _wanted(file):
                            add(file, file.relative_to(path))
            else:
                try:
                    listing = sorted(path.iterdir())
                except OSError as error:
                    unlistable(error)
                    continue
                for file in listing:
                    if (file.is_file() or file.is_symlink()) and _wanted(file):
                        add(file, Path(file.name))
        elif path.is_file() or path.is_symlink():
            add(path, Path(path.name))
        else:
            item = BatchItem(path, Path(path.name))
            problems.append(BatchResult(item, "error", error=f"{path}: no such file or folder"))
    return items, problems


def _wanted(file: Path) -> bool:
    return (is_image_path(file) or is_unsupported_image_path(file)) and not is_output_name(file.name)


def check_output_folder(inputs: Iterable[str | os.PathLike], out_dir: Path, *, allow_input_folder: bool) -> None:
    """Refuse to write into an input folder unless asked, so masks never mix with the clinician's images."""
    if allow_input_folder:
        return
    out = out_dir.resolve()
    for raw in inputs:
        path = Path(raw)
        folder = (path if path.is_dir() else path.parent).resolve()
        if folder == out:
            raise BatchInputError(
                f"the output folder {out_dir} is the input folder {path}; choose another --out (or pass "
                "--allow-input-folder to write masks beside the images)"
            )


class BatchSegmenter:
    """Segments items one after another, reading the next image while the current one is inferred."""

    def __init__(
        self,
        predictor: Predictor,
        out_dir: str | os.PathLike,
        *,
        threshold: float = 0.5,
        overlay: bool = False,
        resume: bool = False,
        measure: bool = True,
        mm_per_pixel: float | None = None,
        max_megapixels: float = 120.0,
    ) -> None:
        self.predictor = predictor
        self.out_dir = Path(out_dir)
        self.threshold = threshold
        self.overlay = overlay
        self.resume = resume
        self.measure = measure
        self.mm_per_pixel = mm_per_pixel
        self.max_megapixels = max_megapixels

    def provenance(self) -> dict[str, str | float]:
        return {
            "model": self.predictor.info.name,
            "model_sha256": self.predictor.weights_sha256,  # the file's SHA-256, as sha256sum prints it
            "threshold": self.threshold,
            "mm_per_pixel": self.mm_per_pixel or "",
        }

    def run(
        self, items: list[BatchItem], *, cancel: threading.Event | None = None, owned: Iterable[Path] = ()
    ) -> Iterator[BatchResult]:
        """Yield one result per item.

        An existing file at an output path is overwritten only if LesionLens wrote it (``owned``: the outputs an
        earlier run recorded in results.csv). Inputs and anything else the user made are never written over.
        """
        cancel = cancel or threading.Event()
        started = time.time()
        owned_paths = {p.resolve() for p in owned}
        inputs = {item.source.resolve() for item in items if item.source.exists()}
        planned: dict[Path, BatchItem] = {}
        todo: list[BatchItem] = []
        for item in items:
            target = item.mask_path(self.out_dir)
            targets = [target, item.overlay_path(self.out_dir)] if self.overlay else [target]
            clash = next((t for t in targets if t in planned), None)
            if clash is not None:
                error = (
                    f"{item.source}: its output name {clash.name} collides with {planned[clash].source}; "
                    "use --recursive or separate output folders"
                )
                yield BatchResult(item, "error", error=error)
            elif any(t.resolve() in inputs for t in targets):
                yield BatchResult(item, "error", error=f"{item.source}: its outputs would overwrite an input")
            elif foreign := next(
                (
                    t
                    for t in targets
                    if t.exists() and t.resolve() not in owned_paths and not (self.resume and t == target)
                ),
                None,
            ):
                error = (
                    f"{item.source}: {foreign} already exists and was not written by LesionLens; "
                    "move it or choose another --out"
                )
                yield BatchResult(item, "error", error=error)
            else:
                planned.update(dict.fromkeys(targets, item))
                if self.resume and target.exists():
                    yield BatchResult(item, "skipped", mask_path=target)
                else:
                    todo.append(item)
        folders = {self.out_dir} | {item.mask_path(self.out_dir).parent for item in todo}
        if removed := remove_stale_temp_files(folders, older_than=started):
            log.info("removed %d temporary file(s) left by an interrupted run", len(removed))
        yield from self._pipeline(todo, cancel)

    def _pipeline(self, todo: list[BatchItem], cancel: threading.Event) -> Iterator[BatchResult]:
        """Three stages in three threads so the CPU never waits on the disk: a reader decodes, the network runs,
        a finisher draws, writes and measures; each image flows through them in order.

        At most ``IN_FLIGHT`` images are in the pipeline (decoded images held at once are bounded by it). Results
        come out in input order, each as soon as its mask is on disk. Cancelling stops before the next image
        reaches the network; the images already past it are finished (their masks are whole) and reported.
        """
        stop = threading.Event()  # cancel, or the caller stopped iterating
        with (
            sharing_the_cores(self.predictor.backend),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesionlens-reader") as reader,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesionlens-network") as network,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesionlens-finisher") as finisher,
        ):

            def submit(item: BatchItem) -> Future:
                read = reader.submit(_timed_read, item, self.max_megapixels)
                inferred = network.submit(self._infer, read, cancel, stop)
                return finisher.submit(self._finish, inferred)

            upcoming = iter(todo)
            flowing: deque[Future] = deque(submit(item) for item in itertools.islice(upcoming, IN_FLIGHT))
            try:
                while flowing:
                    result = flowing.popleft().result()
                    if result is None:  # cancelled before the network: this and all later images are dropped
                        return
                    if (item := next(upcoming, None)) is not None:
                        flowing.append(submit(item))
                    yield result
            finally:
                stop.set()
                for future in flowing:
                    future.cancel()

    def _infer(
        self, read: Future, cancel: threading.Event, stop: threading.Event
    ) -> BatchResult | tuple[BatchItem, np.ndarray, LesionSegmentation, float] | None:
        """The network's stage: a segmentation to finish, the error result for this item, or None if cancelled."""
        if cancel.is_set() or stop.is_set():
            return None
        item, image, read_seconds = read.result()
        started = time.perf_counter() - read_seconds
        if isinstance(image, ImageReadError):
            return BatchResult(item, "error", error=str(image), seconds=time.perf_counter() - started)
        try:
            segmentation = self.predictor.predict(image, self.threshold)
        except MemoryError:
            return self._memory_error(item, started)
        return item, image, segmentation, started

    def _finish(self, inferred: Future) -> BatchResult | None:
        """The finisher's stage: overlay, mask (written last: a mask on disk means the image is done), row."""
        work = inferred.result()
        if work is None or isinstance(work, BatchResult):
            return work
        item, image, segmentation, started = work
        mask_path = item.mask_path(self.out_dir)
        try:
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            if self.overlay:
                write_image(
                    item.overlay_path(self.out_dir), render_overlay(image, segmentation.mask, BATCH_OVERLAY), quality=90
                )
            write_mask(mask_path, segmentation.mask)
            row = self._row(segmentation, image)
        except OutputWriteError as error:
            return BatchResult(item, "error", error=str(error), seconds=time.perf_counter() - started)
        except OSError as error:
            return BatchResult(
                item,
                "error",
                error=f"{mask_path.parent}: {error.strerror or error}",
                seconds=time.perf_counter() - started,
            )
        except MemoryError:
            return self._memory_error(item, started)
        if self.overlay:
            row["overlay"] = str(item.overlay_path(self.out_dir))
        return BatchResult(item, "ok", mask_path=mask_path, seconds=time.perf_counter() - started, row=row)

    @staticmethod
    def _memory_error(item: BatchItem, started: float) -> BatchResult:
        error = f"{item.source}: not enough memory to segment this image"
        return BatchResult(item, "error", error=error, seconds=time.perf_counter() - started)

    def _row(self, segmentation: LesionSegmentation, image: np.ndarray) -> dict:
        row: dict = dict(segmentation.confidence().to_dict())
        if self.measure:
            measurements = measure_lesion(segmentation.mask, image, mm_per_pixel=self.mm_per_pixel)
            row.update(measurements.to_dict() if measurements else {})
        return row


def remove_stale_temp_files(folders: Iterable[Path], *, older_than: float) -> list[Path]:
    """Delete the temp files of masks, overlays and results.csv (``.<name>.<random>.tmp``, see atomic_write_bytes)
    that a killed run left in ``folders``; a temp file changed after ``older_than`` (time.time()) is left alone."""
    removed: list[Path] = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMP_NAME.match(entry.name)
            if not match or not (is_output_name(match["name"]) or match["name"] == RESULTS_NAME):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _timed_read(item: BatchItem, max_megapixels: float) -> tuple[BatchItem, np.ndarray | ImageReadError, float]:
    """The decoded image (or its error) and the seconds decoding took, counted in the item's time."""
    started = time.perf_counter()
    try:
        image: np.ndarray | ImageReadError = read_image(item.source, max_megapixels=max_megapixels)
    except ImageReadError as error:
        image = error
    return item, image, time.perf_counter() - started


class ResultsTable:
    """``results.csv``: one row per image with status, flags, measurements, time and provenance.

    Rows from earlier runs into the same folder are kept (the newest row for a file wins); the file is rewritten
    atomically at most once a second and at the end, so a killed batch leaves a complete table of what finished.
    """

    LEADING = ("file", "status", "error", "mask", "seconds")
    TRAILING = ("model", "model_sha256", "threshold", "mm_per_pixel")

    def __init__(self, path: Path, provenance: dict) -> None:
        self.path = path
        self.provenance = provenance
        self.rows: dict[str, dict] = {}
        self._saved_at = 0.0
        if path.exists():
            try:
                with path.open(newline="", encoding="utf-8") as handle:
                    self.rows = {row["file"]: row for row in csv.DictReader(handle) if row.get("file")}
            except (OSError, UnicodeDecodeError, csv.Error, KeyError):
                self.rows = {}  # an unreadable table is rebuilt; its masks then count as not ours

    def written_files(self) -> set[Path]:
        """Masks and overlays that earlier runs recorded as their own output."""
        return {Path(row[key]) for row in self.rows.values() for key in ("mask", "overlay") if row.get(key)}

    def add(self, result: BatchResult, *, save: bool = True) -> None:
        key = str(result.item.source)
        if result.status == "skipped" and key in self.rows:
            return
        self.rows[key] = {
            "file": key,
            "status": result.status,
            "error": result.error,
            "mask": str(result.mask_path or ""),
            "seconds": round(result.seconds, 3),
            **result.row,
            **self.provenance,
        }
        if save and time.monotonic() - self._saved_at >= 1.0:
            try:
                self.save()
            except OutputWriteError:  # e.g. a full disk: the batch goes on, and the final save() reports it
                self._saved_at = time.monotonic()

    def save(self) -> None:
        columns: list[str] = list(self.LEADING)
        for row in self.rows.values():
            columns += [key for key in row if key not in columns and key not in self.TRAILING]
        columns += list(self.TRAILING)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, buffer.getvalue().encode("utf-8"))
        self._saved_at = time.monotonic()
