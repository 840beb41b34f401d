"""Which model the window uses: loaded once, off the GUI thread, and honest about it when there is none.

Weights come from ``--weights``, else the file the user chose last time, else the bundled model (checked against the
SHA-256 pinned in ``segmentation.bundled_model``). A missing, broken or altered file never stops the app: segmentation
is switched off and a banner says why and offers another file. A model without validation results is labelled as
such, so an untrained network is never presented as segmenting lesions.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog

from app.about import NO_VALIDATION
from app.panels import Banner
from app.settings import Settings
from app.status import StatusBar
from app.workers import TaskRunner, load_predictor_task
from segmentation.bundled_model import pinned_sha256
from segmentation.inference import Predictor
from segmentation.plain_text import plain_text
from segmentation.resources import default_weights_path


class ModelController(QObject):
    """Owns the Predictor; ``loaded(True)`` when one is ready, ``loaded(False)`` when segmentation is off.

    It reads the settings (remembered weights, device, engine), says what it is doing in the status bar and the
    weights banner, and loads on ``pool``. A file the user picks is announced with ``weightsChosen``; the window
    remembers it and loads it (a new model segments the open image again)."""

    loaded = Signal(bool)
    weightsChosen = Signal(Path)

    def __init__(
        self,
        settings: Settings,
        pool: QThreadPool,
        status: StatusBar,
        banner: Banner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings, self.status, self.banner = settings, status, banner
        self.predictor: Predictor | None = None
        self.problem = "loading the model…"
        self.runner = TaskRunner("load the model", pool, self)
        self.runner.finished.connect(self._loaded)
        self.runner.failed.connect(self._failed)

    def weights_path(self, weights: Path | None) -> Path:
        remembered = Path(self.settings.weights) if self.settings.weights else None
        return weights or (remembered if remembered and remembered.exists() else None) or default_weights_path()

    def load(self, weights: Path | None = None, device: str | None = None) -> None:
        """Load in the background: ``weights``, else the remembered file, else the bundled model."""
        self.predictor, self.problem = None, "loading the model…"
        self.status.set_model("", "", "")
        self.banner.hide()
        path = self.weights_path(weights)
        device = device or self.settings.device
        self.runner.start(load_predictor_task, path, device, pinned_sha256(path), self.settings.backend)

    def choose(self) -> None:
        """File > Choose weights…: pick a file; ``weightsChosen`` has the window remember and load it."""
        start = self.settings.weights or str(default_weights_path().parent)
        file, _ = QFileDialog.getOpenFileName(
            self.banner.window(), "Choose a model", start, "LesionLens weights (*.safetensors)"
        )
        if file:
            self.weightsChosen.emit(Path(file))

    def _loaded(self, result: object) -> None:
        self.predictor, note = result  # type: ignore[misc]
        info, status, device = self.predictor.info, self.status, self.predictor.device_description
        self.problem = ""
        status.set_model(info.name, self.predictor.weights_sha256, device)
        name = plain_text(info.name)  # untrusted text from the weights file: one plain line
        if not info.validation:
            self.banner.show_message(f"Model “{name}”: {NO_VALIDATION}", "error")
        status.say(note or f"Model {name} ready on {device}.")
        self.loaded.emit(True)

    def _failed(self, message: str) -> None:
        self.predictor, self.problem = None, message
        text = f"Segmentation is off: no usable model ({message}). Choose a LesionLens weights file to segment."
        self.banner.show_message(text, "error")
        self.status.set_model("", "", "")
        self.status.say("Segmentation is off: no usable model. Use File > Choose weights…", 0)
        self.loaded.emit(False)
