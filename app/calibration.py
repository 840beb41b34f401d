"""Calibration: how many millimetres one image pixel spans, typed in or measured from a line of known length.

Without it measurements stay in pixels and say so; a wrong calibration is worse than none, so the value is always
visible in the measurements panel and one click clears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.canvas import Tool

if TYPE_CHECKING:
    from app.main_window import MainWindow

MAX_MM_PER_PIXEL = 10.0


def mm_per_pixel_from_line(length_mm: float, length_px: float) -> float:
    """mm per pixel for a line of ``length_px`` image pixels that is ``length_mm`` long in reality."""
    if length_px <= 0 or length_mm <= 0:
        raise ValueError("both lengths must be positive")
    return length_mm / length_px


def ask_line_length(parent: QWidget, length_px: float) -> float | None:
    """Ask how long the drawn line is in mm; None if the user cancels."""
    value, ok = QInputDialog.getDouble(
        parent,
        "Calibrate",
        f"The line you drew is {length_px:.1f} pixels long.\nHow long is it in reality (mm)?",
        1.0,
        0.001,
        1000.0,
        3,
    )
    return value if ok and value > 0 else None


def ask_mm_per_pixel(parent: QWidget, current: float | None) -> float | None:
    """Ask for mm per pixel directly (known from the dermoscope's specification); None if cancelled."""
    value, ok = QInputDialog.getDouble(
        parent,
        "Set calibration",
        "Millimetres per image pixel (from the dermoscope and camera specification):",
        current or 0.01,
        0.00001,
        MAX_MM_PER_PIXEL,
        5,
    )
    return value if ok and value > 0 else None


class CalibrationBox(QGroupBox):
    """mm per pixel spin box (0 = not calibrated), "Measure a line" and "Clear"."""

    calibrationEntered = Signal(object)  # float | None
    measureRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration", parent)
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(0.0, MAX_MM_PER_PIXEL)
        self.spin.setDecimals(5)
        self.spin.setSingleStep(0.001)
        self.spin.setSuffix(" mm/px")
        self.spin.setSpecialValueText("not calibrated")
        self.spin.setAccessibleName("Millimetres per pixel")
        self.spin.setToolTip("Millimetres per image pixel; measurements switch to mm once set")
        self.measure_button = QPushButton("Measure a line…", self)
        self.measure_button.setToolTip("Draw a line of known length on the image (a ruler in the photo)")
        self.clear_button = QPushButton("Clear", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.spin)
        layout.addLayout(buttons)
        self.spin.editingFinished.connect(self._entered)
        self.measure_button.clicked.connect(self.measureRequested)
        self.clear_button.clicked.connect(lambda: self.calibrationEntered.emit(None))

    def set_value(self, mm_per_pixel: float | None) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(mm_per_pixel or 0.0)
        self.spin.blockSignals(False)
        self.clear_button.setEnabled(mm_per_pixel is not None)

    def _entered(self) -> None:
        value = self.spin.value()
        self.calibrationEntered.emit(value if value > 0 else None)


class CalibrationController(QObject):
    """Keeps the document, the calibration box, the settings and the calibrate tool in step.

    One calibration serves every image of a session (a dermoscope's magnification is fixed), so it is remembered
    in the settings; an image's autosave carries the value its measurements used.
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        window.document.calibrationChanged.connect(self._changed)
        window.canvas.calibrationLineDrawn.connect(self._line_drawn)
        window.calibration_box.calibrationEntered.connect(self.set)
        window.calibration_box.measureRequested.connect(self.measure)

    def set(self, mm_per_pixel: float | None) -> None:
        """Use ``mm_per_pixel`` for this and later images (None: back to pixels)."""
        self.window.remember(mm_per_pixel=mm_per_pixel)
        self.window.document.set_calibration(mm_per_pixel)

    def enter(self) -> None:
        value = ask_mm_per_pixel(self.window, self.window.document.mm_per_pixel)
        if value is not None:
            self.set(value)

    def measure(self) -> None:
        self.window.set_tool(Tool.CALIBRATE)

    def _line_drawn(self, length_px: float) -> None:
        length_mm = ask_line_length(self.window, length_px)
        if length_mm is not None:
            self.set(mm_per_pixel_from_line(length_mm, length_px))
            self.window.status.say(f"Calibrated: {self.window.document.mm_per_pixel:.5g} mm per pixel.")
        self.window.set_tool(Tool.NAVIGATE)

    def _changed(self) -> None:
        window = self.window
        window.calibration_box.set_value(window.document.mm_per_pixel)
        window.schedule_analysis()
        window.autosave.schedule()
