"""User preferences of the desktop app, kept as JSON in the per-user data folder (plain Python, no Qt).

Plain JSON rather than QSettings so the file can be read, diffed and reset by hand, and so this module is usable
(and testable) without a Qt application. A damaged preferences file must never stop the app from starting: loading
falls back to the default for every key that is missing, unknown, of the wrong type or out of range.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from segmentation.imageio import OutputWriteError, atomic_write_bytes
from segmentation.private_files import PRIVATE_FILE_MODE, private_folder

__all__ = [
    "PREFERENCE_KEYS",
    "SETTINGS_NAME",
    "Settings",
    "app_data_dir",
    "default_settings_path",
    "load_settings",
    "save_settings",
]

SETTINGS_NAME = "settings.json"
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_MAX_BRUSH_RADIUS = 500
MAX_EXPORT_FOLDERS = 200  # remembered image folder -> export folder pairs (the oldest are forgotten first)
MAX_EXPORTED_INTO = 50  # remembered folders exported into, where the folder list looks for exports
BACKENDS = ("auto", "torch", "onnxruntime")


@dataclass
class Settings:
    """Preferences remembered between sessions; every field has a safe default."""

    overlay_colour: str = "#00ff00"
    overlay_opacity: float = 0.35
    show_fill: bool = True
    show_boundary: bool = True
    threshold: float = 0.5
    last_folder: str = ""
    brush_screen_radius: int = 12  # screen pixels: the brush looks the same at any zoom and on any image
    device: str = "auto"
    backend: str = "auto"  # CPU inference: auto (the faster), torch or onnxruntime; $LESIONLENS_BACKEND wins
    weights: str = ""
    export_folders: dict[str, str] = dataclasses.field(default_factory=dict)  # image folder -> its export folder
    exported_into: list[str] = dataclasses.field(default_factory=list)  # every folder exported into, newest last


#: What Edit > Preferences offers and "Reset to defaults" resets; the rest (last folder, weights, calibration,
#: export folders, folders exported into) is what the clinician chose for files, not a preference.
PREFERENCE_KEYS = (
    "overlay_colour", "overlay_opacity", "show_fill", "show_boundary", "threshold", "brush_screen_radius", "device",
    "backend",
)  # fmt: skip


def app_data_dir() -> Path:
    """Per-user folder for settings and autosaves: ``$LESIONLENS_HOME`` if set (tests, portable installs), else
    %APPDATA%/LesionLens on Windows, ~/Library/Application Support/LesionLens on macOS, and
    ``$XDG_DATA_HOME`` (or ~/.local/share)/lesionlens elsewhere. Not created here; writers create it."""
    override = os.environ.get("LESIONLENS_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return (Path(appdata) if appdata else Path.home() / "AppData" / "Roaming") / "LesionLens"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "LesionLens"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"  # XDG: relative = unset
    return base / "lesionlens"


def default_settings_path() -> Path:
    return app_data_dir() / SETTINGS_NAME


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _valid(name: str, value: object) -> bool:
    """Type and range of one key; anything else falls back to that key's default."""
    if name == "overlay_colour":
        return isinstance(value, str) and _HEX_COLOUR.fullmatch(value) is not None
    if name in ("overlay_opacity", "threshold"):
        return _is_real(value) and 0.0 <= value <= 1.0
    if name in ("show_fill", "show_boundary"):
        return isinstance(value, bool)
    if name == "brush_screen_radius":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_BRUSH_RADIUS
    if name == "backend":
        return value in BACKENDS
    if name == "export_folders":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if name == "exported_into":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)  # last_folder, device, weights


def load_settings(path: Path | None = None) -> Settings:
    """Settings from ``path`` (default: ``app_data_dir() / "settings.json"``). Never raises for a bad file: a
    missing or corrupt one gives the defaults, unknown keys are ignored and invalid values take their default."""
    path = default_settings_path() if path is None else Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    values: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        value = data.get(field.name)
        if field.name in data and _valid(field.name, value):
            is_float = field.name in ("overlay_opacity", "threshold")
            values[field.name] = float(value) if is_float else value  # type: ignore[arg-type]
    return Settings(**values)  # type: ignore[arg-type]


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write ``settings`` as JSON, atomically (temp file + rename), creating the folder; raises OutputWriteError.

    The folder is made private (0700) and the file 0600: it names the folders the clinician worked in."""
    path = default_settings_path() if path is None else Path(path)
    try:
        private_folder(path.parent)
    except OSError as e:
        raise OutputWriteError(path.parent, e.strerror or str(e)) from e
    text = json.dumps(dataclasses.asdict(settings), indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"), mode=PRIVATE_FILE_MODE)
