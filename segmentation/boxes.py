"""Bounding boxes of a lesion mask: the measurements, clean-up, editing, export and GeoJSON work on the lesion's box,
never on the whole (up to 120-megapixel) photo."""

from __future__ import annotations

import numpy as np


def lesion_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of a non-empty mask, widened by ``margin`` pixels where the image has them."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (
        slice(max(0, rows[0] - margin), min(mask.shape[0], rows[-1] + margin + 1)),
        slice(max(0, cols[0] - margin), min(mask.shape[1], cols[-1] + margin + 1)),
    )
