"""Optional clean-up of a predicted lesion mask.

A network output often has small false-positive specks, pinholes and a ragged edge; these steps remove
them. They are optional (the evaluation reports raw masks unless told otherwise) and every function
returns a new bool array, never modifying its input.

Conventions: the lesion (foreground) is 8-connected; the background is therefore 4-connected when
deciding what is a hole (the dual connectivity, so a diagonal gap in a lesion outline is not a leak).

Every step works on the lesion's bounding box (widened where a step needs room), so its time and temporary memory
follow the lesion, not the photo: a 120-megapixel image costs a copy of its mask, not several float images.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from scipy import ndimage

from segmentation.boxes import lesion_box
from segmentation.measurements import lesion_regions

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
    found = lesion_regions(mask, "largest")
    if found is None or found[2] == 1:
        return mask.copy()
    lesion, box, _ = found
    out = np.zeros_like(mask)
    out[box] = lesion.view(bool)
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions not (4-)connected to the image border: a lesion has no holes."""
    mask = _check_mask(mask)
    out = mask.copy()
    if not mask.any():
        return out
    box = lesion_box(mask, 1)
    # Padded by one pixel, the crop's frame is background connected to everything outside the lesion (the crop's
    # own margin, or the image border): what a 4-connected flood from there does not reach is lesion or hole.
    flood = cv2.copyMakeBorder(np.ascontiguousarray(mask[box], dtype=np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, 0)
    cv2.floodFill(flood, None, (0, 0), 2, flags=4)
    out[box] = flood[1:-1, 1:-1] != 2
    return out


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
    # The blur reaches 4 sigma (scipy's truncation): beyond that margin around the lesion nothing can change.
    box = lesion_box(mask, 4 * radius + 2)
    blurred = ndimage.gaussian_filter(mask[box].astype(np.float32), sigma=radius, mode="nearest")
    out = np.zeros_like(mask)
    out[box] = blurred > 0.5
    return out


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
