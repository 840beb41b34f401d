"""Background work for the GUI: image loading, model loading, segmentation, measurements, thumbnails, batches.

The window must never freeze, so anything that can take more than a frame runs on a QThreadPool. A
:class:`TaskRunner` owns one kind of work and relays its task's outcome to the GUI thread as signals
(``started``, ``progress``, ``finished(result)``, ``failed(message)``, ``cancelled``). Starting a new task or
calling :meth:`TaskRunner.cancel` makes the previous one stale: the UI is free at once, and whatever the stale task
still computes (a torch call cannot be interrupted) is discarded when it arrives. Long loops (batches) also get a
``threading.Event`` so they stop at the next item.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from segmentation import imageio
from segmentation.folderlock import FolderLockedError
from segmentation.imageio import ImageReadError, OutputWriteError, read_image
from segmentation.inference import Predictor
from segmentation.lesion import LesionSegmentation
from segmentation.measurements import LesionMeasurements
from segmentation.quality import QualityAssessment
from segmentation.weights import WeightsError

log = logging.getLogger("lesionlens.gui")

#: Errors whose message is already written for a person; anything else is logged with its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ImageReadError, WeightsError, OutputWriteError, FolderLockedError)


class TaskContext:
    """What a task function gets: ``cancelled()`` to poll, ``event`` to hand to loops, ``progress(value)``."""

    def __init__(self, report: Callable[[object], None], event: threading.Event) -> None:
        self._report = report
        self.event = event

    def cancelled(self) -> bool:
        return self.event.is_set()

    def progress(self, value: object) -> None:
        """Report progress (any object: a fraction, a batch result...); dropped in the GUI thread if stale."""
        self._report(value)


class _Task(QRunnable):
    def __init__(self, runner: TaskRunner, token: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner keeps the Python object alive until the task has run
        self.runner, self.token, self.fn, self.args, self.kwargs = runner, token, fn, args, kwargs
        self.event = threading.Event()
        self.stale = False  # cancelled or replaced: nobody wants its result

    def run(self) -> None:
        if self.stale:
            self._emit("done", None)
            return
        self._emit("started", None)
        context = TaskContext(lambda value: self._emit("progress", value), self.event)
        try:
            result = self.fn(context, *self.args, **self.kwargs)
        except MemoryError:
            self._emit("failed", f"Not enough memory to {self.runner.description}.")
        except EXPECTED_ERRORS as error:
            self._emit("failed", str(error))
        except Exception as error:  # a bug or an odd file: say so, keep the app alive, log the traceback
            log.exception("background task %r failed", self.runner.description)
            self._emit("failed", f"Could not {self.runner.description}: {error}")
        else:
            self._emit("finished", result)
        self._emit("done", None)

    def _emit(self, kind: str, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the window was closed and its runner deleted: nobody listens
            self.runner._relay.emit(self.token, kind, value)


class TaskRunner(QObject):
    """Runs one task of a kind at a time on ``pool``; only the newest task's signals reach the GUI.

    ``description`` completes "Could not …" / "Not enough memory to …" in error messages.
    """

    started = Signal()
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    busyChanged = Signal(bool)

    _relay = Signal(int, str, object)

    def __init__(self, description: str, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.description = description
        self.pool = pool
        self._token = 0
        self._current: _Task | None = None
        self._alive: dict[int, _Task] = {}
        self._relay.connect(self._on_relay, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._current is not None

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(context, *args, **kwargs)`` in the pool; a task already running becomes stale (no signals)."""
        self._drop_current()
        self._token += 1
        task = _Task(self, self._token, fn, args, kwargs)
        self._current = task
        self._alive[task.token] = task
        self.busyChanged.emit(True)
        self.pool.start(task)

    def cancel(self) -> None:
        """Forget the running task now (the UI is free at once) and emit ``cancelled`` if there was one."""
        if self._drop_current():
            self.busyChanged.emit(False)
            self.cancelled.emit()

    def request_stop(self) -> None:
        """Ask the running task to stop at its next check (batches: after the current image); its result and
        the outcome of what it finished still arrive, unlike :meth:`cancel`."""
        if self._current is not None:
            self._current.event.set()

    def _drop_current(self) -> bool:
        task, self._current = self._current, None
        if task is None:
            return False
        task.stale = True
        task.event.set()
        if self.pool.tryTake(task):  # never started: nothing will come back from it
            self._alive.pop(task.token, None)
        return True

    @Slot(int, str, object)
    def _on_relay(self, token: int, kind: str, value: object) -> None:
        if kind == "done":
            self._alive.pop(token, None)
            return
        task = self._current
        if task is None or task.token != token:
            return  # a stale task: cancelled or replaced
        if kind == "started":
            self.started.emit()
        elif kind == "progress":
            self.progress.emit(value)
        else:
            self._current = None
            self.busyChanged.emit(False)
            (self.finished if kind == "finished" else self.failed).emit(value)

    def wait(self, msecs: int = 5000) -> bool:
        """Wait for the pool (used when the window closes, so no thread outlives the Python objects)."""
        return self.pool.waitForDone(msecs)


def new_pool(threads: int, parent: QObject | None = None) -> QThreadPool:
    pool = QThreadPool(parent)
    pool.setMaxThreadCount(threads)
    return pool


# ------------------------------------------------------------------------------------------------ task functions
def load_image_task(context: TaskContext, path: Path) -> tuple[Path, np.ndarray]:
    """Decode an image (big photos take a second or more): returns (path, RGB array)."""
    return path, read_image(path)


def load_predictor_task(
    context: TaskContext,
    weights: Path,
    device: str,
    expected_sha256: str | None = None,
    backend: str | None = None,
) -> tuple[Predictor, str]:
    """Load the model (refused unless its tensors hash to ``expected_sha256``, when given); a device that is not
    available falls back to the CPU with a note instead of failing. ``backend`` None or "auto": the faster one
    (``$LESIONLENS_BACKEND`` may choose)."""
    backend = None if backend in (None, "auto") else backend
    try:
        return Predictor(weights, device, expected_sha256=expected_sha256, backend=backend), ""
    except (RuntimeError, ValueError) as error:  # the device (e.g. --device cuda on a laptop), not the weights
        if device in ("auto", "cpu"):
            raise
        predictor = Predictor(weights, "cpu", expected_sha256=expected_sha256, backend=backend)
        return predictor, f"{error}; using the CPU instead"


def segment_task(
    context: TaskContext, predictor: Predictor, path: Path, image: np.ndarray
) -> tuple[Path, LesionSegmentation]:
    """Run the network; returns (path, LesionSegmentation) so a late result is never applied to another image. The
    document shows the result at its own threshold (LesionDocument.set_segmentation)."""
    return path, predictor.predict(image)


def folder_quality_task(
    context: TaskContext, predictor: Predictor, path: Path, threshold: float
) -> tuple[Path, QualityAssessment]:
    """Segment one image of the open folder in the background: its estimated Dice and flags for the list."""
    image = read_image(path)
    return path, predictor.predict(image, threshold).quality()


def analyse_task(
    context: TaskContext,
    path: Path,
    result: LesionSegmentation,
    image: np.ndarray,
    mm_per_pixel: float | None,
    regions: str = "largest",
) -> tuple[Path, LesionMeasurements | None, QualityAssessment | None]:
    """Measurements and the quality estimate of the lesion result (a snapshot: LesionDocument.snapshot), off the GUI
    thread; the measurements take about a tenth of a second on a 12-megapixel photo, see benchmarks/measure_edit.py.
    The quality estimate needs the model's map: None for a mask without one."""
    measurements = result.measure(image, mm_per_pixel=mm_per_pixel, regions=regions)
    context.progress((path, measurements))  # shown at once, ahead of the quality estimate
    quality = None if result.probability is None else result.quality()
    return path, measurements, quality


def thumbnail_task(context: TaskContext, paths: list[Path], size: int) -> None:
    """Small previews for the folder list, one progress report per file: (path, QImage or None)."""
    for path in paths:
        if context.cancelled():
            return None
        context.progress((path, read_thumbnail(path, size)))
    return None


def read_thumbnail(path: Path, size: int) -> QImage | None:
    """A QImage preview, read by ``segmentation.imageio.read_thumbnail`` (JPEGs decode at reduced size).

    QImage (not QPixmap) may be made off the GUI thread. An unreadable file gets no preview (its error shows when
    it is opened).
    """
    try:
        pixels = imageio.read_thumbnail(path, size)
    except ImageReadError:
        return None
    height, width = pixels.shape[:2]
    qimage = QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_RGB888)
    return qimage.copy()  # own the pixels: ``pixels`` goes away
