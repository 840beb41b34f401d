"""Model-assisted corrections: click to add, click to remove, and a box to re-segment; no Qt.

The model's probability map often already holds what its mask misses (a faint rim just under the threshold) or
marks what it was unsure of. These operations let one click use that:

- :func:`click_add`: the connected region of "almost lesion" (probability at least the add threshold, lower than the
  mask's) around the click, limited to the click's reach, joins the mask.
- :func:`click_remove`: a mask component that is not the main lesion is removed whole; on the main lesion only the
  connected part around the click that the model was unsure of (probability under the remove threshold, higher
  than the mask's) goes, within the click's reach, so one click never removes the whole lesion.
- :func:`resegment_box`: the model runs again on the box's crop (with a margin), at its own input size, so a small
  lesion gets the model's full resolution; the result replaces the mask inside the box, and the mask outside the
  box is kept or cleared.

Every operation reads only a window around the click or box and returns a :class:`MaskPatch` (the new values of
that window), so a 6000x4000 photo costs no more than a small one and an editor records one undo step per click.
Besides the model's region, a click always takes the disc from the click to the lesion's edge (to the nearest
lesion pixel for an add, the nearest skin pixel for a remove; at most :attr:`AssistSettings.fallback` times the
reach), so a click does something visible where the model gives no support (the click's probability is under the
add threshold, or over the remove threshold) and the probability map shapes the rest. The defaults were chosen on
500 ISIC 2017 *training* images with the simulated clinician of ``benchmarks/clicks.py`` (not on the validation
images it reports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AssistSettings",
    "MaskPatch",
    "RefinedProbability",
    "box_crop",
    "click_add",
    "click_remove",
    "component_at",
    "resegment_box",
]

Box = tuple[int, int, int, int]  # top, left, bottom, right (bottom and right exclusive), image pixels


@dataclass(frozen=True)
class AssistSettings:
    """The thresholds and reach of the click tools (shown and adjustable in the GUI while a tool is active).

    ``reach`` is the largest distance from the click a click may change, as a share of the image's shorter side;
    ``fallback`` is the radius of the disc used where the model gives no support, as a share of the reach.
    """

    add_threshold: float = 0.2
    remove_threshold: float = 0.9
    reach: float = 0.15
    fallback: float = 1.0
    box_margin: float = 0.3

    def __post_init__(self) -> None:
        for name in ("add_threshold", "remove_threshold"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, got {value}")
        if not 0.0 < self.reach <= 1.0:
            raise ValueError(f"reach must be within (0, 1], got {self.reach}")
        if not 0.0 < self.fallback <= 1.0:
            raise ValueError(f"fallback must be within (0, 1], got {self.fallback}")
        if not 0.0 <= self.box_margin <= 1.0:
            raise ValueError(f"box margin must be within 0..1, got {self.box_margin}")

    def reach_px(self, shape: tuple[int, ...]) -> int:
        return max(2, round(self.reach * min(shape[0], shape[1])))


@dataclass(frozen=True)
class MaskPatch:
    """New mask values for the rectangle whose top-left pixel is (``top``, ``left``); what changed and why."""

    top: int
    left: int
    values: np.ndarray  # bool (h, w)
    description: str
    used_model: bool = True  # False: the fallback disc (the model gave no support at the click)

    @property
    def box(self) -> Box:
        h, w = self.values.shape
        return self.top, self.left, self.top + h, self.left + w

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """A copy of ``mask`` with the patch written in."""
        out = mask.copy()
        top, left, bottom, right = self.box
        out[top:bottom, left:right] = self.values
        return out

    def changed(self, mask: np.ndarray) -> int:
        """How many pixels of ``mask`` the patch would change."""
        top, left, bottom, right = self.box
        return int(np.count_nonzero(mask[top:bottom, left:right] != self.values))


class RefinedProbability:
    """The model's probability map with the closer looks of box re-segmentations pasted in (latest on top).

    Read one window at a time (``refined[rows, cols]``), so a 6000x4000 map is never copied whole.
    """

    def __init__(self, base: np.ndarray) -> None:
        self.base = base
        self.patches: list[tuple[int, int, np.ndarray]] = []

    @property
    def shape(self) -> tuple[int, int]:
        return self.base.shape  # type: ignore[return-value]

    def add(self, top: int, left: int, probability: np.ndarray) -> None:
        self.patches.append((top, left, probability))

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        out = np.array(self.base[rows, cols], dtype=np.float32)
        for top, left, patch in self.patches:
            r0, r1 = max(rows.start, top), min(rows.stop, top + patch.shape[0])
            c0, c1 = max(cols.start, left), min(cols.stop, left + patch.shape[1])
            if r0 < r1 and c0 < c1:
                out[r0 - rows.start : r1 - rows.start, c0 - cols.start : c1 - cols.start] = patch[
                    r0 - top : r1 - top, c0 - left : c1 - left
                ]
        return out


def component_at(region: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 8-connected component of bool ``region`` containing (``row``, ``col``) (all False if that pixel is)."""
    if not region[row, col]:
        return np.zeros_like(region, dtype=bool)
    fill = np.zeros((region.shape[0] + 2, region.shape[1] + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    cv2.floodFill(
        region.view(np.uint8) if region.dtype == np.bool_ else region.astype(np.uint8),
        fill,
        (int(col), int(row)),
        0,
        0,
        0,
        flags,
    )
    return fill[1:-1, 1:-1].astype(bool)


def _window(shape: tuple[int, ...], row: int, col: int, radius: int) -> tuple[slice, slice, np.ndarray]:
    """The square around (row, col) clipped to the image, and each of its pixels' squared distance to the click."""
    top, left = max(0, row - radius), max(0, col - radius)
    bottom, right = min(shape[0], row + radius + 1), min(shape[1], col + radius + 1)
    yy, xx = np.ogrid[top - row : bottom - row, left - col : right - col]
    return slice(top, bottom), slice(left, right), yy * yy + xx * xx


def _check(probability: np.ndarray, mask: np.ndarray, row: int, col: int) -> None:
    if probability.shape != mask.shape:
        raise ValueError(f"probability map {probability.shape} and mask {mask.shape} differ in size")
    if not (0 <= row < mask.shape[0] and 0 <= col < mask.shape[1]):
        raise ValueError(f"the click ({col}, {row}) is outside the image {mask.shape[1]}x{mask.shape[0]}")


def click_add(
    probability: np.ndarray, mask: np.ndarray, row: int, col: int, settings: AssistSettings = AssistSettings()
) -> MaskPatch | None:
    """Add the model's "almost lesion" connected to the click; None if the click is already lesion."""
    _check(probability, mask, row, col)
    if mask[row, col]:
        return None
    radius = settings.reach_px(mask.shape)
    rows, cols, distance2 = _window(mask.shape, row, col, radius)
    disc, current, local = distance2 <= radius * radius, mask[rows, cols], probability[rows, cols]
    r, c = row - rows.start, col - cols.start
    used_model = bool(local[r, c] >= settings.add_threshold)
    if used_model:
        region = component_at(disc & ~current & (local >= settings.add_threshold), r, c)
        region |= _fallback_disc(distance2, current, settings, radius)
        text = f"Click add (probability ≥ {settings.add_threshold:.2f})"
    else:
        region = _fallback_disc(distance2, current, settings, radius)
        text = "Click add (disc to the lesion's edge: no model support)"
    return MaskPatch(rows.start, cols.start, current | region, text, used_model)


def click_remove(
    probability: np.ndarray, mask: np.ndarray, row: int, col: int, settings: AssistSettings = AssistSettings()
) -> MaskPatch | None:
    """Remove a separate component whole, or the unsure part of the main lesion around the click; None if the
    click is on skin."""
    _check(probability, mask, row, col)
    if not mask[row, col]:
        return None
    component, (top, left) = _component_of_mask(mask, row, col)
    if component is not None:  # a separate component, smaller than the main lesion: it goes whole
        h, w = component.shape
        values = mask[top : top + h, left : left + w] & ~component
        return MaskPatch(top, left, values, "Click remove (separate component)")
    radius = settings.reach_px(mask.shape)
    rows, cols, distance2 = _window(mask.shape, row, col, radius)
    disc, current, local = distance2 <= radius * radius, mask[rows, cols], probability[rows, cols]
    r, c = row - rows.start, col - cols.start
    used_model = bool(local[r, c] < settings.remove_threshold)
    if used_model:
        region = component_at(disc & current & (local < settings.remove_threshold), r, c)
        region |= _fallback_disc(distance2, ~current, settings, radius)
        text = f"Click remove (probability < {settings.remove_threshold:.2f})"
    else:
        region = _fallback_disc(distance2, ~current, settings, radius)
        text = "Click remove (disc to the lesion's edge: the model was sure)"
    if np.array_equal(region & current, current) and not _more_lesion_outside(mask, rows, cols):
        # The whole lesion lies in the reach and is unsure: take only a disc, never all of it at once.
        region = distance2 <= _fallback_px(settings, radius) ** 2 // 4
    return MaskPatch(rows.start, cols.start, current & ~region, text, used_model)


def _fallback_disc(distance2: np.ndarray, other: np.ndarray, settings: AssistSettings, radius: int) -> np.ndarray:
    """Where the model gives no support: a disc reaching from the click to the nearest pixel of ``other`` (the
    lesion for an add, the skin for a remove), at most the fallback share of the reach."""
    largest = _fallback_px(settings, radius) ** 2
    nearest = int(distance2[other].min()) if other.any() else largest
    return distance2 <= max(2, min(nearest, largest))


def _fallback_px(settings: AssistSettings, radius: int) -> int:
    return max(1, round(settings.fallback * radius))


def _more_lesion_outside(mask: np.ndarray, rows: slice, cols: slice) -> bool:
    inside = np.count_nonzero(mask[rows, cols])
    return int(np.count_nonzero(mask)) > inside


def _component_of_mask(mask: np.ndarray, row: int, col: int) -> tuple[np.ndarray | None, tuple[int, int]]:
    """The clicked mask component (on its bounding box, with its top-left) if it is not the largest, else None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    crop = np.ascontiguousarray(mask[top : int(rows[-1]) + 1, left : int(cols[-1]) + 1], dtype=np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    if count <= 2:
        return None, (0, 0)
    label = int(labels[row - top, col - left])
    areas = stats[1:, cv2.CC_STAT_AREA]
    if label - 1 == int(np.argmax(areas)):
        return None, (0, 0)
    x, y, w, h = (int(v) for v in stats[label, :4])
    return labels[y : y + h, x : x + w] == label, (top + y, left + x)


def box_crop(shape: tuple[int, ...], box: Box, margin: float, aspect: float | None = None) -> Box:
    """The box widened by ``margin`` of its size on each side and, if ``aspect`` (width / height) is given,
    widened further to that shape where the image allows, so the model sees an undistorted crop."""
    top, left, bottom, right = box
    height, width = bottom - top, right - left
    pad_y, pad_x = margin * height, margin * width
    top, bottom, left, right = top - pad_y, bottom + pad_y, left - pad_x, right + pad_x
    if aspect:
        h, w = bottom - top, right - left
        if w / h < aspect:
            extra = (aspect * h - w) / 2
            left, right = left - extra, right + extra
        else:
            extra = (w / aspect - h) / 2
            top, bottom = top - extra, bottom + extra
    top, left = max(0, int(np.floor(top))), max(0, int(np.floor(left)))
    bottom, right = min(shape[0], int(np.ceil(bottom))), min(shape[1], int(np.ceil(right)))
    return top, left, bottom, right


def normalise_box(shape: tuple[int, ...], box: Box) -> Box:
    """``box`` with its corners in order and clipped to the image; an error if nothing of it is left."""
    top, left, bottom, right = box
    top, bottom = sorted((top, bottom))
    left, right = sorted((left, right))
    top, left = max(0, top), max(0, left)
    bottom, right = min(shape[0], bottom), min(shape[1], right)
    if bottom - top < 2 or right - left < 2:
        raise ValueError(f"the box {box} leaves less than 2x2 pixels of the {shape[1]}x{shape[0]} image")
    return top, left, bottom, right


def resegment_box(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    mask: np.ndarray,
    box: Box,
    *,
    threshold: float = 0.5,
    margin: float = AssistSettings.box_margin,
    aspect: float | None = None,
    keep_outside: bool = True,
) -> tuple[MaskPatch, np.ndarray]:
    """Run ``predict`` (RGB crop -> probability at the crop's size) on the box's crop with a margin.

    Returns the patch (the box with the new mask; the whole image when ``keep_outside`` is False, everything
    outside the box cleared) and the crop's probability inside the box (float32, the box's size), so assisted
    clicks afterwards follow the model's closer look.
    """
    top, left, bottom, right = normalise_box(mask.shape, box)
    c_top, c_left, c_bottom, c_right = box_crop(mask.shape, (top, left, bottom, right), margin, aspect)
    crop = np.ascontiguousarray(image[c_top:c_bottom, c_left:c_right])
    probability = np.asarray(predict(crop), dtype=np.float32)
    if probability.shape != crop.shape[:2]:
        raise ValueError(f"the model returned {probability.shape} for a crop of {crop.shape[:2]}")
    inside = probability[top - c_top : bottom - c_top, left - c_left : right - c_left]
    text = "Box re-segmentation"
    if keep_outside:
        return MaskPatch(top, left, inside >= threshold, text), inside.copy()
    values = np.zeros(mask.shape, bool)
    values[top:bottom, left:right] = inside >= threshold
    return MaskPatch(0, 0, values, text + " (outside cleared)"), inside.copy()
