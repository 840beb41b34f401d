"""Where the bundled files live, in a source tree and in a PyInstaller bundle alike."""

from __future__ import annotations

import os
import sys
from pathlib import Path

WEIGHTS_ENV = "LESIONLENS_WEIGHTS"
DEFAULT_WEIGHTS_NAME = "lesionlens.safetensors"


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "resources"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def app_icon_path() -> Path:
    """The window and bundle icon (``scripts/make_icon.py`` draws it; .ico and .icns beside it)."""
    return resources_dir() / "icons" / "lesionlens.png"


def bundled_weights_path() -> Path:
    """The bundled model (which may not exist yet); its hash is pinned in ``segmentation.bundled_model``."""
    return resources_dir() / "models" / DEFAULT_WEIGHTS_NAME


def default_weights_path() -> Path:
    """``$LESIONLENS_WEIGHTS`` if set, else the bundled model (which may not exist yet)."""
    override = os.environ.get(WEIGHTS_ENV)
    return Path(override) if override else bundled_weights_path()
