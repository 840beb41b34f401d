"""Edit > Preferences: every remembered preference in one dialog, with "Reset to defaults".

The dialog only edits a copy of the values (:data:`app.settings.PREFERENCE_KEYS`); the window applies them when the
clinician presses OK. What the clinician chose for files (last folder, weights file, export folders, calibration)
is not a preference and is never reset here.
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import BACKENDS, Settings

DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE_LABELS = {"auto": "Automatic (GPU when there is one)", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)",
                 "mps": "Apple GPU (Metal)"}  # fmt: skip
BACKEND_LABELS = {"auto": "Automatic (the faster, checked at start)", "torch": "PyTorch",
                  "onnxruntime": "ONNX Runtime"}  # fmt: skip


class PreferencesDialog(QDialog):
    """OK applies (``values()``), Cancel leaves everything as it was, Reset to defaults refills the form."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences — LesionLens")
        self._colour = settings.overlay_colour
        self.colour_button = QPushButton("Colour…", self)
        self.colour_button.clicked.connect(self._choose_colour)
        self.colour_swatch = QLabel(self)
        self.colour_swatch.setFixedSize(44, 20)
        self.colour_swatch.setAccessibleName("Overlay colour")
        colour_row = QHBoxLayout()
        colour_row.addWidget(self.colour_swatch)
        colour_row.addWidget(self.colour_button)
        colour_row.addStretch(1)
        self.opacity = QSpinBox(self)
        self.opacity.setRange(0, 100)
        self.opacity.setSuffix(" %")
        self.show_fill = QCheckBox("Fill the lesion", self)
        self.show_boundary = QCheckBox("Draw the boundary", self)
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setToolTip("The threshold each newly opened image starts with (and the batch's default)")
        self.brush = QSpinBox(self)
        self.brush.setRange(1, 500)
        self.brush.setSuffix(" screen px")
        self.brush.setToolTip("Brush and eraser radius on the screen: the same at any zoom and on any image")
        self.device = QComboBox(self)
        for key in DEVICES:
            self.device.addItem(DEVICE_LABELS[key], key)
        self.backend = QComboBox(self)
        for key in BACKENDS:
            self.backend.addItem(BACKEND_LABELS[key], key)
        note = QLabel("A change of device or CPU engine loads the model again.", self)
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid); font-size: small;")

        form = QFormLayout()
        form.addRow("Overlay colour", colour_row)
        form.addRow("Fill opacity", self.opacity)
        form.addRow("", self.show_fill)
        form.addRow("", self.show_boundary)
        form.addRow("Default threshold", self.threshold)
        form.addRow("Brush size (radius)", self.brush)
        form.addRow("Device", self.device)
        form.addRow("CPU engine", self.backend)
        form.addRow(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults,
            self,
        )
        self.reset_button = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        self.reset_button.setText("Reset to defaults")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.set_values(settings)

    def set_values(self, settings: Settings) -> None:
        self._set_colour(settings.overlay_colour)
        self.opacity.setValue(round(settings.overlay_opacity * 100))
        self.show_fill.setChecked(settings.show_fill)
        self.show_boundary.setChecked(settings.show_boundary)
        self.threshold.setValue(settings.threshold)
        self.brush.setValue(settings.brush_screen_radius)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        self.backend.setCurrentIndex(max(0, self.backend.findData(settings.backend)))

    def reset_to_defaults(self) -> None:
        """Refill the form with the defaults; nothing changes until OK."""
        self.set_values(Settings())

    def values(self) -> dict[str, object]:
        """The form as settings keys (exactly :data:`PREFERENCE_KEYS`)."""
        return {
            "overlay_colour": self._colour,
            "overlay_opacity": self.opacity.value() / 100,
            "show_fill": self.show_fill.isChecked(),
            "show_boundary": self.show_boundary.isChecked(),
            "threshold": round(self.threshold.value(), 2),
            "brush_screen_radius": self.brush.value(),
            "device": self.device.currentData(),
            "backend": self.backend.currentData(),
        }

    def _set_colour(self, text: str) -> None:
        self._colour = QColor(text).name()
        self.colour_swatch.setStyleSheet(f"background: {self._colour}; border: 1px solid palette(dark);")
        self.colour_swatch.setToolTip(self._colour)

    def _choose_colour(self) -> None:
        colour = QColorDialog.getColor(QColor(self._colour), self, "Overlay colour")
        if colour.isValid():
            self._set_colour(colour.name())
