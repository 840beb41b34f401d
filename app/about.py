"""Help > About: the app and model versions, the model's validation numbers, the data licence, the intended use,
and the versions of the libraries that compute the result (Qt, PyTorch, ONNX Runtime, Python).

A clinician (or an auditor) must be able to see which model drew an outline and how well it did on held-out data;
a model without validation numbers says so plainly instead of looking trustworthy.
"""

from __future__ import annotations

import html
import platform
import sys
from importlib import metadata

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from segmentation import __version__
from segmentation.plain_text import plain_text
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
#: Labels for the validation keys a model file records (others are spelled out by ``readable_label``).
VALIDATION_LABELS = {
    "val_dice_mean_at_selection": "Validation Dice (mean)",
    "selected_on": "Chosen on",
}
_WORDS = {"val": "validation", "dice": "Dice", "iou": "IoU", "jaccard": "Jaccard", "n": "number of", "px": "pixels"}


def readable_label(key: str) -> str:
    """'val_dice_mean_at_selection' -> 'Validation Dice (mean, ...)': known keys from the table, others word by word."""
    if key in VALIDATION_LABELS:
        return VALIDATION_LABELS[key]
    text = " ".join(_WORDS.get(word.lower(), word) for word in key.split("_") if word)
    return text[:1].upper() + text[1:]


def _package_version(name: str) -> str:
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None) if module is not None else None
    if version:
        return str(version)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def software_versions() -> list[tuple[str, str]]:
    """(label, version) of LesionLens and the libraries behind the result, as the About window lists them."""
    return [
        ("LesionLens", __version__),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__})"),
        ("PyTorch", _package_version("torch")),
        ("ONNX Runtime", _package_version("onnxruntime")),
        ("Python", platform.python_version()),
    ]


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td><b>{html.escape(key)}</b></td><td>{html.escape(str(value))}</td></tr>" for key, value in rows if value
    )
    return f"<table cellspacing='4'>{cells}</table>"


def model_html(info: ModelInfo | None, device: str = "", problem: str = "", weights_sha256: str = "") -> str:
    """The model section as rich text (also used by tests to check what is shown). ``weights_sha256`` is the
    weights file's SHA-256, what ``sha256sum`` prints; the tensor hash in the metadata is not shown."""
    if info is None:
        return f"<p><b>No model loaded.</b> {html.escape(problem)}</p>"
    rows = [
        ("Name", plain_text(info.name)),  # escaped below too: a name is shown, never rendered
        ("Weights file SHA-256", weights_sha256 or "unknown"),
        ("Made with LesionLens", info.code_version or "unknown"),
        ("Created", info.created or "unknown"),
        ("Input size", "×".join(str(s) for s in info.preprocessing.input_size)),
        ("Running on", device),
    ]
    rows += [(readable_label(key), str(value)) for key, value in info.validation.items()]
    warning = "" if info.validation else f"<p style='color:#a4262c'><b>{html.escape(NO_VALIDATION)}</b></p>"
    return f"{_table(rows)}{warning}"


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
            f"<h3>Software</h3>{_table(software_versions())}"
        )
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setContentsMargins(8, 8, 8, 8)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea(self)  # never clipped, whatever the screen and font size
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.setMinimumWidth(640)
        self.resize(720, 760)
