"""The status bar: messages, cursor position, zoom, the model and device in use, and the busy indicator.

The model and device are always visible because every exported result carries them: a clinician must be able to
tell at a glance which model drew the outline they are checking.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton, QWidget

from segmentation.plain_text import plain_text

MESSAGE_MS = 8000


class StatusBar(QStatusBar):
    """Permanent fields on the right; a busy progress bar with a cancel button while work runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.position_label = QLabel(self)
        self.zoom_label = QLabel(self)
        self.model_label = QLabel("Model: loading…", self)
        self.model_label.setObjectName("model_label")
        self.device_label = QLabel(self)
        self.device_label.setObjectName("device_label")
        for label in (self.model_label, self.device_label):
            label.setTextFormat(Qt.TextFormat.PlainText)  # a model name with HTML is shown, never rendered
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(160)
        self.progress.setRange(0, 0)  # indeterminate: the network reports no progress of its own
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.cancel_button = QToolButton(self)
        self.cancel_button.hide()
        self.busy_label = QLabel(self)
        self.busy_label.hide()
        # All permanent: a temporary message would hide normal widgets, and the busy state must stay visible.
        for widget in (
            self.busy_label,
            self.progress,
            self.cancel_button,
            self.position_label,
            self.zoom_label,
            self.model_label,
            self.device_label,
        ):
            self.addPermanentWidget(widget)
        self._busy: dict[str, str] = {}

    def say(self, text: str, msecs: int = MESSAGE_MS) -> None:
        self.showMessage(text, msecs)

    def set_model(self, name: str, file_sha256: str, device: str) -> None:
        """The model's name and the first 12 digits of its weights file's SHA-256 (the tooltip has all 64, as
        ``sha256sum`` prints them, so the clinic can check the file it was given)."""
        name = plain_text(name)  # from the weights file: untrusted, shown as one plain line
        self.model_label.setText(f"Model: {name} ({file_sha256[:12]})" if name else "Model: none")
        self.model_label.setToolTip(f"{name}\nWeights file SHA-256: {file_sha256}" if name else "No model loaded")
        self.device_label.setText(device)

    def set_position(self, x: int, y: int) -> None:
        self.position_label.setText(f"x {x}, y {y}" if x >= 0 and y >= 0 else "")

    def set_zoom(self, factor: float) -> None:
        self.zoom_label.setText(f"{factor * 100:.0f} %")

    def begin_busy(self, key: str, text: str) -> None:
        """Show the progress bar and the busy cursor while any ``key`` is busy (they nest)."""
        if not self._busy:
            QGuiApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self._busy[key] = text
        self._show_busy()

    def end_busy(self, key: str) -> None:
        if self._busy.pop(key, None) is None:
            return
        if not self._busy:
            QGuiApplication.restoreOverrideCursor()
        self._show_busy()

    def is_busy(self, key: str | None = None) -> bool:
        return bool(self._busy) if key is None else key in self._busy

    def _show_busy(self) -> None:
        busy = bool(self._busy)
        self.busy_label.setText("; ".join(self._busy.values()))
        for widget in (self.busy_label, self.progress):
            widget.setVisible(busy)
        self.cancel_button.setVisible("segment" in self._busy)
