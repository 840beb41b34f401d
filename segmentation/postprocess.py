"""Optional clean-up of a predicted lesion mask.

A network output often has small false-positive specks, pinholes and a ragged edge; these steps remove
them. They are optional (the evaluation reports raw masks unless told otherwise) and every function
returns a new bool array, never modifying its input.

Conventions: the lesion (foreground) is 8-connected; the background is therefore 4-connected when
deciding what is a hole (the dual connectivity, so a diagonal gap in a lesion outline is not a leak).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage
from skimage import measure

__all__ = [
    "CLEANUP_STEPS",
    "clean_up",
    "default_smooth_radius",
    "fill_holes",
    "keep_largest_lesion",
    "smooth_boundary",
]

#: Step names in the order :func:`clean_up` applies them.
CLEANUP_STEPS: tuple[str, ...] = ("fill_holes", "keep_largest", "smooth")


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return mask


def keep_largest_lesion(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest 8-connected component (ties: the first in raster order).

    Dermoscopy images are framed on one lesion, so smaller components are almost always false
    positives (hair, ruler marks, vignetting).
    """
    mask = _check_mask(mask)
    labels, n = measure.label(mask, connectivity=2, return_num=True)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions not (4-)connected to the image border: a lesion has no holes."""
    mask = _check_mask(mask)
    return ndimage.binary_fill_holes(mask).astype(bool, copy=False)


def default_smooth_radius(shape: tuple[int, ...]) -> int:
    """About 0.5% of the shorter image side, at least 1 px, so smoothing looks alike at any resolution."""
    return max(1, round(0.005 * min(shape[0], shape[1])))


def smooth_boundary(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Gaussian blur of the mask as 0/1 floats (sigma = ``radius_px``), re-thresholded at 0.5.

    Chosen over opening+closing because it treats lesion and background alike (protrusions and
    notches, specks and pinholes narrower than about 1.35 x radius go, whichever side they are on), so
    a ragged edge is averaged rather than biased inwards or outwards and the area is nearly kept; a
    convex lesion of radius R shrinks by only about radius²/(2R) px along its edge. Beyond the image
    edge the nearest pixel is repeated, so a lesion cut by the frame neither shrinks from nor grows to
    the frame. Radius 0 returns a copy.
    """
    mask = _check_mask(mask)
    radius = int(radius_px)
    if radius != radius_px or radius < 0:
        raise ValueError(f"radius_px must be a non-negative integer, got {radius_px!r}")
    if radius == 0 or not mask.any():
        return mask.copy()
    blurred = ndimage.gaussian_filter(mask.astype(np.float32), sigma=radius, mode="nearest")
    return blurred > 0.5


def clean_up(mask: np.ndarray, steps: Iterable[str], *, smooth_radius_px: int | None = None) -> np.ndarray:
    """Apply the named steps in :data:`CLEANUP_STEPS` order, whatever order ``steps`` lists them in.

    The fixed order makes the result depend only on which steps are enabled (e.g. GUI check boxes),
    not on the order they were ticked. ``smooth_radius_px=None`` uses :func:`default_smooth_radius`.
    """
    mask = _check_mask(mask)
    wanted = {steps} if isinstance(steps, str) else set(steps)  # "smooth" is one step, not 6 letters
    unknown = sorted(wanted - set(CLEANUP_STEPS))
    if unknown:
        raise ValueError(f"unknown clean-up step(s) {unknown}; valid steps: {list(CLEANUP_STEPS)}")
    out = mask.copy()
    if "fill_holes" in wanted:
        out = fill_holes(out)
    if "keep_largest" in wanted:
        out = keep_largest_lesion(out)
    if "smooth" in wanted:
        radius = default_smooth_radius(mask.shape) if smooth_radius_px is None else smooth_radius_px
        out = smooth_boundary(out, radius)
    return out
