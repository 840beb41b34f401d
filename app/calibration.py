"""Calibration of the open image: mm per pixel measured on it (a line of known length), typed in, or applied from a
named dermatoscope profile.

A calibration belongs to one image: a new image starts uncalibrated, and nothing carries a value to the next image,
another folder or the next start of the app. A wrong calibration is worse than none, so the panel always shows the
value and where it came from, and one click clears it. Profiles are applied only when the clinician says so.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.calibration_profiles import ProfileStore
from app.document import LesionDocument
from app.tools import Tool
from segmentation.calibration import MAX_MM_PER_PIXEL, Calibration
from segmentation.imageio import OutputWriteError

NOT_CALIBRATED = "Not calibrated: measurements in pixels."


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


def ask_profile_name(parent: QWidget, mm_per_pixel: float) -> str | None:
    """Ask for a name to save the current calibration under; None if cancelled."""
    name, ok = QInputDialog.getText(
        parent,
        "Save as dermatoscope profile",
        f"Save {mm_per_pixel:.5g} mm per pixel as a profile named\n(e.g. the dermatoscope and camera):",
    )
    return name if ok and name.strip() else None


class CalibrationBox(QGroupBox):
    """mm per pixel (0 = not calibrated), where it came from, "Measure a line", "Clear", and the profiles."""

    calibrationEntered = Signal(object)  # float | None: typed into the spin box
    measureRequested = Signal()
    clearRequested = Signal()
    profileApplied = Signal(str)
    saveProfileRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration (this image)", parent)
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(0.0, MAX_MM_PER_PIXEL)
        self.spin.setDecimals(5)
        self.spin.setSingleStep(0.001)
        self.spin.setSuffix(" mm/px")
        self.spin.setSpecialValueText("not calibrated")
        self.spin.setAccessibleName("Millimetres per pixel")
        self.spin.setToolTip("Millimetres per pixel of this image; measurements switch to mm once set")
        self.source_label = QLabel(NOT_CALIBRATED, self)
        self.source_label.setObjectName("calibration_source")
        self.source_label.setWordWrap(True)
        self.measure_button = QPushButton("Measure a line…", self)
        self.measure_button.setToolTip("Draw a line of known length on the image (a ruler in the photo)")
        self.clear_button = QPushButton("Clear", self)
        self.profiles = QComboBox(self)
        self.profiles.setAccessibleName("Dermatoscope profiles")
        self.profiles.setToolTip("Saved calibrations; Apply uses the chosen one for this image only")
        self.apply_button = QPushButton("Apply", self)
        self.save_button = QPushButton("Save as profile…", self)
        self.save_button.setToolTip("Keep this image's calibration under a name, to apply it to other images")
        buttons = QHBoxLayout()
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.clear_button)
        profile_row = QHBoxLayout()
        profile_row.addWidget(self.profiles, 1)
        profile_row.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.spin)
        layout.addWidget(self.source_label)
        layout.addLayout(buttons)
        layout.addLayout(profile_row)
        layout.addWidget(self.save_button)
        self.spin.editingFinished.connect(self._entered)
        self.measure_button.clicked.connect(self.measureRequested)
        self.clear_button.clicked.connect(self.clearRequested)
        self.apply_button.clicked.connect(self._apply)
        self.save_button.clicked.connect(self.saveProfileRequested)
        self._shown: float | None = None
        self.set_profiles({})
        self.set_calibration(None)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Show the image's calibration and its source, without emitting."""
        self._shown = None if calibration is None else calibration.mm_per_pixel
        self.spin.blockSignals(True)
        self.spin.setValue(self._shown or 0.0)
        self.spin.blockSignals(False)
        self.source_label.setText(
            NOT_CALIBRATED if calibration is None else f"{calibration.mm_per_pixel:.5g} mm/px, {calibration.describe()}"
        )
        self.clear_button.setEnabled(calibration is not None)
        self.save_button.setEnabled(calibration is not None)

    def set_profiles(self, profiles: dict[str, float]) -> None:
        current = self.profiles.currentText()
        self.profiles.clear()
        for name, value in profiles.items():
            self.profiles.addItem(f"{name} ({value:.5g} mm/px)", name)
        index = self.profiles.findData(current)
        self.profiles.setCurrentIndex(max(0, index))
        self.profiles.setEnabled(bool(profiles))
        self.apply_button.setEnabled(bool(profiles))
        if not profiles:
            self.profiles.addItem("no saved profiles")
            self.profiles.setEnabled(False)

    def _entered(self) -> None:
        value = self.spin.value()
        value = value if value > 0 else None
        if value != self._shown:  # leaving the box unchanged is not typing a new calibration
            self.calibrationEntered.emit(value)

    def _apply(self) -> None:
        name = self.profiles.currentData()
        if name:
            self.profileApplied.emit(name)


class CalibrationController(QObject):
    """Keeps the document, the calibration box and the profiles in step.

    The calibration lives in the document, which forgets it when another image opens; the image's autosave keeps it
    with that image's edits. Nothing is written to the preferences. The controller knows the document, its box and
    the profile store; it asks for the calibrate tool (``toolRequested``) and reports (``message``, ``failed``) by
    signals. The window feeds it the lines drawn on the canvas (:meth:`line_drawn`).
    """

    toolRequested = Signal(object)  # Tool: the calibrate tool to measure a line, navigate again once it is drawn
    message = Signal(str)  # for the status bar
    failed = Signal(str)  # a problem the clinician must see

    def __init__(
        self,
        document: LesionDocument,
        box: CalibrationBox,
        profiles: ProfileStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.document, self.box = document, box
        self.profiles = profiles or ProfileStore()
        document.calibrationChanged.connect(lambda: box.set_calibration(document.calibration))
        box.calibrationEntered.connect(lambda value: self.set(None if value is None else Calibration(value, "typed")))
        box.measureRequested.connect(self.measure)
        box.clearRequested.connect(lambda: self.set(None))
        box.profileApplied.connect(self.apply_profile)
        box.saveProfileRequested.connect(self.save_profile)
        box.set_profiles(self.profiles.load())

    def set(self, calibration: Calibration | None) -> None:
        """Use ``calibration`` for the open image only (None: back to pixels)."""
        self.document.set_calibration(calibration)

    def enter(self) -> None:
        value = ask_mm_per_pixel(self.box.window(), self.document.mm_per_pixel)
        if value is not None:
            self.set(Calibration(value, "typed"))

    def measure(self) -> None:
        self.toolRequested.emit(Tool.CALIBRATE)

    def apply_profile(self, name: str) -> bool:
        """Apply the saved profile ``name`` to the open image (the clinician asked for it); False if unknown."""
        value = self.profiles.load().get(name)
        if value is None or self.document.image is None:
            self.message.emit(f"No profile named {name}." if value is None else "Open an image first.")
            return False
        self.set(Calibration(value, "profile", name))
        self.message.emit(f"Profile {name} applied to this image: {value:.5g} mm per pixel.")
        return True

    def save_profile(self, name: str | None = None) -> str | None:
        """Save the open image's calibration as a named profile (asks for the name when none is given)."""
        calibration = self.document.calibration
        if calibration is None:
            return None
        name = name or ask_profile_name(self.box.window(), calibration.mm_per_pixel)
        if name is None:
            return None
        try:
            name = self.profiles.save(name, calibration.mm_per_pixel)
        except (ValueError, OutputWriteError) as error:
            self.failed.emit(f"Could not save the profile: {error}")
            return None
        self.box.set_profiles(self.profiles.load())
        self.message.emit(f"Saved profile {name} ({calibration.mm_per_pixel:.5g} mm per pixel).")
        return name

    def line_drawn(self, length_px: float) -> None:
        """A line of ``length_px`` image pixels was drawn with the calibrate tool: ask its length in mm."""
        length_mm = ask_line_length(self.box.window(), length_px)
        if length_mm is not None:
            self.set(Calibration(mm_per_pixel_from_line(length_mm, length_px), "measured"))
            self.message.emit(f"Calibrated this image: {self.document.mm_per_pixel:.5g} mm per pixel.")
        self.toolRequested.emit(Tool.NAVIGATE)
