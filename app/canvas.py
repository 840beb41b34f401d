"""The image canvas: the dermoscopy photo with the lesion overlay, zoom and pan, and the editing tools.

A view in the strict sense: it draws ``LesionDocument`` and changes it only through its methods (one undo step
per brush stroke, eraser stroke or vertex edit); the only mask state it keeps is the preview of the stroke or drag
in progress. Everything per-pixel is numpy or OpenCV, done once per document change, never per paint, so a
24-megapixel photo stays smooth.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from app import canvas_items as items
from app.actions import is_shortcut
from app.document import LesionDocument
from app.tools import TOOL_BEHAVIOURS, Tool, ToolBehaviour
from segmentation.editing import (
    BrushStroke,
    EdgeRef,
    PixelBox,
    PolygonEdit,
    VertexRef,
    display_tolerance,
    rasterise_edit,
    trace_holes,
    trace_polygons,
)
from segmentation.export import OverlayStyle

MIN_SCALE, MAX_SCALE = 1 / 64, 64.0
MIN_RADIUS, MAX_RADIUS = 1, 500
#: Zoom per wheel notch (120 eighths of a degree); finer wheels and touchpads zoom proportionally less.
WHEEL_NOTCH_FACTOR = 2**0.25
#: How close (screen pixels) the mouse must be to grab a vertex or to double-click an edge.
PICK_VERTEX_PX = 7.0
PICK_EDGE_PX = 6.0
BOUNDARY_WIDTH_PX = 2.0


__all__ = ["LesionCanvas", "Tool"]


class LesionCanvas(QGraphicsView):
    """Zoomable view of the open image with the lesion overlay and the brush, eraser, vertex and calibration tools.

    Mouse: wheel zooms about the cursor (Ctrl + wheel sizes the brush), middle-drag pans in every tool, left-drag
    pans in NAVIGATE. Keys: ``[`` / ``]`` brush size, Delete / Backspace removes the selected vertex, Esc
    abandons the stroke or drag in progress (``app.actions`` tables). The brush radius is in screen pixels, so
    the brush looks and acts the same at any zoom and on any image; a stroke paints ``brush_image_radius``.
    """

    cursorMoved = Signal(int, int)  # image pixel under the mouse (x, y); only emitted inside the image
    zoomChanged = Signal(float)  # scale factor (1.0 = 1:1)
    calibrationLineDrawn = Signal(float)  # length in image pixels of the line the user drew
    brushRadiusChanged = Signal(int)  # screen pixels; so the window can show and remember the size
    assistClicked = Signal(int, int, bool)  # image pixel (row, col) clicked with the assist tool; True: add
    boxDrawn = Signal(int, int, int, int)  # the re-segmentation box: top, left, bottom, right (exclusive)

    def __init__(self, document: LesionDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._document = document
        self._tool = Tool.NAVIGATE
        self._style = OverlayStyle()
        self._radius = 12
        self._peeking = False
        self._fit = True  # keep fitting on resize until the user zooms
        self._tolerance = 1.0
        self._vertices = items.DrawnVertexEditor()  # the drawn polygons, the selected vertex, a drag in progress
        self._polygons_dirty = True
        self._holes: list[np.ndarray] = []  # inner boundaries: drawn, not edited as vertices
        self._holes_dirty = True
        self._overlay_dirty = True
        self._pending_polygons: list[np.ndarray] | None = None  # our own vertex edit, kept as drawn
        self._committing_stroke = False  # the overlay already shows the stroke: no rebuild needed
        self._stroke: BrushStroke | None = None
        self._calibration_start: QPointF | None = None
        self._box_start: QPointF | None = None
        self._pan_last: QPointF | None = None
        self._last_pixel: tuple[int, int] | None = None
        self._mouse_scene: QPointF | None = None

        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)  # a handful of items; no BSP upkeep
        self.setScene(scene)
        self.image_item = QGraphicsPixmapItem()
        self.image_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.overlay_item = items.OverlayItem()
        self.boundary_item = QGraphicsPathItem()
        self.handles_item = items.VertexHandlesItem()
        self.calibration_item = QGraphicsLineItem()
        self.cursor_item = items.BrushCursorItem()
        self.box_item = QGraphicsRectItem()
        layers = (self.image_item, self.overlay_item, self.boundary_item, self.handles_item, self.calibration_item)
        for z, item in enumerate((*layers, self.box_item)):
            item.setZValue(z)
            scene.addItem(item)
        self.cursor_item.setZValue(10)
        scene.addItem(self.cursor_item)
        self.calibration_item.setPen(items.cosmetic_pen(QColor(255, 0, 255), 2.0))
        self.box_item.setPen(items.cosmetic_pen(QColor(0, 220, 255), 2.0, Qt.PenStyle.DashLine))
        for item in (self.handles_item, self.calibration_item, self.cursor_item, self.box_item):
            item.setVisible(False)
        self._apply_boundary_pen()

        self.setInteractive(False)  # the view handles every gesture; no per-move item lookups in the scene
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(38, 38, 40))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)
        self._apply_tool_mode()
        self.cursor_item.set_radius(self._radius)

        document.imageChanged.connect(self._on_image_changed)
        document.maskChanged.connect(self._on_mask_changed)
        self._on_image_changed()
        self._on_mask_changed()

    # -- public API ----------------------------------------------------------------------------------------------
    @property
    def document(self) -> LesionDocument:
        return self._document

    @property
    def tool(self) -> Tool:
        return self._tool

    @property
    def _behaviour(self) -> ToolBehaviour:
        return TOOL_BEHAVIOURS[self._tool]

    def set_tool(self, tool: Tool) -> None:
        """Switch tools; an unfinished stroke or drag is abandoned and the calibration line is removed."""
        if tool == self._tool:
            return
        self._cancel_interaction()
        self._tool = tool
        self._vertices.selected = None
        self.calibration_item.setVisible(False)
        self.box_item.setVisible(False)
        self._apply_tool_mode()
        self._refresh()

    @property
    def overlay_style(self) -> OverlayStyle:
        return self._style

    def set_overlay_style(self, style: OverlayStyle) -> None:
        """Colour, opacity and the fill / boundary toggles; the overlay is recoloured only if colour or opacity
        changed (toggles cost nothing)."""
        recolour = (style.colour, style.opacity) != (self._style.colour, self._style.opacity)
        self._style = style
        if recolour:
            self._overlay_dirty = True
            self._apply_boundary_pen()
        self._refresh()

    @property
    def brush_radius(self) -> int:
        """Brush and eraser radius in screen pixels."""
        return self._radius

    @property
    def brush_image_radius(self) -> int:
        """The radius a stroke paints, in image pixels at the current zoom (0: one pixel)."""
        return max(0, round(self._radius / self.zoom))

    def set_brush_radius(self, radius: int) -> None:
        """Brush and eraser radius in screen pixels, clamped to 1..500; the cursor circle follows at once."""
        radius = min(max(int(radius), MIN_RADIUS), MAX_RADIUS)
        if radius == self._radius:
            return
        self._radius = radius
        self.cursor_item.set_radius(self.brush_image_radius)
        self.brushRadiusChanged.emit(radius)

    def step_brush(self, steps: int) -> None:
        """``[`` / ``]``: smaller or larger by about an eighth per step."""
        self.set_brush_radius(self._radius + steps * self._radius_step())

    @property
    def zoom(self) -> float:
        """The current scale factor (1.0 = one image pixel per screen pixel)."""
        return self.transform().m11()

    def zoom_to_fit(self) -> None:
        """Show the whole image, keeping its aspect ratio; re-fits on resize until the user zooms."""
        rect = self.scene().sceneRect()
        if self._document.image is None or rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if not MIN_SCALE <= self.zoom <= MAX_SCALE:
            self._set_scale(self.zoom)
        self._fit = True
        self._after_zoom()

    def zoom_actual_size(self) -> None:
        """One image pixel per screen pixel, about the view's centre."""
        self._set_scale(1.0)

    def zoom_by(self, factor: float) -> None:
        """Zoom by ``factor`` about the view's centre (the keyboard's zoom in / out)."""
        self._set_scale(self.zoom * factor)

    @property
    def peeking(self) -> bool:
        return self._peeking

    def set_peek(self, peeking: bool) -> None:
        """True hides the overlay, boundary and handles so the clinician can look at the bare skin."""
        self._peeking = bool(peeking)
        self._refresh()

    @property
    def holes(self) -> list[np.ndarray]:
        """The inner boundaries as drawn (same coordinates as :attr:`polygons`); not editable as vertices."""
        self._ensure_polygons()
        return [h.copy() for h in self._holes]

    @property
    def polygons(self) -> list[np.ndarray]:
        """The boundary polygons as drawn (image (x, y) pixel-centre coordinates), i.e. the editable vertices."""
        self._ensure_polygons()
        return [p.copy() for p in self._vertices.polygons]

    @property
    def selected_vertex(self) -> VertexRef | None:
        """The vertex picked with the vertex tool, which Delete removes."""
        return self._vertices.selected

    # -- document signals --------------------------------------------------------------------------------------
    def _on_image_changed(self) -> None:
        self._cancel_interaction()
        self.calibration_item.setVisible(False)
        self.box_item.setVisible(False)
        self._vertices.selected, self._last_pixel = None, None
        image = self._document.image
        if image is None:
            self.image_item.setPixmap(QPixmap())
            self.scene().setSceneRect(QRectF())
            return
        self.image_item.setPixmap(items.rgb_to_pixmap(image))
        height, width = image.shape[:2]
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        self._tolerance = display_tolerance(image.shape)
        self.zoom_to_fit()

    def _on_mask_changed(self) -> None:
        self._vertices.drag = None  # e.g. undo pressed mid-drag: the dragged polygon no longer matches the mask
        self._overlay_dirty = self._overlay_dirty or not self._committing_stroke
        self._holes_dirty = True
        if self._pending_polygons is not None:
            self._vertices.polygons, self._polygons_dirty = self._pending_polygons, False
        else:
            self._polygons_dirty, self._vertices.selected = True, None
        self._refresh()

    # -- drawing -------------------------------------------------------------------------------------------------
    def _apply_boundary_pen(self) -> None:
        self.boundary_item.setPen(items.cosmetic_pen(QColor(*self._style.colour), BOUNDARY_WIDTH_PX))

    def _ensure_polygons(self) -> None:
        holes_changed = self._holes_dirty
        if self._holes_dirty:
            self._holes, self._holes_dirty = trace_holes(self._document.mask, self._tolerance), False
        if not self._polygons_dirty:
            if holes_changed:
                self._show_polygons()
            return
        self._vertices.polygons = trace_polygons(self._document.mask, self._tolerance)
        self._polygons_dirty = False
        self._show_polygons()

    def _show_polygons(self) -> None:
        self.boundary_item.setPath(items.polygons_path([*self._vertices.polygons, *self._holes]))
        self.handles_item.set_polygons(self._vertices.polygons, self._vertices.selected)

    def _refresh(self) -> None:
        """Bring items up to date, computing only what is visible (hidden layers are rebuilt when shown)."""
        mask, stroking = self._document.mask, self._stroke is not None
        has_mask = mask is not None
        # While painting the fill shows even if toggled off, or the stroke would be invisible.
        show_fill = (has_mask or stroking) and not self._peeking and (stroking or self._style.fill)
        show_boundary = has_mask and not self._peeking and (self._style.boundary or self._tool is Tool.VERTICES)
        show_handles = show_boundary and self._tool is Tool.VERTICES
        if (show_fill or stroking) and self._overlay_dirty:
            if mask is None:  # painting before (or instead of) the model: start from an empty mask
                mask = np.zeros(self._image_size(), bool)
            self.overlay_item.rebuild(mask, self._style.colour, self._style.opacity)
            self._overlay_dirty = not has_mask
            extent = self._stroke.extent() if stroking else None
            if extent is not None:  # a rebuild mid-stroke (undo, recolour) keeps the stroke
                self._preview(extent)
        elif not has_mask and not stroking:
            self.overlay_item.clear()
            self._overlay_dirty = True
        if show_boundary or self._tool is Tool.VERTICES:
            self._ensure_polygons()
            if self._pending_polygons is not None:
                self._show_polygons()
        self.overlay_item.setVisible(show_fill)
        self.boundary_item.setVisible(show_boundary)
        self.handles_item.setVisible(show_handles)

    def _after_zoom(self) -> None:
        scale = self.zoom
        smooth = scale < 1.0  # zoomed in, the clinician wants to see crisp pixels, not a blur
        self.image_item.setTransformationMode(
            Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        )
        self.overlay_item.smooth = smooth
        self.handles_item.set_view_scale(scale)
        self.cursor_item.set_radius(self.brush_image_radius)
        self.zoomChanged.emit(scale)

    def _set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``scale`` (clamped) keeping the scene point under ``anchor`` (view coordinates) in place."""
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        fixed = self._scene_at(anchor)
        self.setTransform(QTransform.fromScale(scale, scale))
        moved = self.viewportTransform().map(fixed) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(moved.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(moved.y()))
        self._fit = False
        self._after_zoom()

    def _scene_at(self, pos: QPointF) -> QPointF:
        return self.viewportTransform().inverted()[0].map(QPointF(pos))

    def _image_point(self, scene: QPointF) -> tuple[float, float]:
        """Scene point -> image (x, y) in pixel-centre coordinates (``segmentation.polygon``'s convention)."""
        return scene.x() - 0.5, scene.y() - 0.5

    def _image_size(self) -> tuple[int, int]:
        image = self._document.image
        return (0, 0) if image is None else image.shape[:2]

    def _apply_tool_mode(self) -> None:
        behaviour = self._behaviour
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag if behaviour.pans else QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(behaviour.cursor)
        self.cursor_item.setVisible(behaviour.brush_cursor and self._mouse_scene is not None)

    # -- brush and eraser ------------------------------------------------------------------------------------------
    def _preview(self, box: PixelBox) -> None:
        """Show the mask with the stroke applied inside ``box`` without a rebuild."""
        mask = self._document.mask
        shape = (box.bottom - box.top, box.right - box.left)
        current = np.zeros(shape, bool) if mask is None else mask[box.top : box.bottom, box.left : box.right]
        stroke = self._stroke.region(box)
        self.overlay_item.write_region(box.top, box.left, current | stroke if self._stroke.value else current & ~stroke)

    def _stroke_to(self, scene: QPointF) -> None:
        box = self._stroke.add(*self._image_point(scene))
        if box is not None:
            self._preview(box)

    def _begin_stroke(self, scene: QPointF) -> None:
        if self._document.image is None:
            return
        self._stroke = BrushStroke(self._image_size(), self.brush_image_radius, self._tool is Tool.BRUSH)
        self._refresh()
        self._stroke_to(scene)

    def _end_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        result = stroke.result()
        text = "Brush stroke" if stroke.value else "Eraser stroke"
        document = self._document
        if result is not None:
            patch, row, col = result.values, result.top, result.left
            if document.mask is None:
                if stroke.value:
                    new_mask = np.zeros(self._image_size(), bool)
                    new_mask[row : row + patch.shape[0], col : col + patch.shape[1]] = patch
                    document.replace_mask(new_mask, text)
            else:
                self._committing_stroke = True
                try:
                    document.paint(patch, (row, col), stroke.value, text)
                finally:
                    self._committing_stroke = False
        self._refresh()

    # -- vertices ------------------------------------------------------------------------------------------------
    def _handles_usable(self) -> bool:
        visible = self._scene_at(QPointF(0, 0)), self._scene_at(QPointF(self.viewport().rect().bottomRight()))
        return not self.handles_item.crowded(QRectF(visible[0], visible[1]))

    def _pick_vertex(self, pos: QPointF) -> VertexRef | None:
        if not self.handles_item.isVisible() or not self._handles_usable():  # never edit what is not shown
            return None
        x, y = self._image_point(self._scene_at(pos))
        return self._vertices.pick_vertex(x, y, PICK_VERTEX_PX / self.zoom)

    def _inside_image(self, scene: QPointF) -> QPointF:
        height, width = self._image_size()
        return QPointF(min(max(scene.x(), 0.0), width), min(max(scene.y(), 0.0), height))

    def _clamped_image_point(self, pos: QPointF) -> np.ndarray:
        """Image point under ``pos``, kept on pixel centres inside the image (where vertices must stay)."""
        height, width = self._image_size()
        x, y = self._image_point(self._scene_at(pos))
        return np.array([min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)])

    def _commit(self, edit: PolygonEdit | None, text: str, *, keep_unchanged: bool) -> None:
        """Rasterise one polygon edit into the mask as one undo step (``rasterise_edit`` says which pixels may
        change). The edited polygons stay as drawn instead of being re-traced, so vertices do not jump after an
        edit. An edit that changes no pixel is kept on screen only if ``keep_unchanged`` (an inserted vertex that
        the clinician will drag next), else the polygons are drawn as they were."""
        mask = self._document.mask
        if edit is not None and mask is not None:
            polygons = self._vertices.replaced(edit.polygon, edit.new)
            new_mask = rasterise_edit(mask, edit, self._tolerance)
            self._pending_polygons = polygons
            try:
                if new_mask is not None and self._document.replace_mask(new_mask, text):
                    return
            finally:
                self._pending_polygons = None
            if keep_unchanged:
                self._vertices.polygons = polygons
        self._show_polygons()

    def _insert_vertex(self, pos: QPointF) -> None:
        x, y = self._image_point(self._scene_at(pos))
        edge: EdgeRef | None = self._vertices.pick_edge(x, y, PICK_EDGE_PX / self.zoom)
        if edge is not None and self._pick_vertex(pos) is None and self._handles_usable():
            self._commit(
                self._vertices.insert(edge, self._clamped_image_point(pos)), "Insert vertex", keep_unchanged=True
            )

    def _delete_vertex(self, hit: VertexRef) -> None:
        self._commit(self._vertices.delete(hit), "Delete vertex", keep_unchanged=True)

    # -- calibration line and re-segmentation box --------------------------------------------------------------
    def _begin_line(self, scene: QPointF) -> None:
        self._calibration_start = self._inside_image(scene)
        self.calibration_item.setLine(QLineF(self._calibration_start, self._calibration_start))
        self.calibration_item.setVisible(True)

    def _line_to(self, scene: QPointF) -> bool:
        if self._calibration_start is None:
            return False
        self.calibration_item.setLine(QLineF(self._calibration_start, self._inside_image(scene)))
        return True

    def _end_line(self) -> bool:
        if self._calibration_start is None:
            return False
        self._calibration_start = None
        length = self.calibration_item.line().length()
        if length > 0:
            self.calibrationLineDrawn.emit(length)
        return True

    def _begin_box(self, scene: QPointF) -> None:
        self._box_start = self._inside_image(scene)
        self.box_item.setRect(QRectF(self._box_start, self._box_start))
        self.box_item.setVisible(True)

    def _box_to(self, scene: QPointF) -> bool:
        if self._box_start is None:
            return False
        self.box_item.setRect(QRectF(self._box_start, self._inside_image(scene)).normalized())
        return True

    def _end_box(self, scene: QPointF) -> bool:
        """Emit ``boxDrawn`` with the box's whole pixels; the dashed box stays on screen until the next one."""
        if self._box_start is None:
            return False
        rect = QRectF(self._box_start, self._inside_image(scene)).normalized()
        self._box_start = None
        self.box_item.setRect(rect)
        top, left = math.floor(rect.top()), math.floor(rect.left())
        bottom, right = math.ceil(rect.bottom()), math.ceil(rect.right())
        if bottom - top >= 2 and right - left >= 2:
            self.boxDrawn.emit(top, left, bottom, right)
        else:
            self.box_item.setVisible(False)
        return True

    def _assist_click(self, scene: QPointF, *, add: bool) -> None:
        height, width = self._image_size()
        col, row = math.floor(scene.x()), math.floor(scene.y())
        if 0 <= row < height and 0 <= col < width:
            self.assistClicked.emit(row, col, add)

    # -- interaction state -----------------------------------------------------------------------------------------
    def _cancel_interaction(self) -> None:
        """Abandon a stroke, vertex drag or calibration line in progress, leaving the document untouched."""
        if self._stroke is not None:
            self._stroke = None
            self._overlay_dirty = True
            self._refresh()
        if self._vertices.drag is not None:
            self._vertices.drag = None
            self._show_polygons()
        if self._calibration_start is not None:
            self._calibration_start = None
            self.calibration_item.setVisible(False)
        if self._box_start is not None:
            self._box_start = None
            self.box_item.setVisible(False)
        self._pan_last = None

    def _interacting(self) -> bool:
        return (
            self._stroke is not None
            or self._vertices.drag is not None
            or self._calibration_start is not None
            or self._box_start is not None
        )

    # -- Qt events -----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos, button = event.position(), event.button()
        if button == Qt.MouseButton.MiddleButton:
            self._pan_last = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        behaviour = self._behaviour
        if behaviour.pans or self._document.image is None or self._interacting():
            super().mousePressEvent(event)
            return
        handler = {Qt.MouseButton.LeftButton: behaviour.press, Qt.MouseButton.RightButton: behaviour.right_press}
        if handler.get(button) is not None:
            handler[button](self, event)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        scene = self._scene_at(pos)
        self._mouse_scene = scene
        self.cursor_item.setPos(scene)
        self.cursor_item.setVisible(self._behaviour.brush_cursor)
        self._emit_cursor(scene)
        if self._pan_last is not None:
            delta = pos - self._pan_last
            self._pan_last = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif not (self._behaviour.move is not None and self._behaviour.move(self, event)):
            super().mouseMoveEvent(event)
            return
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        button, release = event.button(), self._behaviour.release
        if button == Qt.MouseButton.MiddleButton and self._pan_last is not None:
            self._pan_last = None
            self._apply_tool_mode()
        elif not (button == Qt.MouseButton.LeftButton and release is not None and release(self, event)):
            super().mouseReleaseEvent(event)
            return
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        handler = self._behaviour.double_click
        if handler is not None and event.button() == Qt.MouseButton.LeftButton:
            handler(self, event)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if self._behaviour.owns_context_menu:
            event.accept()  # the right button edits here; no window menu on top of that
        else:
            super().contextMenuEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            event.ignore()
            return
        notches = delta / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and self._behaviour.brush_cursor:
            self.step_brush(1 if delta > 0 else -1)
        else:
            self._set_scale(self.zoom * WHEEL_NOTCH_FACTOR**notches, event.position())
        event.accept()

    def _emit_cursor(self, scene: QPointF) -> None:
        height, width = self._image_size()
        x, y = math.floor(scene.x()), math.floor(scene.y())
        if 0 <= x < width and 0 <= y < height and (x, y) != self._last_pixel:
            self._last_pixel = (x, y)
            self.cursorMoved.emit(x, y)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:  # the brush circle must not linger where the mouse left
            self._mouse_scene, self._last_pixel = None, None
            self.cursor_item.setVisible(False)
        return super().viewportEvent(event)

    def _radius_step(self) -> int:
        return max(1, round(self._radius / 8))

    def _owns_key(self, event: QEvent) -> bool:
        if not isinstance(event, QKeyEvent):
            return False
        if is_shortcut("brush_smaller", event) or is_shortcut("brush_larger", event):
            return True
        if is_shortcut("abandon_edit", event):
            return self._interacting()
        return is_shortcut("delete_vertex", event) and self._vertices.selected is not None

    def event(self, event: QEvent) -> bool:
        # Win the key from window shortcuts only while it means something here (Esc also cancels segmentation).
        if event.type() == QEvent.Type.ShortcutOverride and self._owns_key(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._owns_key(event):
            super().keyPressEvent(event)
            return
        if is_shortcut("brush_smaller", event) or is_shortcut("brush_larger", event):
            self.step_brush(1 if is_shortcut("brush_larger", event) else -1)
        elif is_shortcut("abandon_edit", event):
            self._cancel_interaction()
        elif self._tool is Tool.VERTICES and self._vertices.selected is not None:
            self._delete_vertex(self._vertices.selected)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.zoom_to_fit()
