"""The model-assisted tools in the window: click to add / remove, and the box the model segments again.

:class:`AssistController` turns the canvas's ``assistClicked`` and ``boxDrawn`` into document edits (one undo step
each) with :mod:`segmentation.assist`; the box runs the model off the GUI thread like any segmentation and Esc
cancels it. :class:`AssistPanel` shows the thresholds a click uses and lets the clinician change them while the tool
is active.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QWidget

from app.document import LesionDocument
from app.workers import TaskContext, TaskRunner
from segmentation.assist import AssistSettings, MaskPatch, RefinedProbability, click_add, click_remove, resegment_box
from segmentation.inference import Predictor


def _box_task(
    context: TaskContext,
    predictor: Predictor,
    image: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    threshold: float,
    margin: float,
    keep_outside: bool,
    generation: int,
) -> tuple[MaskPatch, np.ndarray, tuple[int, int, int, int], int]:
    height, width = predictor.info.preprocessing.input_size
    patch, inside = resegment_box(
        predictor.predict_probability,
        image,
        mask,
        box,
        threshold=threshold,
        margin=margin,
        aspect=width / height,
        keep_outside=keep_outside,
    )
    return patch, inside, box, generation


class AssistController(QObject):
    """Applies assisted clicks at once and box re-segmentations when the model is done; ``done(message)`` says what
    happened (for the status bar)."""

    done = Signal(str)

    def __init__(
        self,
        document: LesionDocument,
        predictor: Callable[[], Predictor | None],
        pool: QThreadPool,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.document = document
        self.predictor = predictor
        self.settings = AssistSettings()
        self.keep_outside = True
        self.runner = TaskRunner("re-segment the box", pool, self)
        self.runner.finished.connect(self._box_finished)
        self.runner.failed.connect(lambda message: self.done.emit(f"Box re-segmentation failed: {message}"))
        self.runner.cancelled.connect(lambda: self.done.emit("Box re-segmentation cancelled; the mask is as it was."))
        self._refined: RefinedProbability | None = None
        self._box_looks: list[tuple[object, tuple[int, int, np.ndarray]]] = []  # (its undo command, the look)
        self._generation = 0
        document.segmentationChanged.connect(self._segmentation_changed)
        document.imageChanged.connect(self.runner.cancel)
        document.maskChanged.connect(self._mask_changed)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def probability(self) -> RefinedProbability | None:
        """The model's probability map, with the box re-segmentations pasted in."""
        segmentation = self.document.segmentation
        if segmentation is None:
            return None
        if self._refined is None or self._refined.base is not segmentation.probability:
            self._refined, self._box_looks = RefinedProbability(segmentation.probability), []
        stack = self.document.undo_stack
        done = {id(stack.command(i)) for i in range(stack.index())}  # an undone box no longer guides the clicks
        self._refined.patches = [look for command, look in self._box_looks if id(command) in done]
        return self._refined

    def click(self, row: int, col: int, add: bool) -> bool:
        """One assisted click at image pixel (row, col): one undo step; False if it changed nothing."""
        document, probability = self.document, self.probability()
        if probability is None or document.mask is None:
            self.done.emit("The assisted click needs the model's result: segment the image first.")
            return False
        operation = click_add if add else click_remove
        patch = operation(probability, document.mask, row, col, self.settings)
        if patch is None:
            self.done.emit("Already lesion: nothing to add." if add else "That is skin: nothing to remove.")
            return False
        count = patch.changed(document.mask)
        changed = document.write_patch(patch.values, (patch.top, patch.left), patch.description)
        self.done.emit(f"{patch.description}: {count} pixels {'added' if add else 'removed'}.")
        return changed

    def resegment(self, top: int, left: int, bottom: int, right: int) -> bool:
        """Start the model on the box's crop; False (with a message) without a model or an image."""
        document, predictor = self.document, self.predictor()
        if predictor is None or document.image is None:
            self.done.emit("Box re-segmentation needs a model and an image.")
            return False
        mask = document.mask if document.mask is not None else np.zeros(document.image.shape[:2], bool)
        self.done.emit("Re-segmenting the box… (Esc cancels)")
        self.runner.start(
            _box_task,
            predictor,
            document.image,
            mask.copy(),
            (top, left, bottom, right),
            document.threshold,
            self.settings.box_margin,
            self.keep_outside,
            self._generation,
        )
        return True

    def cancel(self) -> None:
        self.runner.cancel()

    def _segmentation_changed(self) -> None:
        self._refined, self._box_looks = None, []

    def _mask_changed(self) -> None:
        self._generation += 1

    def _box_finished(self, result: object) -> None:
        patch, inside, box, generation = result  # type: ignore[misc]
        document = self.document
        if generation != self._generation or document.image is None:
            self.done.emit("The mask changed during the box re-segmentation; draw the box again.")
            return
        count = patch.changed(document.mask) if document.mask is not None else int(patch.values.sum())
        if document.write_patch(patch.values, (patch.top, patch.left), patch.description):
            stack = document.undo_stack
            self.probability()  # (re)bind to the current map first
            self._box_looks.append((stack.command(stack.index() - 1), (box[0], box[1], inside)))
        self.done.emit(f"{patch.description}: {count} pixels changed.")


class AssistPanel(QGroupBox):
    """The thresholds and reach the click tools use, and what the box does outside itself."""

    settingsChanged = Signal(object, bool)  # AssistSettings, keep_outside

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model assist", parent)
        self.add_threshold = self._spin(0.01, 0.99, 0.05, "Click: the probability a pixel needs to be added")
        self.remove_threshold = self._spin(0.01, 0.99, 0.05, "Shift+click: pixels of the lesion under this go")
        self.reach = self._spin(1, 100, 5, "How far from the click a click may change, in % of the image's side")
        self.reach.setDecimals(0)
        self.reach.setSuffix(" %")
        self.keep_outside = QCheckBox("Box: keep the mask outside the box")
        self.keep_outside.setToolTip("Unticked: the box re-segmentation clears the mask outside the box")
        form = QFormLayout(self)
        form.addRow(QLabel("Click adds (≥)"), self.add_threshold)
        form.addRow(QLabel("Shift+click removes (<)"), self.remove_threshold)
        form.addRow(QLabel("Reach"), self.reach)
        form.addRow(self.keep_outside)
        self.set_settings(AssistSettings(), True)
        for spin in (self.add_threshold, self.remove_threshold, self.reach):
            spin.valueChanged.connect(self._changed)
        self.keep_outside.toggled.connect(self._changed)

    def _spin(self, low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setToolTip(tip)
        return spin

    def set_settings(self, settings: AssistSettings, keep_outside: bool) -> None:
        for widget in (self.add_threshold, self.remove_threshold, self.reach, self.keep_outside):
            widget.blockSignals(True)
        self.add_threshold.setValue(settings.add_threshold)
        self.remove_threshold.setValue(settings.remove_threshold)
        self.reach.setValue(100 * settings.reach)
        self.keep_outside.setChecked(keep_outside)
        for widget in (self.add_threshold, self.remove_threshold, self.reach, self.keep_outside):
            widget.blockSignals(False)
        self._settings = settings

    def _changed(self) -> None:
        self._settings = replace(
            self._settings,
            add_threshold=self.add_threshold.value(),
            remove_threshold=self.remove_threshold.value(),
            reach=self.reach.value() / 100,
        )
        self.settingsChanged.emit(self._settings, self.keep_outside.isChecked())
