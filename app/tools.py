"""What each canvas tool does with the mouse: one table entry per tool, one handler per event (napari's
``_drag_modes`` idea), instead of an if-chain per event in the view.

A handler gets the canvas and the Qt mouse event. ``press`` (left button) and ``right_press`` start an
interaction; ``move`` and ``release`` return True when they handled the event (an interaction of this tool was in
progress), False to let the view do its default. The canvas keeps the state (stroke, drag, line, box); the
handlers only route the gesture to the canvas's methods, so adding a tool is adding an entry here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent

from segmentation.editing import PolygonEdit, VertexRef


class ToolCanvas(Protocol):
    """What the handlers use of the canvas (``app.canvas.LesionCanvas``), so this table needs no import of the view
    that uses it (no import circle, type-checking imports included)."""

    _stroke: Any
    _vertices: Any
    handles_item: Any
    boundary_item: Any

    def _scene_at(self, pos: QPointF) -> QPointF: ...
    def _clamped_image_point(self, pos: QPointF) -> np.ndarray: ...
    def _begin_stroke(self, scene: QPointF) -> None: ...
    def _stroke_to(self, scene: QPointF) -> None: ...
    def _end_stroke(self) -> None: ...
    def _ensure_polygons(self) -> None: ...
    def _pick_vertex(self, pos: QPointF) -> VertexRef | None: ...
    def _delete_vertex(self, hit: VertexRef) -> None: ...
    def _insert_vertex(self, pos: QPointF) -> None: ...
    def _commit(self, edit: PolygonEdit | None, text: str, *, keep_unchanged: bool) -> None: ...
    def _begin_line(self, scene: QPointF) -> None: ...
    def _line_to(self, scene: QPointF) -> bool: ...
    def _end_line(self) -> bool: ...
    def _begin_box(self, scene: QPointF) -> None: ...
    def _box_to(self, scene: QPointF) -> bool: ...
    def _end_box(self, scene: QPointF) -> bool: ...
    def _assist_click(self, scene: QPointF, *, add: bool) -> None: ...


Handler = Callable[[ToolCanvas, QMouseEvent], object]


class Tool(enum.Enum):
    """What a left-button gesture on the canvas does."""

    NAVIGATE = "navigate"
    BRUSH = "brush"
    ERASER = "eraser"
    VERTICES = "vertices"
    CALIBRATE = "calibrate"
    ASSIST = "assist"  # click: add the model's "almost lesion"; Shift+click or right click: remove the unsure part
    BOX = "box"  # drag a box: the model segments that crop again


@dataclass(frozen=True)
class ToolBehaviour:
    """One tool: its cursor and its handlers (None: the event does nothing in this tool)."""

    cursor: Qt.CursorShape
    press: Handler | None = None
    right_press: Handler | None = None
    move: Handler | None = None
    release: Handler | None = None
    double_click: Handler | None = None
    pans: bool = False  # a left drag pans the view (Qt's scroll-hand drag)
    brush_cursor: bool = False  # shows the brush circle; Ctrl + wheel sizes it
    owns_context_menu: bool = False  # the right button edits: no window menu
    uses_assist_panel: bool = False  # the assist settings panel is shown while this tool is active
    hint: str = ""  # said in the status bar when the tool is chosen


# -- brush and eraser ----------------------------------------------------------------------------------------------
def _stroke_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._begin_stroke(canvas._scene_at(event.position()))


def _stroke_move(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    if canvas._stroke is None:
        return False
    canvas._stroke_to(canvas._scene_at(event.position()))
    return True


def _stroke_release(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    if canvas._stroke is None:
        return False
    canvas._stroke_to(canvas._scene_at(event.position()))
    canvas._end_stroke()
    return True


# -- vertices ------------------------------------------------------------------------------------------------------
def _vertex_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._ensure_polygons()
    hit = canvas._vertices.selected = canvas._pick_vertex(event.position())
    canvas.handles_item.set_selected(hit)
    if hit is not None:
        canvas._vertices.begin_drag(hit)


def _vertex_right_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._ensure_polygons()
    hit = canvas._pick_vertex(event.position())
    if hit is not None:
        canvas._delete_vertex(hit)


def _vertex_move(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    if canvas._vertices.drag is None:
        return False
    canvas.boundary_item.setPath(canvas._vertices.drag_path(canvas._clamped_image_point(event.position())))
    canvas.handles_item.set_polygons(canvas._vertices.dragged_polygons(), canvas._vertices.selected)
    return True


def _vertex_release(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    if canvas._vertices.drag is None:
        return False
    canvas._commit(canvas._vertices.end_drag(), "Move vertex", keep_unchanged=False)
    return True


def _vertex_double_click(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._ensure_polygons()
    canvas._insert_vertex(event.position())


# -- calibration line and re-segmentation box (both: press, drag, release) -------------------------------------------
def _calibration_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._begin_line(canvas._scene_at(event.position()))


def _calibration_move(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    return canvas._line_to(canvas._scene_at(event.position()))


def _calibration_release(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    return canvas._end_line()


def _box_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._begin_box(canvas._scene_at(event.position()))


def _box_move(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    return canvas._box_to(canvas._scene_at(event.position()))


def _box_release(canvas: ToolCanvas, event: QMouseEvent) -> bool:
    return canvas._end_box(canvas._scene_at(event.position()))


# -- assisted clicks ---------------------------------------------------------------------------------------------
def _assist_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    remove = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
    canvas._assist_click(canvas._scene_at(event.position()), add=not remove)


def _assist_right_press(canvas: ToolCanvas, event: QMouseEvent) -> None:
    canvas._assist_click(canvas._scene_at(event.position()), add=False)


CROSS = Qt.CursorShape.CrossCursor
TOOL_BEHAVIOURS: dict[Tool, ToolBehaviour] = {
    Tool.NAVIGATE: ToolBehaviour(Qt.CursorShape.OpenHandCursor, pans=True),
    Tool.BRUSH: ToolBehaviour(CROSS, _stroke_press, None, _stroke_move, _stroke_release, brush_cursor=True),
    Tool.ERASER: ToolBehaviour(CROSS, _stroke_press, None, _stroke_move, _stroke_release, brush_cursor=True),
    Tool.VERTICES: ToolBehaviour(
        Qt.CursorShape.ArrowCursor,
        _vertex_press,
        _vertex_right_press,
        _vertex_move,
        _vertex_release,
        _vertex_double_click,
        owns_context_menu=True,
    ),
    Tool.CALIBRATE: ToolBehaviour(
        CROSS,
        _calibration_press,
        None,
        _calibration_move,
        _calibration_release,
        hint="Draw a line along something of known length (a ruler in the photo).",
    ),
    Tool.ASSIST: ToolBehaviour(
        Qt.CursorShape.PointingHandCursor,
        _assist_press,
        _assist_right_press,
        owns_context_menu=True,
        uses_assist_panel=True,
        hint="Click adds what the model almost found; Shift+click (or right click) removes.",
    ),
    Tool.BOX: ToolBehaviour(
        CROSS,
        _box_press,
        None,
        _box_move,
        _box_release,
        uses_assist_panel=True,
        hint="Drag a box around the lesion: the model segments that crop again.",
    ),
}
