"""Help > About: the app and model versions, the model's validation numbers, the data licence, the intended use.

A clinician (or an auditor) must be able to see which model drew an outline and how well it did on held-out data;
a model without validation numbers says so plainly instead of looking trustworthy.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from segmentation import __version__
from segmentation.weights import ModelInfo

INTENDED_USE = (
    "LesionLens is decision support for trained clinicians, not a diagnostic device. It outlines and measures a "
    "skin lesion in a dermoscopy image; it does not say whether the lesion is malignant. Every outline must be "
    "checked by the clinician."
)
DATA_LICENCE = (
    "Trained on the ISIC 2017 Challenge data (Part 1, lesion segmentation), licensed CC BY-NC 4.0 "
    "(non-commercial use, attribution). N. C. F. Codella et al., “Skin Lesion Analysis Toward Melanoma Detection: "
    "A Challenge at the 2017 International Symposium on Biomedical Imaging (ISBI), Hosted by the International Skin "
    "Imaging Collaboration (ISIC)”, ISBI 2018."
)
NO_VALIDATION = "This model file records no validation results: use it for testing only, never on patients."


def model_html(info: ModelInfo | None, device: str = "", problem: str = "", weights_sha256: str = "") -> str:
    """The model section as rich text (also used by tests to check what is shown). ``weights_sha256`` is the
    weights file's SHA-256, what ``sha256sum`` prints; the tensor hash in the metadata is not shown."""
    if info is None:
        return f"<p><b>No model loaded.</b> {html.escape(problem)}</p>"
    rows = [
        ("Name", info.name),
        ("Weights file SHA-256", weights_sha256 or "unknown"),
        ("Made with LesionLens", info.code_version or "unknown"),
        ("Created", info.created or "unknown"),
        ("Input size", "×".join(str(s) for s in info.preprocessing.input_size)),
        ("Running on", device),
    ]
    rows += [(f"Validation: {key.replace('_', ' ')}", str(value)) for key, value in info.validation.items()]
    table = "".join(
        f"<tr><td><b>{html.escape(key)}</b></td><td>{html.escape(str(value))}</td></tr>" for key, value in rows if value
    )
    warning = "" if info.validation else f"<p style='color:#a4262c'><b>{html.escape(NO_VALIDATION)}</b></p>"
    return f"<table cellspacing='4'>{table}</table>{warning}"


class AboutDialog(QDialog):
    def __init__(
        self,
        info: ModelInfo | None,
        device: str = "",
        problem: str = "",
        parent: QWidget | None = None,
        *,
        weights_sha256: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LesionLens")
        text = (
            f"<h2>LesionLens {html.escape(__version__)}</h2>"
            f"<p>Skin lesion segmentation for dermoscopy images.</p>"
            f"<h3>Intended use</h3><p>{html.escape(INTENDED_USE)}</p>"
            f"<h3>Model</h3>{model_html(info, device, problem, weights_sha256)}"
            f"<h3>Data</h3><p>{html.escape(DATA_LICENCE)}</p>"
        )
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)
