"""The file names LesionLens writes and reads beside the clinician's images: one place for every naming rule.

An output is named ``<stem><suffix>``: ``stem`` is the image's name without its extension (the batch keeps the
extension, ``a.jpg_segmentation.png``, when two inputs would otherwise share a stem). Masks follow the ISIC
challenge naming, so the same rule finds the ground-truth masks of the ISIC and HAM10000 data sets.
"""

from __future__ import annotations

__all__ = [
    "BATCH_SUFFIXES",
    "EXPORT_SUFFIXES",
    "MASK_SUFFIX",
    "OUTPUT_IMAGE_SUFFIXES",
    "is_output_name",
    "mask_name",
    "output_name",
]

#: The lesion mask (0 = skin, 255 = lesion), ISIC naming. ISIC 2016 spells it ``_Segmentation.png``: readers of
#: ground truth match it case-insensitively.
MASK_SUFFIX = "_segmentation.png"
BATCH_OVERLAY_SUFFIX = "_overlay.jpg"  # the batch's: the boundary alone, drawn on the photo
EXPORT_OVERLAY_SUFFIX = "_overlay.png"  # the GUI export's overlay, as the clinician saw it
PROBABILITY_SUFFIX = "_probability.png"
BOUNDARY_SUFFIX = "_boundary.geojson"
MEASUREMENTS_SUFFIX = "_measurements.csv"

#: kind -> suffix, for ``lesionlens segment`` and for the GUI's export.
BATCH_SUFFIXES: dict[str, str] = {
    "mask": MASK_SUFFIX,
    "overlay": BATCH_OVERLAY_SUFFIX,
    "probability": PROBABILITY_SUFFIX,
    "geojson": BOUNDARY_SUFFIX,
}
EXPORT_SUFFIXES: dict[str, str] = {
    "mask": MASK_SUFFIX,
    "overlay": EXPORT_OVERLAY_SUFFIX,
    "boundary": BOUNDARY_SUFFIX,
    "measurements": MEASUREMENTS_SUFFIX,
}
#: The images among the outputs: never taken as inputs, so a rerun does not segment its own masks.
OUTPUT_IMAGE_SUFFIXES: tuple[str, ...] = (MASK_SUFFIX, BATCH_OVERLAY_SUFFIX, PROBABILITY_SUFFIX, EXPORT_OVERLAY_SUFFIX)


def output_name(stem: str, suffix: str) -> str:
    """The name of one output of the image whose name without extension is ``stem``."""
    return f"{stem}{suffix}"


def mask_name(stem: str) -> str:
    """The mask's name for the image ``<stem>.<ext>``: ``ISIC_0000001`` -> ``ISIC_0000001_segmentation.png``."""
    return output_name(stem, MASK_SUFFIX)


def is_output_name(name: str) -> bool:
    """True for images LesionLens itself writes (masks, overlays, probability maps), by file name."""
    return name.endswith(OUTPUT_IMAGE_SUFFIXES)
