"""The editing maths behind the GUI's brush, eraser and vertex tools, with no Qt: tested without a window.

Coordinates follow :mod:`segmentation.polygon`: image point (x, y) is the centre of pixel column x, row y. The GUI
draws what these objects compute (``app.canvas_items``) and records the resulting masks in its document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from segmentation.boxes import lesion_box
from segmentation.polygon import mask_to_polygons, polygons_to_mask

__all__ = [
    "BrushStroke",
    "EdgeRef",
    "MaskPatch",
    "PixelBox",
    "PolygonEdit",
    "VertexDrag",
    "VertexEditor",
    "VertexRef",
    "display_tolerance",
    "rasterise_edit",
    "trace_holes",
    "trace_polygons",
]

#: Sub-pixel precision (fractional bits) for OpenCV drawing: strokes follow the mouse, not the pixel grid.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class VertexRef:
    """One vertex of the drawn boundary: vertex ``vertex`` of polygon ``polygon``."""

    polygon: int
    vertex: int


@dataclass(frozen=True)
class EdgeRef:
    """One edge of the drawn boundary: from vertex ``start`` of polygon ``polygon`` to the next (closed)."""

    polygon: int
    start: int


@dataclass(frozen=True)
class PixelBox:
    """A rectangle of image pixels: rows ``top:bottom``, columns ``left:right``."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True, eq=False)
class MaskPatch:
    """Lesion (True) or not, for the ``values.shape`` pixels whose top-left corner is row ``top``, column ``left``."""

    values: np.ndarray
    top: int
    left: int


@dataclass(frozen=True, eq=False)
class PolygonEdit:
    """One polygon edited from ``old`` to ``new``.

    The chains run from the unchanged neighbour before the edit to the one after it: all ``rasterise_edit`` needs
    to know where pixels may change.
    """

    polygon: int
    old: np.ndarray
    new: np.ndarray
    old_chain: np.ndarray
    new_chain: np.ndarray


def display_tolerance(shape: tuple[int, ...]) -> float:
    """Douglas-Peucker tolerance of the drawn boundary: ~1/500 of the shorter side, so the vertex count (and the
    work per edit) does not grow with the camera's resolution."""
    return max(1.0, min(shape[0], shape[1]) / 500)


def trace_polygons(mask: np.ndarray | None, tolerance: float) -> list[np.ndarray]:
    """``mask_to_polygons`` on the lesion's bounding box only: the same polygons, but the connected-component
    pass (most of the cost) no longer scans empty skin, which matters on a 24-megapixel photo."""
    if mask is None:
        return []
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : int(rows[-1]) + 1, left : int(cols[-1]) + 1]
    offset = np.array([left, top], float)
    return [poly + offset for poly in mask_to_polygons(crop, tolerance_px=tolerance)]


def trace_holes(mask: np.ndarray | None, tolerance: float) -> list[np.ndarray]:
    """The inner boundaries (holes) of the lesion, for drawing: each hole's outline through the centres of the lesion
    pixels around it, simplified like the outer boundary. Traced on the lesion's bounding box only."""
    if mask is None or not mask.any():
        return []
    box = lesion_box(mask, 1)
    crop = np.ascontiguousarray(mask[box], dtype=np.uint8)
    contours, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    offset = np.array([box[1].start, box[0].start], float)
    holes = []
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
        if parent < 0:
            continue  # an outer boundary: drawn (and edited) by the vertex polygons
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, float(tolerance), True)
        holes.append(contour.reshape(-1, 2).astype(np.float64) + offset)
    return holes


class BrushStroke:
    """The footprint of one press-move-release stroke, as a uint8 patch over its bounding box (inside the image).

    Each mouse position adds a disc, joined to the previous one by a line as thick as the disc, so a fast drag
    leaves no gaps. The patch grows (with slack) as the stroke wanders; parts outside the image are clipped.
    ``value`` is True for the brush (paints lesion), False for the eraser.
    """

    def __init__(self, shape: tuple[int, int], radius: int, value: bool) -> None:
        self.height, self.width = shape
        self.radius, self.value = int(radius), bool(value)
        self.patch = np.zeros((0, 0), np.uint8)
        self.top = self.left = 0
        self._last: tuple[float, float] | None = None

    def add(self, x: float, y: float) -> PixelBox | None:
        """Add the disc at image point (x, y); return the pixels it may have touched, or None if outside."""
        last_x, last_y = self._last if self._last is not None else (x, y)
        self._last = (x, y)
        r = self.radius
        left = max(0, math.floor(min(x, last_x) - r) - 1)
        top = max(0, math.floor(min(y, last_y) - r) - 1)
        right = min(self.width, math.ceil(max(x, last_x) + r) + 2)
        bottom = min(self.height, math.ceil(max(y, last_y) + r) + 2)
        if left >= right or top >= bottom:
            return None
        self._ensure(top, left, bottom, right)
        p0 = (round((last_x - self.left) * _ONE), round((last_y - self.top) * _ONE))
        p1 = (round((x - self.left) * _ONE), round((y - self.top) * _ONE))
        if p0 != p1:
            cv2.line(self.patch, p0, p1, 1, thickness=2 * r + 1, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.circle(self.patch, p1, r * _ONE, 1, thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)
        return PixelBox(top, left, bottom, right)

    def _ensure(self, top: int, left: int, bottom: int, right: int) -> None:
        h, w = self.patch.shape
        if h and top >= self.top and left >= self.left and bottom <= self.top + h and right <= self.left + w:
            return
        if h:
            top, left = min(top, self.top), min(left, self.left)
            bottom, right = max(bottom, self.top + h), max(right, self.left + w)
        slack = 2 * self.radius + 16  # fewer re-allocations while the stroke keeps growing
        new_top, new_left = max(0, top - slack), max(0, left - slack)
        new_bottom, new_right = min(self.height, bottom + slack), min(self.width, right + slack)
        grown = np.zeros((new_bottom - new_top, new_right - new_left), np.uint8)
        if h:
            grown[self.top - new_top : self.top - new_top + h, self.left - new_left : self.left - new_left + w] = (
                self.patch
            )
        self.patch, self.top, self.left = grown, new_top, new_left

    def extent(self) -> PixelBox | None:
        """The pixels the stroke's patch covers so far, or None before the first disc inside the image."""
        if not self.patch.size:
            return None
        height, width = self.patch.shape
        return PixelBox(self.top, self.left, self.top + height, self.left + width)

    def region(self, box: PixelBox) -> np.ndarray:
        """The footprint (bool) inside ``box``, which the stroke's patch must cover."""
        rows = slice(box.top - self.top, box.bottom - self.top)
        return self.patch[rows, box.left - self.left : box.right - self.left].astype(bool)

    def result(self) -> MaskPatch | None:
        """The footprint, for ``LesionDocument.paint``; None if the stroke touched no pixel."""
        if not self.patch.any():
            return None
        return MaskPatch(self.patch.astype(bool), self.top, self.left)


@dataclass(frozen=True, eq=False)
class VertexDrag:
    """A vertex being dragged: which one, its polygon as it was, and that polygon as it is now (moved in place)."""

    vertex: VertexRef
    original: np.ndarray
    current: np.ndarray


class VertexEditor:
    """The vertex tool's editable polygons: picking, dragging, inserting and deleting vertices.

    Knows neither mouse events nor the document: each edit comes back as a :class:`PolygonEdit` that the canvas
    rasterises into the mask (:func:`rasterise_edit`), so every edit path shares one commit (and one undo step).
    """

    def __init__(self) -> None:
        self.polygons: list[np.ndarray] = []
        self.selected: VertexRef | None = None
        self.drag: VertexDrag | None = None

    def replaced(self, index: int, polygon: np.ndarray) -> list[np.ndarray]:
        """The polygons with polygon ``index`` replaced by ``polygon``."""
        return [polygon if i == index else p for i, p in enumerate(self.polygons)]

    def pick_vertex(self, x: float, y: float, max_dist: float) -> VertexRef | None:
        """The vertex closest to image point (x, y) within ``max_dist``, else None."""
        best: tuple[float, VertexRef] | None = None
        for p, poly in enumerate(self.polygons):
            d = np.hypot(poly[:, 0] - x, poly[:, 1] - y)
            i = int(np.argmin(d))
            if d[i] <= max_dist and (best is None or d[i] < best[0]):
                best = (float(d[i]), VertexRef(p, i))
        return best[1] if best else None

    def pick_edge(self, x: float, y: float, max_dist: float) -> EdgeRef | None:
        """The closed edge closest to image point (x, y) within ``max_dist``, else None."""
        best: tuple[float, EdgeRef] | None = None
        for p, poly in enumerate(self.polygons):
            a, b = poly, np.roll(poly, -1, axis=0)
            ab = b - a
            length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
            t = np.clip(((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1]) / length2, 0.0, 1.0)
            d = np.hypot(a[:, 0] + t * ab[:, 0] - x, a[:, 1] + t * ab[:, 1] - y)
            i = int(np.argmin(d))
            if d[i] <= max_dist and (best is None or d[i] < best[0]):
                best = (float(d[i]), EdgeRef(p, i))
        return best[1] if best else None

    def begin_drag(self, hit: VertexRef) -> None:
        self.selected = hit
        original = self.polygons[hit.polygon]
        self.drag = VertexDrag(hit, original, original.copy())

    def drag_to(self, point: np.ndarray) -> np.ndarray:
        """Move the dragged vertex to image point ``point``; returns its polygon as it is now."""
        drag = self.drag
        assert drag is not None
        drag.current[drag.vertex.vertex] = point
        return drag.current

    def dragged_polygons(self) -> list[np.ndarray]:
        """The polygons with the drag (if any) applied."""
        return self.polygons if self.drag is None else self.replaced(self.drag.vertex.polygon, self.drag.current)

    def end_drag(self) -> PolygonEdit | None:
        """The edit the drag made, or None if there was no drag or the vertex ended where it started."""
        drag, self.drag = self.drag, None
        if drag is None or np.array_equal(drag.current, drag.original):
            return None
        vertex = drag.vertex.vertex
        around = [vertex - 1, vertex, (vertex + 1) % len(drag.original)]
        old, new = drag.original, drag.current
        return PolygonEdit(drag.vertex.polygon, old, new, old[around], new[around])

    def insert(self, edge: EdgeRef, point: np.ndarray) -> PolygonEdit:
        """``point`` becomes a new vertex that splits ``edge``; it is selected."""
        index, start = edge.polygon, edge.start
        old = self.polygons[index]
        new = np.insert(old, start + 1, point, axis=0)
        self.selected = VertexRef(index, start + 1)
        old_chain = old[[start, (start + 1) % len(old)]]
        return PolygonEdit(index, old, new, old_chain, new[[start, start + 1, (start + 2) % len(new)]])

    def delete(self, hit: VertexRef) -> PolygonEdit | None:
        """Remove a vertex, unless the polygon would drop below three (removing a lesion is the eraser's job)."""
        index, vertex = hit.polygon, hit.vertex
        old = self.polygons[index]
        if len(old) <= 3:
            return None
        new = np.delete(old, vertex, axis=0)
        self.selected = None
        old_chain = old[[vertex - 1, vertex, (vertex + 1) % len(old)]]
        return PolygonEdit(index, old, new, old_chain, new[[(vertex - 1) % len(new), vertex % len(new)]])


def rasterise_edit(mask: np.ndarray, edit: PolygonEdit, tolerance: float) -> np.ndarray | None:
    """The mask after ``edit``, or None if no pixel changes.

    Only pixels near the edited stretch change (``edit.old_chain`` / ``edit.new_chain``). There the mask becomes
    the new polygon's fill: wherever the old and new fills differ, and in a band of ``tolerance`` + 1 px around the
    old edges, because the displayed polygon was simplified (Douglas-Peucker) and the real boundary strays up to
    ``tolerance`` from it; without the band, moving a vertex inwards would leave a sliver of the old boundary
    behind. Elsewhere (the rest of the outline, holes, other lesions) the mask is untouched, so a vertex drag never
    has far-reaching effects.
    """
    height, width = mask.shape
    band_px = math.ceil(tolerance) + 1
    pts = np.vstack([edit.old_chain, edit.new_chain])
    margin = band_px + 2
    x0, y0 = (max(0, math.floor(v) - margin) for v in pts.min(axis=0))
    x1 = min(width, math.ceil(pts[:, 0].max()) + margin + 1)
    y1 = min(height, math.ceil(pts[:, 1].max()) + margin + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    shape, offset = (y1 - y0, x1 - x0), np.array([x0, y0], float)
    old_fill = polygons_to_mask([edit.old - offset], shape)
    new_fill = polygons_to_mask([edit.new - offset], shape)
    band = np.zeros(shape, np.uint8)
    chain = np.round((np.asarray(edit.old_chain, float) - offset) * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(band, [chain], False, 1, thickness=2 * band_px + 1, lineType=cv2.LINE_8, shift=_SHIFT)
    region = band.astype(bool) | (old_fill ^ new_fill)
    crop = mask[y0:y1, x0:x1]
    new_crop = np.where(region, new_fill, crop)
    if np.array_equal(new_crop, crop):
        return None
    out = mask.copy()
    out[y0:y1, x0:x1] = new_crop
    return out
