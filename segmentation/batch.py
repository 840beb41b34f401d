"""Batch segmentation of many images: the engine behind ``lesionlens segment`` and the GUI's batch dialog.

Plain Python, no Qt: the caller iterates over :meth:`BatchSegmenter.run` and gets one :class:`BatchResult` per
image as it finishes, so a terminal shows a progress bar and the GUI a table, from the same code.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segmentation.backends import sharing_the_cores
from segmentation.calibration import Calibration
from segmentation.export import OverlayStyle, render_overlay
from segmentation.geojson import mask_to_geojson
from segmentation.imageio import (
    ImageReadError,
    OutputWriteError,
    atomic_write_bytes,
    encode_grey,
    encode_image,
    encode_mask,
    is_image_path,
    is_unsupported_image_path,
    read_image,
    write_reason,
)
from segmentation.inference import Predictor
from segmentation.lesion import LesionSegmentation
from segmentation.measurements import LesionMeasurements
from segmentation.naming import BATCH_SUFFIXES, OUTPUT_IMAGE_SUFFIXES, is_output_name, output_name
from segmentation.ownership import CHANGED, FOREIGN, OURS, OutputRecord, describe
from segmentation.provenance import PROVENANCE_KEYS, result_provenance
from segmentation.quality import QualityAssessment
from segmentation.tables import csv_bytes, read_csv_rows

RESULTS_NAME = "results.csv"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")  # atomic_write_bytes's temp files
log = logging.getLogger("lesionlens.batch")
IN_FLIGHT = 3  # images in the reader -> network -> finisher pipeline at once
BATCH_OVERLAY = OverlayStyle(fill=False)  # the boundary alone: the lesion itself stays visible


class BatchInputError(Exception):
    """The batch cannot start (no inputs, output folder is the input folder...)."""


@dataclass(frozen=True)
class BatchItem:
    """One image to segment and where its outputs go (``relative`` mirrors subfolders with --recursive).

    Outputs are named ``<stem><suffix>``; when two inputs would share a stem (``a.jpg`` beside ``a.png``) each
    keeps its extension instead (``a.jpg_segmentation.png``, ``a.png_segmentation.png``): ``output_stem``."""

    source: Path
    relative: Path
    output_stem: str = ""

    def output_path(self, out_dir: Path, suffix: str) -> Path:
        return out_dir / self.relative.parent / output_name(self.output_stem or self.relative.stem, suffix)

    def mask_path(self, out_dir: Path) -> Path:
        return self.output_path(out_dir, BATCH_SUFFIXES["mask"])

    def overlay_path(self, out_dir: Path) -> Path:
        return self.output_path(out_dir, BATCH_SUFFIXES["overlay"])


@dataclass
class BatchResult:
    """One image's outcome. ``quality`` and ``measurements`` are there for a segmented image ("ok"; measurements
    only when the batch measures); ``outputs`` are the files written besides the mask (kind -> path).
    Only :class:`ResultsTable` flattens them into columns."""

    item: BatchItem
    status: str  # "ok", "error", "skipped" (resume: mask already there)
    error: str = ""
    mask_path: Path | None = None
    seconds: float = 0.0
    quality: QualityAssessment | None = None
    measurements: LesionMeasurements | None = None
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in {"ok", "skipped"}

    @property
    def needs_review(self) -> bool:
        """The estimated Dice is below the model's operating point (the flag to check first)."""
        return self.quality is not None and self.quality.needs_review

    def columns(self) -> dict[str, object]:
        """The quality and measurement columns of ``results.csv`` (none for an error or a skipped image)."""
        return {
            **(self.quality.to_dict() if self.quality else {}),
            **(self.measurements.to_dict() if self.measurements else {}),
            **{kind: str(path.absolute()) for kind, path in self.outputs.items()},
        }


def collect_inputs(
    inputs: Iterable[str | os.PathLike], *, recursive: bool = False, skipped: Counter | None = None
) -> tuple[list[BatchItem], list[BatchResult]]:
    """Expand files and folders into batch items; inputs that do not exist and folders that cannot be listed come
    back as error results.

    Folders are walked without following symbolic links to folders, so a symlink loop cannot trap the walk. Broken
    or looping links to files and formats we refuse (DICOM, GIF, HEIC...) are items too: each then gets its own
    error ("no such file", "DICOM files are not supported yet...") instead of being skipped in silence. Images left
    out on purpose are counted in ``skipped``: ``"output_names"`` (named like LesionLens's outputs) and, without
    ``recursive``, ``"in_subfolders"``.
    """
    items: list[BatchItem] = []
    problems: list[BatchResult] = []
    seen: set[Path] = set()
    skipped = Counter() if skipped is None else skipped

    def add(path: Path, relative: Path) -> None:
        key = path.resolve() if path.exists() else path
        if key not in seen:
            seen.add(key)
            items.append(BatchItem(path, relative))

    def consider(file: Path, relative: Path) -> None:
        if is_image_path(file) or is_unsupported_image_path(file):
            if is_output_name(file.name):
                skipped["output_names"] += 1
            else:
                add(file, relative)

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
                        consider(file, file.relative_to(path))
            else:
                try:
                    listing = sorted(path.iterdir())
                except OSError as error:
                    unlistable(error)
                    continue
                for file in listing:
                    if file.is_dir() and not file.is_symlink():
                        skipped["in_subfolders"] += _count_images(file)
                    elif not file.is_dir():
                        consider(file, Path(file.name))
        elif path.exists() or path.is_symlink():  # a device or pipe too: read_image says what it is
            add(path, Path(path.name))
        else:
            item = BatchItem(path, Path(path.name))
            problems.append(BatchResult(item, "error", error=f"{path}: no such file or folder"))
    return _name_apart(items), problems


def _count_images(folder: Path) -> int:
    """Images below ``folder`` (what --recursive would add), walked without following folder links."""
    return sum(
        1
        for _, _, files in os.walk(folder, followlinks=False)
        for name in files
        if (is_image_path(name) or is_unsupported_image_path(name)) and not is_output_name(name)
    )


def _name_apart(items: list[BatchItem]) -> list[BatchItem]:
    """Inputs that would share output names (``a.jpg`` beside ``a.png``) keep their extension in them."""
    names: dict[tuple[Path, str], set[str]] = {}
    for item in items:
        names.setdefault((item.relative.parent, item.relative.stem), set()).add(item.relative.name)
    return [
        BatchItem(item.source, item.relative, item.relative.name)
        if len(names[(item.relative.parent, item.relative.stem)]) > 1
        else item  # the same name twice (two folders, no --recursive) stays a collision, reported as such
        for item in items
    ]


def skipped_note(skipped: Counter) -> str:
    """Why images were left out, for the user ("" if none were)."""
    notes = []
    if n := skipped.get("in_subfolders", 0):
        notes.append(f"{n} image(s) in subfolders skipped (add --recursive to include them)")
    if n := skipped.get("output_names", 0):
        notes.append(
            f"{n} file(s) named like LesionLens's own outputs ({', '.join('*' + s for s in OUTPUT_IMAGE_SUFFIXES)}) "
            "skipped; rename them to segment them"
        )
    return "; ".join(notes)


def check_output_folder(
    inputs: Iterable[str | os.PathLike], out_dir: Path, *, allow_input_folder: bool, recursive: bool = False
) -> None:
    """Refuse to write into an input folder (or, with ``recursive``, anywhere below one) unless asked, so masks never
    mix with the clinician's images and a later walk never meets them."""
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
        if recursive and path.is_dir() and out.is_relative_to(folder):
            raise BatchInputError(
                f"the output folder {out_dir} is inside the input folder {path}, which --recursive walks; choose "
                "an --out outside it (or pass --allow-input-folder)"
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
        probability: bool = False,
        geojson: bool = False,
    ) -> None:
        self.predictor = predictor
        self.out_dir = Path(out_dir)
        self.threshold = threshold
        self.overlay = overlay
        self.resume = resume
        self.measure = measure
        self.mm_per_pixel = mm_per_pixel
        self.max_megapixels = max_megapixels
        self.probability = probability
        self.geojson = geojson
        self.record = OutputRecord(self.out_dir)

    @property
    def calibration(self) -> Calibration | None:
        """The run's calibration (``--mm-per-pixel``, typed in), None when it measures in pixels."""
        return None if self.mm_per_pixel is None else Calibration(self.mm_per_pixel, "typed")

    def provenance(self) -> dict[str, object]:
        """The run's provenance record (segmentation.provenance): every image of the run shares it."""
        return result_provenance(self.predictor.identity, threshold=self.threshold, calibration=self.calibration)

    def targets(self, item: BatchItem) -> dict[str, Path]:
        """kind -> where this run writes it; the mask comes last (written last: a mask on disk means done)."""
        wanted = {"overlay": self.overlay, "probability": self.probability, "geojson": self.geojson}
        paths = {kind: item.output_path(self.out_dir, BATCH_SUFFIXES[kind]) for kind, on in wanted.items() if on}
        return {**paths, "mask": item.mask_path(self.out_dir)}

    def run(
        self, items: list[BatchItem], *, cancel: threading.Event | None = None, finished: Iterable[Path] = ()
    ) -> Iterator[BatchResult]:
        """Yield one result per item.

        An existing file at an output path is overwritten only if the folder's ownership record proves LesionLens
        wrote exactly those bytes (segmentation.ownership); inputs, anything else the user made and anything
        changed since are never written over. With ``resume``, an image is already done when all its outputs are
        LesionLens's own and intact and ``finished`` (the absolute paths of the images results.csv has an "ok" row
        for) lists it; otherwise it is segmented again, so the table ends complete.
        """
        cancel = cancel or threading.Event()
        started = time.time()
        done = {Path(p) for p in finished}
        inputs = {item.source.resolve() for item in items if item.source.exists()}
        planned: dict[Path, BatchItem] = {}
        todo: list[BatchItem] = []
        for item in items:
            targets = list(self.targets(item).values())
            try:
                clash = next((t for t in targets if t in planned), None)
                overwrites_input = any(t.resolve() in inputs for t in targets)
                states = {t: self.record.state(t) for t in targets}
            except OSError as error:  # e.g. a 250-byte name: its output name is over the file system's limit
                reason = write_reason(error)
                yield BatchResult(item, "error", error=f"{item.source}: cannot write its outputs ({reason})")
                continue
            if clash is not None:
                error = (
                    f"{item.source}: its output name {clash.name} collides with {planned[clash].source}; "
                    "use --recursive or separate output folders"
                )
                yield BatchResult(item, "error", error=error)
            elif overwrites_input:
                yield BatchResult(item, "error", error=f"{item.source}: its outputs would overwrite an input")
            elif bad := next((t for t, state in states.items() if state in (FOREIGN, CHANGED)), None):
                yield BatchResult(item, "error", error=f"{item.source}: {describe(bad, states[bad])}")
            else:
                planned.update(dict.fromkeys(targets, item))
                ours = all(state == OURS for state in states.values())
                if self.resume and ours and item.source.absolute() in done:
                    yield BatchResult(item, "skipped", mask_path=targets[-1])
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
        """The finisher's stage: row, then the other outputs, then the mask (last: a mask on disk means done)."""
        work = inferred.result()
        if work is None or isinstance(work, BatchResult):
            return work
        item, image, segmentation, started = work
        targets = self.targets(item)
        mask_path = targets["mask"]
        try:
            quality = segmentation.quality()
            measurements = self._measure(segmentation, image)
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            for kind, path in targets.items():
                self.record.write(
                    path, self._encode(kind, path, item, image, segmentation), kind=kind, source=item.source
                )
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
        return BatchResult(
            item,
            "ok",
            mask_path=mask_path,
            seconds=time.perf_counter() - started,
            quality=quality,
            measurements=measurements,
            outputs={kind: path for kind, path in targets.items() if kind != "mask"},
        )

    def _encode(
        self, kind: str, path: Path, item: BatchItem, image: np.ndarray, segmentation: LesionSegmentation
    ) -> bytes:
        """The bytes of one output file."""
        if kind == "mask":
            return encode_mask(segmentation.mask)
        if kind == "overlay":  # the photo is not needed after this: drawn on and encoded in place (120 MP: no copies)
            overlay = render_overlay(image, segmentation.mask, BATCH_OVERLAY, in_place=True)
            return encode_image(path, overlay, quality=90, consume=True)
        if kind == "probability":  # 0-255 = probability 0-1, at the image's size
            return encode_grey(np.clip(np.rint(segmentation.probability * 255.0), 0, 255).astype(np.uint8))
        properties = {"image": item.source.name, **segmentation.provenance(self.calibration)}
        document = mask_to_geojson(segmentation.mask, properties=properties)
        return (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")

    @staticmethod
    def _memory_error(item: BatchItem, started: float) -> BatchResult:
        error = f"{item.source}: not enough memory to segment this image"
        return BatchResult(item, "error", error=error, seconds=time.perf_counter() - started)

    def _measure(self, segmentation: LesionSegmentation, image: np.ndarray) -> LesionMeasurements | None:
        if not self.measure:
            return None
        return segmentation.measure(image, mm_per_pixel=self.mm_per_pixel)


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

    Rows from earlier runs into the same folder are kept (the newest row for a file wins; files are named by their
    absolute path); the file is rewritten atomically at most once a second and at the end, so a killed batch leaves
    a complete table of what finished. Cells that a spreadsheet would run as formulas are neutralised
    (segmentation.tables).
    """

    LEADING = ("file", "status", "error", "mask", "seconds")
    TRAILING = PROVENANCE_KEYS

    def __init__(self, path: Path, provenance: dict) -> None:
        self.path = path
        self.provenance = provenance
        self.rows: dict[str, dict] = {}
        self._saved_at = 0.0
        if path.exists():
            try:
                rows = read_csv_rows(path.read_text(encoding="utf-8"))
                self.rows = {row["file"]: row for row in rows if row.get("file")}
            except (OSError, UnicodeDecodeError, ValueError):
                self.rows = {}  # an unreadable table is rebuilt; its images are then segmented again

    def finished(self) -> set[Path]:
        """The images an earlier run finished (an "ok" row), as absolute paths."""
        return {Path(key) for key, row in self.rows.items() if row.get("status") == "ok"}

    def add(self, result: BatchResult, *, save: bool = True) -> None:
        key = str(result.item.source.absolute())
        if result.status == "skipped" and key in self.rows:
            return
        self.rows[key] = {
            "file": key,
            "status": result.status,
            "error": result.error,
            "mask": str(result.mask_path.absolute()) if result.mask_path else "",
            "seconds": round(result.seconds, 3),
            **result.columns(),
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, csv_bytes(self.rows.values(), columns))
        self._saved_at = time.monotonic()
