"""Side panels: overlay look and threshold, measurements, and the banners shown over the image.

Panels hold no state of their own that matters: they show what the main window gives them and emit what the user
asked for; the main window applies it to the document and the canvas.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from segmentation.calibration import Calibration
from segmentation.export import OverlayStyle
from segmentation.measurements import MEASUREMENT_FIELDS, LesionMeasurements, unit_label
from segmentation.quality import QualityAssessment

EDITED_NOTE = "Mask edited — reset to the model's mask to use the threshold."


def colour_to_hex(colour: tuple[int, int, int]) -> str:
    return QColor(*colour).name()


def hex_to_colour(text: str, default: tuple[int, int, int] = (0, 255, 0)) -> tuple[int, int, int]:
    colour = QColor(text)
    return (colour.red(), colour.green(), colour.blue()) if colour.isValid() else default


class OverlayPanel(QGroupBox):
    """Fill, boundary, opacity, colour and the probability threshold.

    The threshold re-binarises the model's probability map live; it is disabled once the clinician edits the mask,
    because a threshold change would silently throw the edits away.
    """

    styleChanged = Signal(object)  # OverlayStyle
    thresholdChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Overlay", parent)
        self._style = OverlayStyle()
        self.fill_box = QCheckBox("Fill the lesion", self)
        self.boundary_box = QCheckBox("Draw the boundary", self)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setAccessibleName("Fill opacity")
        self.opacity_label = QLabel(self)
        self.colour_button = QPushButton("Colour…", self)
        self.colour_button.setToolTip("Colour of the fill and the boundary")
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setAccessibleName("Lesion probability threshold")
        self.threshold_slider.setToolTip("Pixels whose lesion probability reaches the threshold are lesion")
        self.threshold_label = QLabel(self)
        self.threshold_note = QLabel(EDITED_NOTE, self)
        self.threshold_note.setWordWrap(True)
        self.threshold_note.setStyleSheet("color: palette(mid); font-style: italic;")
        self.threshold_note.hide()

        form = QFormLayout(self)
        form.addRow(self.fill_box)
        form.addRow(self.boundary_box)
        form.addRow("Opacity", _with_value(self.opacity_slider, self.opacity_label))
        form.addRow("", self.colour_button)
        form.addRow("Threshold", _with_value(self.threshold_slider, self.threshold_label))
        form.addRow(self.threshold_note)

        self.fill_box.toggled.connect(lambda on: self._update(fill=on))
        self.boundary_box.toggled.connect(lambda on: self._update(boundary=on))
        self.opacity_slider.valueChanged.connect(lambda value: self._update(opacity=value / 100))
        self.colour_button.clicked.connect(self.choose_colour)
        self.threshold_slider.valueChanged.connect(self._threshold_moved)
        self.set_style(self._style)
        self.set_threshold(0.5)

    @property
    def style(self) -> OverlayStyle:
        return self._style

    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / 100

    def set_style(self, style: OverlayStyle) -> None:
        """Show ``style`` without emitting (used at start-up and by the toggle actions)."""
        self._style = style
        for widget, value in (
            (self.fill_box, style.fill),
            (self.boundary_box, style.boundary),
            (self.opacity_slider, round(style.opacity * 100)),
        ):
            widget.blockSignals(True)
            widget.setChecked(value) if isinstance(widget, QCheckBox) else widget.setValue(value)
            widget.blockSignals(False)
        self.opacity_label.setText(f"{round(style.opacity * 100)} %")
        self.colour_button.setStyleSheet(f"QPushButton {{ border-left: 14px solid {colour_to_hex(style.colour)}; }}")

    def set_threshold(self, threshold: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(threshold * 100))
        self.threshold_slider.blockSignals(False)
        self.threshold_label.setText(f"{threshold:.2f}")

    def set_threshold_usable(self, usable: bool, edited: bool) -> None:
        """Enable the slider when a model result is there and the mask is the model's; say why when it is not."""
        self.threshold_slider.setEnabled(usable and not edited)
        self.threshold_note.setVisible(edited)

    def choose_colour(self) -> None:
        colour = QColorDialog.getColor(QColor(*self._style.colour), self, "Overlay colour")
        if colour.isValid():
            self._update(colour=(colour.red(), colour.green(), colour.blue()))

    def _update(self, **changes: object) -> None:
        self.set_style(replace(self._style, **changes))
        self.styleChanged.emit(self._style)

    def _threshold_moved(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.thresholdChanged.emit(value / 100)


UPDATING = "Updating…"


class MeasurementsPanel(QGroupBox):
    """Area, perimeter, diameters, asymmetry, border irregularity and colour variegation of the lesion: the mask's
    largest region, or all regions together when the clinician ticks that; how many other regions there are.

    While new numbers are being computed the old ones are greyed out under "Updating…", so a stale number is never
    read as the current one.
    """

    regionsChanged = Signal(str)  # "largest" or "all"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Measurements", parent)
        self.unit_label = QLabel(self)
        self.unit_label.setWordWrap(True)
        self.updating_label = QLabel(UPDATING, self)
        self.updating_label.setObjectName("measurements_updating")
        self.updating_label.setStyleSheet("color: #004e8c; font-style: italic;")
        self.updating_label.hide()
        self.all_regions_box = QCheckBox("Measure all regions together", self)
        self.all_regions_box.setToolTip(
            "Off: the largest region is the lesion and the others are only counted. "
            "On: every region of the mask is measured as one lesion."
        )
        self.regions_note = QLabel(self)
        self.regions_note.setWordWrap(True)
        self.regions_note.setObjectName("regions_note")
        self.regions_note.hide()
        self.quality_label = QLabel(self)
        self.quality_label.setObjectName("estimated_dice")
        self.quality_label.setWordWrap(True)
        self.quality_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.quality_label.setToolTip(
            "The Dice this mask is expected to have against an expert's outline, estimated from the model's output "
            "(docs/QUALITY.md); below the model's operating point the mask needs review"
        )
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        widest = self.fontMetrics().horizontalAdvance("00,000,000.0 px²")  # room for a 24-megapixel area
        for attribute, label, _dimension in MEASUREMENT_FIELDS:
            value = QLabel("—", self)
            value.setMinimumWidth(widest)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setObjectName(f"measurement_{attribute}")
            self.values[attribute] = value
            name = QLabel(label, self)
            name.setWordWrap(True)  # long names wrap instead of pushing the numbers out of the panel
            form.addRow(name, value)
        self.note = QLabel("These describe the outline; they are not a diagnosis.", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid); font-size: small;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.quality_label)
        layout.addWidget(self.unit_label)
        layout.addWidget(self.updating_label)
        layout.addLayout(form)
        layout.addWidget(self.regions_note)
        layout.addWidget(self.all_regions_box)
        layout.addWidget(self.note)
        self.all_regions_box.toggled.connect(lambda on: self.regionsChanged.emit("all" if on else "largest"))
        self.show_measurements(None, None)
        self.show_quality(None)

    def show_quality(self, quality: QualityAssessment | None) -> None:
        """ "Estimated Dice 0.93" (and why to review) for the current mask; "—" before a model result."""
        if quality is None:
            self.quality_label.setText("Estimated Dice: —")
            self.quality_label.setStyleSheet("")
            return
        estimate = f"{quality.estimated_dice:.2f}" if quality.estimated_dice is not None else "—"
        if quality.edited:
            estimate = "— (you edited the outline; the estimate is for the model's own)"
        lines = [f"Estimated Dice: {estimate}"]
        lines += [reason[0].upper() + reason[1:] for reason in quality.reasons()]
        self.quality_label.setText("\n".join(lines))
        self.quality_label.setStyleSheet("color: #a4262c; font-weight: bold;" if quality.needs_review else "")

    def show_measurements(self, measurements: LesionMeasurements | None, calibration: Calibration | None) -> None:
        """Show ``measurements`` (None: no mask or an empty one) in mm once calibrated, else in pixels, with where
        the calibration came from; the numbers are current again (the "Updating…" state ends)."""
        unit = "px" if calibration is None else "mm"
        self.set_calibration(calibration)
        for attribute, _label, dimension in MEASUREMENT_FIELDS:
            value = None if measurements is None else getattr(measurements, attribute)
            self.values[attribute].setText(format_value(value, dimension, unit))
        others = 0 if measurements is None else measurements.other_regions
        self.regions_note.setText(
            f"{others} other region{'s' if others != 1 else ''} in the mask not measured: erase them, use "
            "Keep largest lesion, or measure all regions together."
        )
        self.regions_note.setVisible(others > 0)
        self.set_updating(False)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """The units line: mm with the value and where it came from, or pixels (not calibrated)."""
        self.unit_label.setText(
            "Units: px (not calibrated)"
            if calibration is None
            else f"Units: mm ({calibration.mm_per_pixel:.5g} mm per pixel, {calibration.describe()})"
        )

    def set_regions(self, regions: str) -> None:
        self.all_regions_box.blockSignals(True)
        self.all_regions_box.setChecked(regions == "all")
        self.all_regions_box.blockSignals(False)

    def set_updating(self, updating: bool) -> None:
        """Grey the numbers out under "Updating…" while new ones are computed."""
        self.updating_label.setVisible(updating)
        for value in self.values.values():
            value.setEnabled(not updating)

    @property
    def updating(self) -> bool:
        return not self.updating_label.isHidden()

    def text_of(self, attribute: str) -> str:
        return self.values[attribute].text()


def format_value(value: float | int | None, dimension: str, unit: str) -> str:
    if value is None:
        return "—"
    suffix = unit_label(dimension, unit)
    if dimension == "count":
        number = f"{int(value)}"
    elif dimension in ("length", "area"):
        number = f"{value:,.2f}" if unit == "mm" else f"{value:,.1f}"
    else:
        number = f"{value:.3f}"
    return f"{number} {suffix}".strip()


class Banner(QFrame):
    """A coloured strip over the image: confidence flags (warning) or why segmentation is off (error).

    Non-modal on purpose: the clinician sees it while working and it never steals the focus.
    """

    COLOURS: ClassVar[dict[str, tuple[str, str]]] = {
        "warning": ("#fff4ce", "#7a5b00"),
        "error": ("#fde7e9", "#a4262c"),
        "info": ("#e5f1fb", "#004e8c"),
    }

    def __init__(self, parent: QWidget | None = None, *, button_text: str = "") -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # messages quote file and model names: never rich text
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton(button_text, self)
        self.button.setVisible(bool(button_text))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def show_message(self, text: str, kind: str = "warning") -> None:
        background, foreground = self.COLOURS[kind]
        self.setStyleSheet(
            f"Banner {{ background: {background}; border-bottom: 1px solid {foreground}; }}"
            f"QLabel {{ color: {foreground}; }}"
        )
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        """The message while shown, else ""."""
        return "" if self.isHidden() else self.label.text()


def flags_text(flags: QualityAssessment | None) -> str:
    """The banner over the image: "Check this result: needs review: estimated Dice 0.61 is below 0.78 (...)." for a
    review flag, the informational reasons ("No lesion found.") alone otherwise, "" when there is nothing to say."""
    if flags is None or not flags.any:
        return ""
    reasons = flags.reasons()
    if flags.needs_review:
        return "Check this result: " + "; ".join(reasons) + "."
    return "; ".join(reasons).capitalize() + "."


def flags_kind(flags: QualityAssessment | None) -> str:
    """A review flag is a warning; "no lesion found" and "lesion at the image border" are information."""
    return "warning" if flags is not None and flags.needs_review else "info"


def _with_value(slider: QSlider, label: QLabel) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(slider, 1)
    label.setMinimumWidth(40)
    layout.addWidget(label)
    return box
