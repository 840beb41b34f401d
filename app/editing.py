"""Mask clean-up (fill holes, keep the largest lesion, smooth the boundary) off the GUI thread.

On a 24-megapixel photo one clean-up step takes seconds, which would freeze the window if run inline. The step is
computed on a copy in the background and recorded by ``LesionDocument.apply_cleanup`` (one undo step, the step
added to the provenance), unless the clinician changed the mask meanwhile: then the result is stale and
dropped, never pasted over their newer edit.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from app.document import LesionDocument
from app.workers import TaskContext, TaskRunner
from segmentation.postprocess import CLEANUP_STEPS, clean_up

STEP_NAMES = {"fill_holes": "fill holes", "keep_largest": "keep largest lesion", "smooth": "smooth boundary"}


def _cleanup_task(context: TaskContext, mask: np.ndarray, step: str, generation: int) -> tuple:
    return step, clean_up(mask, [step]), generation


class CleanupController(QObject):
    """Runs one clean-up step at a time; ``done(message)`` says what happened."""

    done = Signal(str)

    def __init__(self, document: LesionDocument, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.runner = TaskRunner("clean up the mask", pool, self)
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self.done)
        self._generation = 0
        document.maskChanged.connect(self._mask_changed)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def run(self, step: str) -> bool:
        """Start ``step`` (one of CLEANUP_STEPS) on the current mask; False if there is no mask."""
        if step not in CLEANUP_STEPS:
            raise ValueError(f"unknown clean-up step {step!r}")
        if self.document.mask is None:
            return False
        self.runner.start(_cleanup_task, self.document.mask.copy(), step, self._generation)
        return True

    def _mask_changed(self) -> None:
        self._generation += 1

    def _finished(self, result: object) -> None:
        step, new_mask, generation = result  # type: ignore[misc]
        document = self.document
        if generation != self._generation or document.mask is None or new_mask.shape != document.mask.shape:
            self.done.emit(f"The mask changed during “{STEP_NAMES[step]}”; run it again.")
            return
        changed = document.apply_cleanup(step, new_mask)
        self.done.emit(f"Clean-up “{STEP_NAMES[step]}”: " + ("done." if changed else "nothing to change."))
