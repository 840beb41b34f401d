"""A calibration: how many millimetres one pixel of *this image* spans, and where that number came from.

A calibration belongs to one image. It is measured on the image (a line of known length, e.g. along a ruler in the
photo), typed in, or applied explicitly from a named dermatoscope profile; it is never carried over to another image
on its own. Exports record the value and its source, so a reader of a chart can tell a measured millimetre from an
assumed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SOURCES", "Calibration", "calibration_record"]

#: Where a calibration came from: measured on this image, a named profile applied to it, or typed in.
SOURCES: tuple[str, ...] = ("measured", "profile", "typed")
MAX_MM_PER_PIXEL = 10.0


@dataclass(frozen=True)
class Calibration:
    """``mm_per_pixel`` of one image, its ``source`` (one of :data:`SOURCES`) and, for a profile, its name."""

    mm_per_pixel: float
    source: str
    profile: str = ""

    def __post_init__(self) -> None:
        value = self.mm_per_pixel
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"mm per pixel must be a finite number, got {value!r}")
        if not 0 < value <= MAX_MM_PER_PIXEL:
            raise ValueError(f"mm per pixel must be within 0..{MAX_MM_PER_PIXEL} (exclusive of 0), got {value}")
        if self.source not in SOURCES:
            raise ValueError(f"calibration source must be one of {list(SOURCES)}, got {self.source!r}")
        if (self.source == "profile") != bool(self.profile.strip()):
            raise ValueError("a profile name goes with the source 'profile', and only with it")
        object.__setattr__(self, "mm_per_pixel", float(value))

    def describe(self) -> str:
        """Where the value came from, for the panel: "measured on this image", "profile NAME" or "typed in"."""
        if self.source == "measured":
            return "measured on this image"
        if self.source == "profile":
            return f"profile {self.profile}"
        return "typed in"


def calibration_record(calibration: Calibration | None) -> dict[str, object]:
    """The provenance columns of a calibration (the same keys for an uncalibrated image, with empty values)."""
    if calibration is None:
        return {"mm_per_pixel": None, "calibration_source": "none", "calibration_profile": ""}
    return {
        "mm_per_pixel": calibration.mm_per_pixel,
        "calibration_source": calibration.source,
        "calibration_profile": calibration.profile,
    }
