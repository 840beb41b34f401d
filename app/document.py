"""The open image and its lesion mask: the one object every widget listens to (napari-style model layer).

The document owns the image, the lesion result (:class:`LesionSegmentation`: the model's probability map with the
current, possibly edited, mask, its threshold and clean-up) and the undo stack. Widgets change it only through its
methods and redraw on its signals; it never calls a widget.
Mask edits are stored as small diffs (changed flat indices with old and new values), one undo step per brush
stroke, vertex drag or clean-up, so undo stays cheap on a 24-megapixel photo.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from segmentation.calibration import Calibration
from segmentation.lesion import DEFAULT_THRESHOLD, LesionSegmentation
from segmentation.postprocess import clean_up
from segmentation.provenance import ModelIdentity, result_provenance
from segmentation.quality import QualityAssessment

UNDO_LIMIT = 100


def edit_clock() -> str:
    """Now, as the UTC ISO time stamped on an edit (a function so tests can set the clock)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def mask_digest(mask: np.ndarray | None) -> str:
    """Hash of a mask's shape and bits: an image's kept undo history applies only to the mask it was left with."""
    if mask is None:
        return ""
    digest = hashlib.sha256(f"{mask.shape[0]}x{mask.shape[1]}:".encode())
    digest.update(np.packbits(mask, axis=None).tobytes())
    return digest.hexdigest()


class MaskEdit(QUndoCommand):
    """One undoable change of the mask: the flat indices that changed, with their old and new values."""

    def __init__(
        self,
        document: LesionDocument,
        indices: np.ndarray,
        old: np.ndarray,
        new: np.ndarray,
        text: str,
        *,
        was_edited: bool,
        edited_after: bool = True,
    ) -> None:
        super().__init__(text)
        self.document = document
        self.indices, self.old, self.new = indices, old, new
        self.was_edited, self.edited_after = was_edited, edited_after

    def redo(self) -> None:
        self.document._write(self.indices, self.new, edited=self.edited_after)

    def undo(self) -> None:
        self.document._write(self.indices, self.old, edited=self.was_edited)


class LesionDocument(QObject):
    """State of one image in the editor.

    Each image keeps its own undo history while the folder is open (``undo_group`` switches between them, so the
    window's Undo/Redo follow the open image); a kept history is used again only if the image comes back with the
    very mask it was left with (autosave or the model's same result), else it is dropped rather than misapplied.

    Signals: ``imageChanged`` (a new image was opened), ``segmentationChanged`` (the model's result arrived or was
    cleared), ``maskChanged`` (any change of the current mask: threshold, edit, undo, reset), ``calibrationChanged``.
    """

    imageChanged = Signal()
    segmentationChanged = Signal()
    maskChanged = Signal()
    calibrationChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.image: np.ndarray | None = None
        #: The open image's lesion result (its mask is the current mask), None before there is a mask.
        self.result: LesionSegmentation | None = None
        self._threshold = DEFAULT_THRESHOLD  # the slider's threshold: the next model result is shown at it
        self.calibration: Calibration | None = None  # of this image only: a new image starts uncalibrated
        self.regions = "largest"  # what is measured: the largest region, or "all" regions together
        self.edited_at = ""  # UTC ISO time of the last edit (stroke, clean-up, undo...), "" when never edited
        self.undo_group = QUndoGroup(self)
        self._histories: dict[Path, tuple[QUndoStack, str]] = {}
        self._expected_mask = ""  # digest the mask must have for the kept history to apply; "" when nothing pends
        self.undo_stack = self._new_stack()

    # -- the result's state ---------------------------------------------------------------------------------------
    @property
    def segmentation(self) -> LesionSegmentation | None:
        """The result when it has the model's probability map (the slider, the quality estimate and Reset work)."""
        result = self.result
        return result if result is not None and result.probability is not None else None

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.result is None else self.result.mask

    @property
    def threshold(self) -> float:
        return self._threshold if self.result is None else self.result.threshold

    @threshold.setter
    def threshold(self, threshold: float) -> None:
        """The threshold the next model result is shown at (the mask shown now is not changed: see set_threshold)."""
        self._threshold = float(threshold)
        if self.result is not None and not self.result.edited:
            self.result.threshold = float(threshold)

    @property
    def edited(self) -> bool:
        return self.result is not None and self.result.edited

    @property
    def cleanup(self) -> tuple[str, ...]:
        return () if self.result is None else self.result.cleanup

    @property
    def model(self) -> ModelIdentity:
        """The model behind the mask (the result's; a batch's mask names the model its run recorded)."""
        return ModelIdentity() if self.result is None else self.result.model

    def snapshot(self) -> LesionSegmentation | None:
        """The result as it is now, for a worker: its own copy of the mask (the maps are shared, never written)."""
        return None if self.result is None else replace(self.result, mask=self.result.mask.copy())

    def _blank_result(self) -> LesionSegmentation:
        """An empty mask to edit before any result arrived (the clinician outlines the lesion by hand)."""
        self.result = LesionSegmentation(None, self._threshold, mask=np.zeros(self.image.shape[:2], bool))
        return self.result

    # -- undo histories, one per image -------------------------------------------------------------------------
    def _new_stack(self) -> QUndoStack:
        stack = QUndoStack(self)
        stack.setUndoLimit(UNDO_LIMIT)
        self.undo_group.addStack(stack)
        self.undo_group.setActiveStack(stack)
        return stack

    def _drop_stack(self, stack: QUndoStack) -> None:
        self.undo_group.removeStack(stack)
        stack.deleteLater()

    def _switch_history(self, path: Path) -> None:
        """Keep the leaving image's history (with the mask it applies to) and take up ``path``'s, if kept."""
        leaving = self.undo_stack
        if self.path is not None and leaving.count():
            self._histories[self.path] = (leaving, mask_digest(self.mask))
        elif leaving is not None:
            self._drop_stack(leaving)
        kept = self._histories.pop(path, None)
        if kept is None:
            self.undo_stack, self._expected_mask = self._new_stack(), ""
        else:
            self.undo_stack, self._expected_mask = kept
            self.undo_group.setActiveStack(self.undo_stack)

    def _check_history(self) -> None:
        """The image's mask is known again: keep its history only if the mask is the one the history ends on."""
        if self._expected_mask and mask_digest(self.mask) != self._expected_mask:
            self.undo_stack.clear()
        self._expected_mask = ""

    def forget_histories(self) -> None:
        """Another folder was opened: the other images' histories go (the open image keeps its own)."""
        for stack, _digest in self._histories.values():
            self._drop_stack(stack)
        self._histories.clear()

    def has_history(self, path: Path) -> bool:
        return Path(path) in self._histories

    # -- opening and the model's result -----------------------------------------------------------------------
    def open_image(self, path: Path, image: np.ndarray) -> None:
        self._switch_history(Path(path))
        self.path, self.image = Path(path), image
        self.result, self.edited_at = None, ""
        self.calibration, self.regions = None, "largest"
        self.imageChanged.emit()
        self.calibrationChanged.emit()
        self.segmentationChanged.emit()
        self.maskChanged.emit()

    def set_segmentation(self, segmentation: LesionSegmentation) -> None:
        """The model's result for the open image, shown at the document's threshold; it replaces the mask unless the
        clinician already edited it (then the edited mask stays, with the model's map behind it)."""
        if self.image is None or segmentation.probability is None or segmentation.shape != self.image.shape[:2]:
            raise ValueError("segmentation does not match the open image")
        kept = self.result if self.edited else None
        if kept is None:
            if segmentation.threshold != self.threshold:
                segmentation.set_threshold(self.threshold)  # the model's mask at the slider's threshold, in place
            self.result = segmentation
        else:
            self.result = replace(
                segmentation, mask=kept.mask, threshold=kept.threshold, edited=True, cleanup=kept.cleanup
            )
        self.segmentationChanged.emit()
        if kept is None:
            self._check_history()
            self.maskChanged.emit()

    def restore(
        self,
        mask: np.ndarray,
        *,
        edited: bool,
        threshold: float,
        cleanup: tuple[str, ...],
        edited_at: str = "",
    ) -> None:
        """Put back a saved state (autosave) as the starting point. The image's undo history from earlier in this
        session is kept when the state is the one it was left in, else the history starts empty."""
        mask = mask.astype(bool)
        if self.result is None:
            self.result = LesionSegmentation(None, threshold, mask=mask, edited=edited, cleanup=cleanup)
        else:
            self.result = replace(self.result, mask=mask, threshold=threshold, edited=edited, cleanup=cleanup)
        self._threshold = float(threshold)
        self.edited_at = edited_at
        self._check_history()
        self.maskChanged.emit()

    def load_mask(self, mask: np.ndarray, source: dict) -> None:
        """Show a mask written earlier (a batch's) as the model's result, without running the model; ``source``
        is its provenance record (model, model_sha256, device, backend, threshold) and goes into exports."""
        if self.image is None or mask.shape != self.image.shape[:2]:
            raise ValueError("the mask does not match the open image")
        threshold = self.threshold if source.get("threshold") is None else float(source["threshold"])
        mask = mask.astype(bool)
        if self.segmentation is not None:  # the open image's model result stays behind it (slider, quality)
            self.result = replace(self.segmentation, mask=mask, threshold=threshold, edited=False)
        else:
            model = ModelIdentity.from_record(source)
            self.result = LesionSegmentation(None, threshold, model, mask=mask, cleanup=self.cleanup)
        self._threshold = threshold
        self._check_history()
        self.maskChanged.emit()

    # -- threshold: edits win ------------------------------------------------------------------------------------
    def set_threshold(self, threshold: float) -> bool:
        """Re-binarise the probability map; ignored (returns False) once the clinician has edited the mask."""
        if self.edited:
            return False  # the edited mask keeps the threshold it was made from (provenance stays true)
        self._threshold = float(threshold)
        if self.result is None or not self.result.set_threshold(threshold):
            return False
        self.maskChanged.emit()
        return True

    def reset_to_model(self) -> None:
        """Back to the model's mask at the current threshold (the slider works again); undoable like any edit."""
        if self.segmentation is None or self.mask is None:
            return
        model_mask = self.segmentation.model_mask(self.threshold)
        if not self.replace_mask(model_mask, "Reset to the model's mask", edited_after=False):
            self.result.edited = False
            self.maskChanged.emit()
        self.result.cleanup = ()

    # -- edits -------------------------------------------------------------------------------------------------
    def replace_mask(self, new_mask: np.ndarray, text: str, *, edited_after: bool = True) -> bool:
        """Record the difference between the current and ``new_mask`` as one undo step; False if nothing changed."""
        if self.mask is None:
            if self.image is None:
                return False
            self._blank_result()
        self._check_history()
        changed = np.flatnonzero(self.mask.ravel() != new_mask.ravel())
        if changed.size == 0:
            return False
        self.undo_stack.push(
            MaskEdit(
                self,
                changed,
                self.mask.ravel()[changed].copy(),
                new_mask.ravel()[changed].copy(),
                text,
                was_edited=self.edited,
                edited_after=edited_after,
            )
        )
        return True

    def paint(self, region: np.ndarray, offset: tuple[int, int], value: bool, text: str) -> bool:
        """Set ``region`` (a bool patch whose top-left corner is at (row, col) ``offset``) to lesion or skin."""
        if self.mask is None:
            return False
        row, col = offset
        h, w = region.shape
        patch = self.mask[row : row + h, col : col + w]
        target = np.where(region[: patch.shape[0], : patch.shape[1]], value, patch)
        rows, cols = np.nonzero(patch != target)
        if rows.size == 0:
            return False
        self._check_history()
        indices = np.ravel_multi_index((rows + row, cols + col), self.mask.shape)
        self.undo_stack.push(
            MaskEdit(self, indices, patch[rows, cols].copy(), target[rows, cols].copy(), text, was_edited=self.edited)
        )
        return True

    def write_patch(self, values: np.ndarray, offset: tuple[int, int], text: str) -> bool:
        """Set the rectangle at (row, col) ``offset`` to ``values`` (a bool patch) as one undo step (the model-assisted
        tools: a click or a box changes only its window); False if nothing changed."""
        if self.mask is None:
            if self.image is None:
                return False
            self._blank_result()
        row, col = offset
        h, w = values.shape
        patch = self.mask[row : row + h, col : col + w]
        rows, cols = np.nonzero(patch != values[: patch.shape[0], : patch.shape[1]])
        if rows.size == 0:
            return False
        indices = np.ravel_multi_index((rows + row, cols + col), self.mask.shape)
        self.undo_stack.push(
            MaskEdit(self, indices, patch[rows, cols].copy(), values[rows, cols].copy(), text, was_edited=self.edited)
        )
        return True

    def apply_cleanup(self, step: str, result: np.ndarray | None = None) -> bool:
        """One clean-up step as one undo step. ``result`` is the step's output when it was computed elsewhere
        (off the GUI thread on a large photo); otherwise it is computed here."""
        if self.mask is None:
            return False
        new_mask = clean_up(self.mask, [step]) if result is None else result
        changed = self.replace_mask(new_mask, f"Clean-up: {step.replace('_', ' ')}")
        if changed and step not in self.cleanup:
            self.result.cleanup = (*self.cleanup, step)
        return changed

    def _write(self, indices: np.ndarray, values: np.ndarray, *, edited: bool) -> None:
        self.mask.ravel()[indices] = values
        self.result.edited = edited
        self.edited_at = edit_clock()
        self.maskChanged.emit()

    # -- derived -----------------------------------------------------------------------------------------------
    def quality(self) -> QualityAssessment | None:
        """Estimated Dice and review flags of the current mask (None before the model's result)."""
        if self.segmentation is None:
            return None
        return self.segmentation.quality()

    @property
    def mm_per_pixel(self) -> float | None:
        return None if self.calibration is None else self.calibration.mm_per_pixel

    def set_calibration(self, calibration: Calibration | None) -> None:
        """This image's calibration (None: measure in pixels); it ends when another image is opened."""
        if calibration is not None and not isinstance(calibration, Calibration):
            raise TypeError(f"expected a Calibration or None, got {type(calibration).__name__}")
        self.calibration = calibration
        self.calibrationChanged.emit()

    def set_regions(self, regions: str) -> None:
        """Measure the largest region ("largest") or all regions together ("all"), for this image."""
        self.regions = regions
        self.calibrationChanged.emit()  # the same consequence: the numbers are measured again

    def provenance(self) -> dict:
        """The export's record: the result's provenance (segmentation.provenance), what is measured, the quality."""
        if self.result is not None:
            record = self.result.provenance(self.calibration)
        else:
            record = result_provenance(ModelIdentity(), threshold=self.threshold, calibration=self.calibration)
        return {
            **record,
            "measured_regions": self.regions,
            **_quality_provenance(self.quality()),
        }


def _quality_provenance(quality: QualityAssessment | None) -> dict:
    """estimated_dice, needs_review and the plain-language reasons, for every export."""
    if quality is None:
        return {"estimated_dice": "", "needs_review": "", "quality_reasons": ""}
    values = quality.to_dict()
    return {
        "estimated_dice": values["estimated_dice"],
        "needs_review": values["needs_review"],
        "quality_reasons": values["reasons"],
    }
