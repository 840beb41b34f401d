"""What an assisted click should change, computed independently of ``segmentation.assist`` (skimage labelling and
plain numpy distances), for the Qt-free and the GUI tests."""

from __future__ import annotations

import numpy as np
from skimage import measure


def expected_region(candidates: np.ndarray, row: int, col: int, radius: int) -> np.ndarray:
    """Pixels of ``candidates`` within ``radius`` of the click, 8-connected to it."""
    yy, xx = np.mgrid[0 : candidates.shape[0], 0 : candidates.shape[1]]
    within = candidates & ((yy - row) ** 2 + (xx - col) ** 2 <= radius * radius)
    if not within[row, col]:
        return np.zeros_like(within)
    labels = measure.label(within, connectivity=2)
    return labels == labels[row, col]


def edge_disc(other: np.ndarray, row: int, col: int, radius: int, cap: int) -> np.ndarray:
    """The disc from the click to the nearest pixel of ``other`` inside the click's square of ``radius`` (at most
    ``cap`` pixels, at least sqrt(2))."""
    yy, xx = np.mgrid[0 : other.shape[0], 0 : other.shape[1]]
    distance2 = (yy - row) ** 2 + (xx - col) ** 2
    window = (np.abs(yy - row) <= radius) & (np.abs(xx - col) <= radius)
    near = distance2[other & window]
    limit = max(2, min(int(near.min()) if near.size else cap * cap, cap * cap))
    return window & (distance2 <= limit)
