"""Named dermatoscope profiles: a calibration saved under a name, applied to an image only when the clinician asks.

Plain JSON (``calibration_profiles.json`` in the app's data folder), read tolerantly like the preferences: a damaged
file gives no profiles instead of stopping the app, and an entry with a bad name or value is skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from app.settings import app_data_dir
from segmentation.calibration import MAX_MM_PER_PIXEL
from segmentation.imageio import OutputWriteError, atomic_write_bytes

__all__ = ["MAX_NAME_LENGTH", "PROFILES_NAME", "ProfileStore"]

PROFILES_NAME = "calibration_profiles.json"
MAX_NAME_LENGTH = 80


def _valid_value(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_MM_PER_PIXEL
    )


def clean_name(name: str) -> str:
    """The name as stored: surrounding space removed; ValueError when empty, too long or not printable."""
    name = " ".join(str(name).split())
    if not name:
        raise ValueError("a profile needs a name")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValueError(f"a profile name is at most {MAX_NAME_LENGTH} printable characters")
    return name


class ProfileStore:
    """Profiles by name -> mm per pixel, kept in ``path`` (default: the app's data folder)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else app_data_dir() / PROFILES_NAME

    def load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return {}
        profiles = data.get("profiles") if isinstance(data, dict) else None
        if not isinstance(profiles, dict):
            return {}
        out: dict[str, float] = {}
        for name, value in profiles.items():
            try:
                key = clean_name(name)
            except ValueError:
                continue
            if _valid_value(value):
                out[key] = float(value)
        return dict(sorted(out.items(), key=lambda item: item[0].casefold()))

    def save(self, name: str, mm_per_pixel: float) -> str:
        """Store (or replace) a profile; returns the name as stored. Raises ValueError or OutputWriteError."""
        name = clean_name(name)
        if not _valid_value(mm_per_pixel):
            raise ValueError(f"mm per pixel must be within 0..{MAX_MM_PER_PIXEL}, got {mm_per_pixel}")
        profiles = {**self.load(), name: float(mm_per_pixel)}
        self._write(profiles)
        return name

    def delete(self, name: str) -> None:
        profiles = self.load()
        if profiles.pop(name, None) is not None:
            self._write(profiles)

    def _write(self, profiles: dict[str, float]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputWriteError(self.path.parent, e.strerror or str(e)) from e
        text = json.dumps({"profiles": profiles}, indent=2, ensure_ascii=False) + "\n"
        atomic_write_bytes(self.path, text.encode("utf-8"))
