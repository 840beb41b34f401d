"""Scene items behind :mod:`app.canvas`: the overlay image, the vertex handles, the brush cursor, boundary paths.

Kept apart from the view so the view holds only interaction logic; the editing maths they draw is Qt-free, in
:mod:`segmentation.editing`. Coordinates follow ``segmentation.polygon``:
image point (x, y) is the centre of pixel column x, row y; the scene puts pixel (col, row) on the square
[col, col + 1) x [row, row + 1), so scene = image + 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segmentation.editing import VertexEditor, VertexRef


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
        self._selected: VertexRef | None = None
        self._margin = self.SIZE
        self._bounds = QRectF()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_polygons(self, polygons: Sequence[np.ndarray], selected: VertexRef | None = None) -> None:
        self.prepareGeometryChange()
        arrays = [np.asarray(p, float).reshape(-1, 2) for p in polygons]
        self._points = (np.concatenate(arrays) if arrays else np.zeros((0, 2))) + 0.5
        self._starts = np.concatenate([[0], np.cumsum([len(a) for a in arrays], dtype=int)]).astype(int)
        self._selected = selected
        self._update_bounds()

    def set_selected(self, selected: VertexRef | None) -> None:
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
            poly, vertex = self._selected.polygon, self._selected.vertex
            index = int(self._starts[poly]) + vertex if poly < len(self._starts) - 1 else -1
            if 0 <= index < len(dx):
                painter.setBrush(QBrush(QColor(255, 200, 0)))
                painter.drawRect(QRectF(dx[index] - half - 1, dy[index] - half - 1, self.SIZE + 2, self.SIZE + 2))
        painter.restore()


class DrawnVertexEditor(VertexEditor):
    """The vertex editor plus what drawing a drag needs: the path of the polygons not being dragged, built once per
    drag, so a mouse move only rebuilds the dragged polygon's path."""

    def __init__(self) -> None:
        super().__init__()
        self._static_path = QPainterPath()

    def begin_drag(self, hit: VertexRef) -> None:
        super().begin_drag(hit)
        self._static_path = polygons_path([p for i, p in enumerate(self.polygons) if i != hit.polygon])

    def drag_path(self, point: np.ndarray) -> QPainterPath:
        """Move the dragged vertex to image point ``point``; returns the boundary path to show."""
        path = QPainterPath(self._static_path)
        path.addPath(polygons_path([self.drag_to(point)]))
        return path
