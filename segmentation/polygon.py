"""Lesion boundaries as polygons, for vertex editing in the GUI and for JSON export.

Coordinate convention (callers must follow it): a vertex ``(x, y)`` is the *centre* of the pixel in
column ``x``, row ``y`` (so ``mask[y, x]``). A polygon traced by :func:`mask_to_polygons` runs through
the centres of the lesion's outermost pixels, and :func:`polygons_to_mask` fills every pixel whose
centre lies inside the polygon *or on its boundary*. The two are inverses: mask -> polygons (tolerance
0) -> mask reproduces the mask exactly, except that holes come back filled and components of one or
two pixels (which have no polygon) are lost. Consequence: the polygon's own area
(:func:`polygon_area`) is smaller than the lesion's pixel count by about half its perimeter, because
the outline passes through pixel centres, not along pixel edges; use ``segmentation.measurements`` for
lesion area.

To draw a polygon over an image whose pixel (0, 0) covers ``[0, 1) x [0, 1)`` (e.g. Qt), add 0.5 to
both coordinates.

Polygons are (N, 2) float64 arrays of (x, y), open (the first vertex is not repeated at the end), in
the orientation OpenCV traces them; only the outer boundary of each lesion is kept (no holes).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["mask_to_polygons", "polygon_area", "polygon_perimeter", "polygons_to_mask"]

# cv2.fillPoly's fixed-point precision for fractional vertices (1/256 px), and the coordinate range
# it can hold without int32 overflow after that shift (vertices beyond it are clamped).
_SHIFT = 8
_COORD_LIMIT = 1_000_000.0


def mask_to_polygons(mask: np.ndarray, *, tolerance_px: float = 1.0, min_area_px: float = 0) -> list[np.ndarray]:
    """Outer boundary of each 8-connected lesion, simplified by Douglas-Peucker (cv2.approxPolyDP).

    ``tolerance_px`` is the largest distance a simplified edge may stray from the traced boundary;
    0 keeps every boundary pixel centre. Components with fewer than ``min_area_px`` *pixels* are
    skipped. Polygons are sorted by lesion pixel area, largest first. Outlines with fewer than three
    vertices (components one or two pixels across, or, after simplification, a one-pixel-wide line)
    enclose nothing and are dropped.
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if not tolerance_px >= 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    if not mask.any():
        return []

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    found: list[tuple[int, int, np.ndarray]] = []
    for label in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area_px:
            continue
        # Trace each component on its own bounding-box crop: cheap, and it maps contours to
        # components one-to-one (an island inside another lesion's hole is its own lesion).
        crop = (labels[y : y + h, x : x + w] == label).astype(np.uint8)
        contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x, y))
        contour = max(contours, key=len)
        if tolerance_px > 0:
            contour = cv2.approxPolyDP(contour, float(tolerance_px), True)
        poly = contour.reshape(-1, 2).astype(np.float64)
        if len(poly) >= 3:
            found.append((area, label, poly))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [poly for _, _, poly in found]


def polygons_to_mask(polygons: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Fill the union of ``polygons`` into a bool mask of ``shape`` (H, W).

    Uses cv2.fillPoly, one polygon at a time so that overlaps union instead of cancelling. Boundary
    pixels are included, matching :func:`mask_to_polygons`. Fractional vertices are kept at 1/256 px
    precision; OpenCV's rasteriser then snaps edges to within half a pixel. Polygons with fewer than
    three vertices are ignored; parts outside the image are clipped (vertices beyond +-1e6 px are
    clamped first). A polygon that is not (N, 2), or has a NaN or infinite vertex, raises ValueError.
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    height, width = (int(s) for s in shape)
    if height < 0 or width < 0:
        raise ValueError(f"shape must be non-negative, got {shape}")
    out = np.zeros((height, width), dtype=np.uint8)
    if out.size == 0:
        return out.astype(bool)
    for i, poly in enumerate(polygons):
        pts = np.asarray(poly, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"polygon {i} must be an (N, 2) array of (x, y), got shape {pts.shape}")
        if len(pts) < 3:
            continue
        if not np.all(np.isfinite(pts)):
            raise ValueError(f"polygon {i} has non-finite vertices")
        pts = np.clip(pts, -_COORD_LIMIT, _COORD_LIMIT)
        fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(out, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return out.astype(bool)


def _as_points(poly: np.ndarray) -> np.ndarray:
    pts = np.asarray(poly, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"polygon must be an (N, 2) array of (x, y), got shape {pts.shape}")
    return pts


def polygon_area(poly: np.ndarray) -> float:
    """Enclosed area in px² by the shoelace formula (absolute, so orientation does not matter)."""
    pts = _as_points(poly)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_perimeter(poly: np.ndarray) -> float:
    """Length of the closed outline in px, including the edge from the last vertex back to the first."""
    pts = _as_points(poly)
    if len(pts) < 2:
        return 0.0
    return float(np.sum(np.hypot(*(np.roll(pts, -1, axis=0) - pts).T)))
