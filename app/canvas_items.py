"""Scene items and numpy helpers behind :mod:`app.canvas`: the overlay image, the vertex handles, brush strokes.

Kept apart from the view so the view holds only interaction logic. Coordinates follow ``segmentation.polygon``:
image point (x, y) is the centre of pixel column x, row y; the scene puts pixel (col, row) on the square
[col, col + 1) x [row, row + 1), so scene = image + 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segmentation.lesion import lesion_box
from segmentation.polygon import mask_to_polygons, polygons_to_mask

#: Sub-pixel precision (fractional bits) for OpenCV drawing: strokes follow the mouse, not the pixel grid.
_SHIFT = 4
_ONE = 1 << _SHIFT


def rgb_to_pixmap(image: np.ndarray) -> QPixmap:
    """The RGB uint8 image as a QPixmap, converted once so painting never touches numpy again."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8 or image.strides[1:] != (3, 1):
        image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    qimage = QImage(image.data, width, height, image.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage)  # copies: the QImage only borrowed the numpy buffer


def premultiplied_argb(colour: tuple[int, int, int], opacity: float) -> int:
    """One ARGB32-premultiplied pixel value (0xAARRGGBB) for ``colour`` at ``opacity``."""
    alpha = round(255 * min(max(opacity, 0.0), 1.0))
    red, green, blue = (round(c * alpha / 255) for c in colour)
    return (alpha << 24) | (red << 16) | (green << 8) | blue


def cosmetic_pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen measured in screen pixels, so outlines keep their width at any zoom."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


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


def polygons_path(polygons: Sequence[np.ndarray]) -> QPainterPath:
    """A closed QPainterPath through the polygons' vertices, shifted by +0.5 onto Qt's pixel squares."""
    path = QPainterPath()
    for poly in polygons:
        if len(poly) < 2:
            continue
        path.addPolygon(QPolygonF([QPointF(x + 0.5, y + 0.5) for x, y in poly.tolist()]))
        path.closeSubpath()
    return path


class OverlayItem(QGraphicsItem):
    """The lesion fill: an ARGB32-premultiplied QImage that shares its pixels with a numpy buffer.

    Not a QGraphicsPixmapItem on purpose: a live brush preview writes a few rows of the numpy buffer and repaints
    only that rectangle, whereas a pixmap would have to be re-uploaded (a 96 MB copy on a 24-megapixel photo) on
    every mouse move. On Qt's raster backend a QPixmap is a QImage anyway, so painting costs the same.
    """

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._buffer: np.ndarray | None = None  # (H, W) uint32, owned here; the QImage borrows it
        self._image: QImage | None = None
        self._pixel = 0
        self.smooth = True
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    @property
    def buffer(self) -> np.ndarray | None:
        """The pixels as (H, W) uint32 0xAARRGGBB (read-only use: tests and screenshots)."""
        return self._buffer

    def rebuild(self, mask: np.ndarray | None, colour: tuple[int, int, int], opacity: float) -> None:
        """Colour every lesion pixel, in one vectorised pass (about 16 ms for 24 megapixels)."""
        if mask is None:
            self.clear()
            return
        height, width = mask.shape
        if self._buffer is None or self._buffer.shape != (height, width):
            self.prepareGeometryChange()
            self._buffer = np.empty((height, width), np.uint32)
            self._image = QImage(self._buffer.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)
        self._pixel = premultiplied_argb(colour, opacity)
        np.multiply(np.ascontiguousarray(mask).view(np.uint8), np.uint32(self._pixel), out=self._buffer)
        self.update()

    def write_region(self, top: int, left: int, values: np.ndarray) -> None:
        """Show ``values`` (bool) in the rectangle at (top, left): the live preview of a stroke."""
        if self._buffer is None:
            return
        rows, cols = values.shape
        np.multiply(
            values.view(np.uint8), np.uint32(self._pixel), out=self._buffer[top : top + rows, left : left + cols]
        )
        self.update(QRectF(left, top, cols, rows))

    def clear(self) -> None:
        if self._buffer is not None:
            self.prepareGeometryChange()
        self._buffer, self._image = None, None
        self.update()

    def boundingRect(self) -> QRectF:
        if self._buffer is None:
            return QRectF()
        height, width = self._buffer.shape
        return QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is None:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        painter.drawImage(QPointF(0, 0), self._image)  # the raster engine only touches the clipped area


class BrushCursorItem(QGraphicsEllipseItem):
    """The brush outline that follows the mouse: a light ring under dark dashes, visible on any skin tone."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._dashes = QGraphicsEllipseItem(self)
        self.setPen(cosmetic_pen(QColor(255, 255, 255), 1.5))
        self._dashes.setPen(cosmetic_pen(QColor(0, 0, 0), 1.5, Qt.PenStyle.DashLine))
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_radius(self, radius: int) -> None:
        r = radius + 0.5  # the disc covers pixel centres within the radius: its edge is half a pixel further out
        for item in (self, self._dashes):
            item.setRect(QRectF(-r, -r, 2 * r, 2 * r))


class VertexHandlesItem(QGraphicsItem):
    """Square handles, a constant ``SIZE`` screen pixels wide, on every boundary vertex.

    One item paints them all in device coordinates (the effect of ItemIgnoresTransformations without one
    QGraphicsItem per vertex), so thousands of vertices cost one numpy transform per paint. When more than
    ``MAX_DRAWN`` would be on screen they are not drawn (and :meth:`crowded` tells the canvas not to pick them):
    the clinician zooms in to edit.
    """

    SIZE = 8.0
    MAX_DRAWN = 3000

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._points = np.zeros((0, 2))  # scene coordinates of all vertices, polygon after polygon
        self._starts = np.zeros(1, int)  # index of each polygon's first vertex in _points (+ the total)
        self._selected: tuple[int, int] | None = None
        self._margin = self.SIZE
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_polygons(self, polygons: Sequence[np.ndarray], selected: tuple[int, int] | None = None) -> None:
        self.prepareGeometryChange()
        arrays = [np.asarray(p, float).reshape(-1, 2) for p in polygons]
        self._points = (np.concatenate(arrays) if arrays else np.zeros((0, 2))) + 0.5
        self._starts = np.concatenate([[0], np.cumsum([len(a) for a in arrays], dtype=int)]).astype(int)
        self._selected = selected
        self._update_bounds()

    def set_selected(self, selected: tuple[int, int] | None) -> None:
        self._selected = selected
        self.update()

    def set_view_scale(self, scale: float) -> None:
        """Handles keep their screen size, so the scene margin of the bounding box grows as the view zooms out."""
        self.prepareGeometryChange()
        self._margin = self.SIZE / max(scale, 1e-6)
        self._update_bounds()

    def crowded(self, visible: QRectF) -> bool:
        """True when too many handles fall inside ``visible`` (scene rectangle) to draw or pick them."""
        pts = self._points
        inside = (
            (pts[:, 0] >= visible.left())
            & (pts[:, 0] <= visible.right())
            & (pts[:, 1] >= visible.top())
            & (pts[:, 1] <= visible.bottom())
        )
        return int(np.count_nonzero(inside)) > self.MAX_DRAWN

    def _update_bounds(self) -> None:
        if len(self._points) == 0:
            self._bounds = QRectF()
            return
        (x0, y0), (x1, y1) = self._points.min(axis=0), self._points.max(axis=0)
        m = self._margin
        self._bounds = QRectF(x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if len(self._points) == 0:
            return
        t = painter.worldTransform()
        x, y = self._points[:, 0], self._points[:, 1]
        dx = t.m11() * x + t.m21() * y + t.dx()
        dy = t.m12() * x + t.m22() * y + t.dy()
        half = self.SIZE / 2
        if widget is not None:
            rect = widget.rect()
            keep = (dx >= -half) & (dx <= rect.width() + half) & (dy >= -half) & (dy <= rect.height() + half)
        else:
            keep = np.ones(len(dx), bool)
        if np.count_nonzero(keep) > self.MAX_DRAWN:
            return
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QPen(QColor(20, 20, 20), 1))
        painter.setBrush(QBrush(QColor(255, 255, 255)))
        corners = zip(dx[keep] - half, dy[keep] - half, strict=True)
        painter.drawRects([QRectF(px, py, self.SIZE, self.SIZE) for px, py in corners])
        if self._selected is not None:
            poly, vertex = self._selected
            index = int(self._starts[poly]) + vertex if poly < len(self._starts) - 1 else -1
            if 0 <= index < len(dx):
                painter.setBrush(QBrush(QColor(255, 200, 0)))
                painter.drawRect(QRectF(dx[index] - half - 1, dy[index] - half - 1, self.SIZE + 2, self.SIZE + 2))
        painter.restore()


class BrushStroke:
    """The footprint of one press-move-release stroke, as a uint8 patch over its bounding box (inside the image).

    Each mouse position adds a disc, joined to the previous one by a line as thick as the disc, so a fast drag
    leaves no gaps. The patch grows (with slack) as the stroke wanders; parts outside the image are clipped.
    """

    def __init__(self, shape: tuple[int, int], radius: int, value: bool) -> None:
        self.height, self.width = shape
        self.radius, self.value = int(radius), bool(value)
        self.patch = np.zeros((0, 0), np.uint8)
        self.top = self.left = 0
        self._last: tuple[float, float] | None = None

    def add(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """Add the disc at image point (x, y); return the touched (top, left, bottom, right), or None if outside."""
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
        return top, left, bottom, right

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

    def region(self, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """The footprint (bool) inside an image rectangle that the stroke's patch covers."""
        return self.patch[top - self.top : bottom - self.top, left - self.left : right - self.left].astype(bool)

    def result(self) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(bool patch, (row, col) of its top-left corner) for ``LesionDocument.paint``; None if nothing was hit."""
        if not self.patch.any():
            return None
        return self.patch.astype(bool), (self.top, self.left)


class VertexDrag:
    """A vertex being dragged: which one, the polygon as it was, and the other polygons' path (drawn unchanged)."""

    def __init__(self, poly: int, vertex: int, original: np.ndarray, static_path: QPainterPath) -> None:
        self.poly, self.vertex = poly, vertex
        self.original, self.current = original, original.copy()
        self.static_path = static_path


#: One polygon edit: (polygon index, old polygon, new polygon, old chain, new chain). The chains run from the
#: unchanged neighbour before the edit to the one after it: all ``rasterise_edit`` needs to know where pixels change.
Edit = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class VertexEditor:
    """The vertex tool's editable polygons: picking, dragging, inserting and deleting vertices.

    Knows neither Qt events nor the document: each edit comes back as an :data:`Edit` that the canvas rasterises
    into the mask, so every edit path shares one commit (and one undo step).
    """

    def __init__(self) -> None:
        self.polygons: list[np.ndarray] = []
        self.selected: tuple[int, int] | None = None
        self.drag: VertexDrag | None = None

    def count(self) -> int:
        return sum(len(p) for p in self.polygons)

    def replaced(self, index: int, polygon: np.ndarray) -> list[np.ndarray]:
        return [polygon if i == index else p for i, p in enumerate(self.polygons)]

    def pick_vertex(self, x: float, y: float, max_dist: float) -> tuple[int, int] | None:
        """(polygon, vertex) of the vertex closest to image point (x, y) within ``max_dist``, else None."""
        best: tuple[float, tuple[int, int]] | None = None
        for p, poly in enumerate(self.polygons):
            d = np.hypot(poly[:, 0] - x, poly[:, 1] - y)
            i = int(np.argmin(d))
            if d[i] <= max_dist and (best is None or d[i] < best[0]):
                best = (float(d[i]), (p, i))
        return best[1] if best else None

    def pick_edge(self, x: float, y: float, max_dist: float) -> tuple[int, int] | None:
        """(polygon, i) of the closed edge vertex i -> i + 1 closest to (x, y) within ``max_dist``, else None."""
        best: tuple[float, tuple[int, int]] | None = None
        for p, poly in enumerate(self.polygons):
            a, b = poly, np.roll(poly, -1, axis=0)
            ab = b - a
            length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
            t = np.clip(((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1]) / length2, 0.0, 1.0)
            d = np.hypot(a[:, 0] + t * ab[:, 0] - x, a[:, 1] + t * ab[:, 1] - y)
            i = int(np.argmin(d))
            if d[i] <= max_dist and (best is None or d[i] < best[0]):
                best = (float(d[i]), (p, i))
        return best[1] if best else None

    def begin_drag(self, hit: tuple[int, int]) -> None:
        others = [p for i, p in enumerate(self.polygons) if i != hit[0]]
        self.selected = hit
        self.drag = VertexDrag(hit[0], hit[1], self.polygons[hit[0]], polygons_path(others))

    def drag_to(self, point: np.ndarray) -> QPainterPath:
        """Move the dragged vertex; returns the boundary path to show (the other polygons' path is cached)."""
        drag = self.drag
        drag.current[drag.vertex] = point
        path = QPainterPath(drag.static_path)
        path.addPath(polygons_path([drag.current]))
        return path

    def dragged_polygons(self) -> list[np.ndarray]:
        return self.polygons if self.drag is None else self.replaced(self.drag.poly, self.drag.current)

    def end_drag(self) -> Edit | None:
        drag, self.drag = self.drag, None
        if drag is None or np.array_equal(drag.current, drag.original):
            return None
        around = [drag.vertex - 1, drag.vertex, (drag.vertex + 1) % len(drag.original)]
        return drag.poly, drag.original, drag.current, drag.original[around], drag.current[around]

    def insert(self, edge_hit: tuple[int, int], point: np.ndarray) -> Edit:
        """``point`` becomes vertex ``edge + 1``, splitting the edge from vertex ``edge`` to the next."""
        index, edge = edge_hit
        old = self.polygons[index]
        new = np.insert(old, edge + 1, point, axis=0)
        self.selected = (index, edge + 1)
        return index, old, new, old[[edge, (edge + 1) % len(old)]], new[[edge, edge + 1, (edge + 2) % len(new)]]

    def delete(self, hit: tuple[int, int]) -> Edit | None:
        """Remove a vertex, unless the polygon would drop below three (removing a lesion is the eraser's job)."""
        index, vertex = hit
        old = self.polygons[index]
        if len(old) <= 3:
            return None
        new = np.delete(old, vertex, axis=0)
        self.selected = None
        old_chain = old[[vertex - 1, vertex, (vertex + 1) % len(old)]]
        return index, old, new, old_chain, new[[(vertex - 1) % len(new), vertex % len(new)]]


def rasterise_edit(
    mask: np.ndarray, old: np.ndarray, new: np.ndarray, old_chain: np.ndarray, new_chain: np.ndarray, tolerance: float
) -> np.ndarray | None:
    """The mask after editing one polygon from ``old`` to ``new``, or None if no pixel changes.

    Only pixels near the edited stretch change: ``old_chain`` / ``new_chain`` are the vertices from the unchanged
    neighbour before the edit to the one after it. There the mask becomes the new polygon's fill: wherever the two
    fills differ, and in a band of ``tolerance`` + 1 px around the old edges, because the displayed polygon was
    simplified (Douglas-Peucker) and the real boundary strays up to ``tolerance`` from it; without the band,
    moving a vertex inwards would leave a sliver of the old boundary behind. Elsewhere (the rest of the outline,
    holes, other lesions) the mask is untouched, so a vertex drag never has far-reaching effects.
    """
    height, width = mask.shape
    band_px = math.ceil(tolerance) + 1
    pts = np.vstack([old_chain, new_chain])
    margin = band_px + 2
    x0, y0 = (max(0, math.floor(v) - margin) for v in pts.min(axis=0))
    x1 = min(width, math.ceil(pts[:, 0].max()) + margin + 1)
    y1 = min(height, math.ceil(pts[:, 1].max()) + margin + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    shape, offset = (y1 - y0, x1 - x0), np.array([x0, y0], float)
    old_fill = polygons_to_mask([old - offset], shape)
    new_fill = polygons_to_mask([new - offset], shape)
    band = np.zeros(shape, np.uint8)
    chain = np.round((np.asarray(old_chain, float) - offset) * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(band, [chain], False, 1, thickness=2 * band_px + 1, lineType=cv2.LINE_8, shift=_SHIFT)
    region = band.astype(bool) | (old_fill ^ new_fill)
    crop = mask[y0:y1, x0:x1]
    new_crop = np.where(region, new_fill, crop)
    if np.array_equal(new_crop, crop):
        return None
    out = mask.copy()
    out[y0:y1, x0:x1] = new_crop
    return out
