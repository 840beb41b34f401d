"""LesionCanvas: editing through real mouse and key events on the viewport, zoom, peek, styles, calibration.

Small images (120x160) keep every test fast; edits are checked on the document's mask and undo stack, since the
canvas must never hold mask state of its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.canvas import PICK_EDGE_PX, LesionCanvas, Tool
from app.document import LesionDocument
from segmentation.editing import VertexRef
from segmentation.export import OverlayStyle
from segmentation.lesion import LesionSegmentation
from segmentation.provenance import ModelIdentity

pytestmark = pytest.mark.gui

HEIGHT, WIDTH = 120, 160
CENTRE, RADIUS = (80.0, 60.0), 30.0  # the lesion disc: (x, y) and radius in pixels


def disc_probability(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    return np.clip(0.5 + (RADIUS - distance) / 10, 0.0, 1.0).astype(np.float32)


@pytest.fixture
def document() -> LesionDocument:
    rng = np.random.default_rng(0)
    image = rng.integers(90, 200, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    doc = LesionDocument()
    doc.open_image(Path("lesion.png"), image)
    doc.set_segmentation(LesionSegmentation(disc_probability(), model=ModelIdentity("test")))
    return doc


@pytest.fixture
def canvas(qtbot, document: LesionDocument) -> LesionCanvas:
    view = LesionCanvas(document)
    qtbot.addWidget(view)
    view.resize(680, 520)
    view.show()
    qtbot.waitExposed(view)
    view.zoom_to_fit()
    return view


def view_pos(canvas: LesionCanvas, x: float, y: float) -> QPoint:
    """Viewport position of image point (x, y) (pixel-centre coordinates)."""
    return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def drag(canvas: LesionCanvas, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    viewport = canvas.viewport()
    positions = [view_pos(canvas, x, y) for x, y in points]
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, positions[0])
    for pos in positions[1:]:
        QTest.mouseMove(viewport, pos)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, positions[-1])


def click(canvas: LesionCanvas, x: float, y: float, button=Qt.MouseButton.LeftButton, *, double=False) -> None:
    send = QTest.mouseDClick if double else QTest.mouseClick
    send(canvas.viewport(), button, Qt.KeyboardModifier.NoModifier, view_pos(canvas, x, y))


def vertex_count(canvas: LesionCanvas) -> int:
    return sum(len(p) for p in canvas.polygons)


def test_brush_stroke_paints_and_is_one_undo_step(canvas: LesionCanvas, document: LesionDocument) -> None:
    before = document.mask.copy()
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(4)
    drag(canvas, [(15, 15), (25, 16), (35, 18), (45, 20)])
    after = document.mask.copy()
    assert after[16, 25] and after[20, 45] and not before[16, 25]
    assert after[before].all()  # a brush only adds
    assert not after[60:, :10].any()  # nothing far from the stroke
    assert document.undo_stack.count() == 1
    assert document.undo_stack.undoText() == "Brush stroke"
    assert np.array_equal(canvas.overlay_item.buffer != 0, after)  # the previewed overlay is the mask
    document.undo_stack.undo()
    assert np.array_equal(document.mask, before)
    assert np.array_equal(canvas.overlay_item.buffer != 0, before)
    document.undo_stack.redo()
    assert np.array_equal(document.mask, after)


def test_brush_preview_shows_while_dragging(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(3)
    viewport = canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 10, 100))
    QTest.mouseMove(viewport, view_pos(canvas, 20, 100))
    assert canvas.overlay_item.buffer[100, 15] != 0  # previewed in the overlay...
    assert not document.mask[100, 15]  # ...but the document is untouched until release
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 20, 100))
    assert document.mask[100, 15]


def test_escape_abandons_a_stroke(canvas: LesionCanvas, document: LesionDocument) -> None:
    before = document.mask.copy()
    canvas.set_tool(Tool.BRUSH)
    viewport = canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 10, 10))
    QTest.mouseMove(viewport, view_pos(canvas, 30, 10))
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 30, 10))
    assert np.array_equal(document.mask, before) and document.undo_stack.count() == 0
    assert np.array_equal(canvas.overlay_item.buffer != 0, before)  # the preview is gone too


def test_eraser_removes_lesion(canvas: LesionCanvas, document: LesionDocument) -> None:
    before = document.mask.copy()
    canvas.set_tool(Tool.ERASER)
    canvas.set_brush_radius(5)
    drag(canvas, [(70, 60), (90, 60)])
    assert before[60, 80] and not document.mask[60, 80]
    assert not (document.mask & ~before).any()  # an eraser only removes
    assert document.undo_stack.count() == 1
    assert document.undo_stack.undoText() == "Eraser stroke"


def test_painting_outside_the_image_is_clipped(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.zoom_by(0.5)  # leave room around the image
    canvas.set_tool(Tool.BRUSH)
    before = document.mask.copy()
    drag(canvas, [(-40, -30), (-20, -25)])  # entirely outside: nothing to do
    assert np.array_equal(document.mask, before) and document.undo_stack.count() == 0
    drag(canvas, [(-20, 110), (10, 110)])  # enters the image: the inside part is painted
    assert document.mask[110, 5] and document.undo_stack.count() == 1


def test_brush_size_keys_and_cursor_circle(canvas: LesionCanvas) -> None:
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(10)
    QTest.mouseMove(canvas.viewport(), view_pos(canvas, 30, 30))
    assert canvas.cursor_item.isVisible()
    width = canvas.cursor_item.rect().width()
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_radius > 10 and canvas.cursor_item.rect().width() > width
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_radius < 10
    assert canvas.cursor_item.rect().width() == pytest.approx(2 * canvas.brush_image_radius + 1)
    canvas.set_brush_radius(10_000)
    assert canvas.brush_radius == 500
    canvas.set_brush_radius(0)
    assert canvas.brush_radius == 1


def test_vertex_drag_changes_mask_and_undoes_exactly(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.set_tool(Tool.VERTICES)
    assert canvas.handles_item.isVisible()
    before = document.mask.copy()
    polygon = canvas.polygons[0]
    x, y = polygon[np.argmax(polygon[:, 0])]  # the rightmost vertex
    viewport = canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, x, y))
    QTest.mouseMove(viewport, view_pos(canvas, x + 6, y))
    QTest.mouseMove(viewport, view_pos(canvas, x + 12, y))
    assert canvas.boundary_item.path().boundingRect().right() == pytest.approx(x + 12.5, abs=0.5)  # live preview
    assert np.array_equal(document.mask, before)  # nothing committed yet
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, x + 12, y))
    assert document.mask[int(y), int(x) + 8]  # the boundary followed the vertex out
    assert not document.mask[:, :40].any()  # far away nothing changed
    assert document.undo_stack.count() == 1 and document.undo_stack.undoText() == "Move vertex"
    assert canvas.polygons[0][:, 0].max() == pytest.approx(x + 12, abs=0.5)
    document.undo_stack.undo()
    assert np.array_equal(document.mask, before)


def test_insert_and_delete_vertex(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.set_tool(Tool.VERTICES)
    canvas.zoom_by(2.0)
    polygon = canvas.polygons[0]
    count, before = vertex_count(canvas), document.mask.copy()
    # Double-click just outside the middle of the longest edge.
    edges = np.roll(polygon, -1, axis=0) - polygon
    i = int(np.argmax(np.hypot(*edges.T)))
    middle = polygon[i] + edges[i] / 2
    outward = (middle - CENTRE) / np.linalg.norm(middle - CENTRE)
    x, y = middle + outward * 0.8 * PICK_EDGE_PX / canvas.zoom  # off the edge, but close enough to hit it
    click(canvas, x, y, double=True)
    assert vertex_count(canvas) == count + 1
    assert not np.array_equal(document.mask, before)
    assert document.undo_stack.undoText() == "Insert vertex"

    # Delete a vertex with a right-click...
    inserted = document.mask.copy()
    vx, vy = canvas.polygons[0][0]
    click(canvas, vx, vy, Qt.MouseButton.RightButton)
    assert vertex_count(canvas) == count
    assert not np.array_equal(document.mask, inserted)
    assert document.undo_stack.undoText() == "Delete vertex"

    # ...and by selecting one and pressing Delete.
    vx, vy = canvas.polygons[0][3]
    click(canvas, vx, vy)
    assert canvas.selected_vertex == VertexRef(0, 3)
    QTest.keyClick(canvas, Qt.Key.Key_Delete)
    assert vertex_count(canvas) == count - 1
    assert document.undo_stack.count() == 3
    for _ in range(3):
        document.undo_stack.undo()
    assert np.array_equal(document.mask, before)
    assert vertex_count(canvas) == count  # handles re-traced from the restored mask


def test_triangle_keeps_its_vertices(qtbot) -> None:
    doc = LesionDocument()
    doc.open_image(Path("t.png"), np.zeros((60, 60, 3), np.uint8))
    mask = np.zeros((60, 60), bool)
    for row in range(10, 50):
        mask[row, 10 : 10 + (row - 10)] = True  # a right triangle
    doc.restore(mask, edited=True, threshold=0.5, cleanup=())
    view = LesionCanvas(doc)
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    view.set_tool(Tool.VERTICES)
    polygons = view.polygons
    assert len(polygons) == 1 and len(polygons[0]) == 3
    x, y = polygons[0][0]
    click(view, x, y, Qt.MouseButton.RightButton)
    assert len(view.polygons[0]) == 3 and doc.undo_stack.count() == 0


def test_zoom(canvas: LesionCanvas) -> None:
    scales: list[float] = []
    canvas.zoomChanged.connect(scales.append)
    canvas.zoom_actual_size()
    assert canvas.transform().m11() == 1.0 and scales[-1] == 1.0
    canvas.zoom_to_fit()
    viewport = canvas.viewport().rect()
    expected = min(viewport.width() / WIDTH, viewport.height() / HEIGHT)
    assert canvas.transform().m11() == pytest.approx(expected, rel=0.03)
    assert canvas.transform().m11() == canvas.transform().m22()  # aspect kept
    canvas.zoom_by(1000)
    assert canvas.zoom == 64.0
    canvas.zoom_by(1e-6)
    assert canvas.zoom == pytest.approx(1 / 64)


def test_wheel_zooms_about_the_cursor(canvas: LesionCanvas) -> None:
    canvas.zoom_actual_size()
    canvas.zoom_by(4)
    anchor = view_pos(canvas, 70, 50)
    before = canvas.mapToScene(anchor)
    scale = canvas.zoom
    # QTest has no wheel helper; send the event the way Qt would.
    from PySide6.QtGui import QWheelEvent

    event = QWheelEvent(
        QPointF(anchor),
        QPointF(canvas.viewport().mapToGlobal(anchor)),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    canvas.wheelEvent(event)
    assert canvas.zoom > scale
    after = canvas.mapToScene(anchor)
    assert abs(after.x() - before.x()) < 1 and abs(after.y() - before.y()) < 1


def test_panning(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.zoom_actual_size()
    canvas.zoom_by(8)
    bars = canvas.horizontalScrollBar(), canvas.verticalScrollBar()
    start = [bar.value() for bar in bars]
    drag(canvas, [(80, 60), (75, 57), (70, 55)])  # NAVIGATE: the left button pans
    moved = [bar.value() for bar in bars]
    assert moved[0] > start[0] and moved[1] > start[1]
    canvas.set_tool(Tool.BRUSH)
    drag(canvas, [(70, 55), (65, 52), (60, 50)], Qt.MouseButton.MiddleButton)  # any tool: the middle button pans
    assert [bar.value() for bar in bars] != moved
    assert document.undo_stack.count() == 0


def test_peek_hides_overlay_and_boundary(canvas: LesionCanvas) -> None:
    assert canvas.overlay_item.isVisible() and canvas.boundary_item.isVisible()
    canvas.set_peek(True)
    assert not canvas.overlay_item.isVisible() and not canvas.boundary_item.isVisible()
    canvas.set_peek(False)
    assert canvas.overlay_item.isVisible() and canvas.boundary_item.isVisible()
    canvas.set_tool(Tool.VERTICES)
    canvas.set_peek(True)
    assert not canvas.handles_item.isVisible()
    x, y = canvas.polygons[0][0]
    drag(canvas, [(x, y), (x + 10, y + 10)])  # vertices that are not shown cannot be dragged
    assert canvas.document.undo_stack.count() == 0


def test_overlay_style(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.set_overlay_style(OverlayStyle(fill=False))
    assert not canvas.overlay_item.isVisible() and canvas.boundary_item.isVisible()
    canvas.set_overlay_style(OverlayStyle(boundary=False))
    assert canvas.overlay_item.isVisible() and not canvas.boundary_item.isVisible()
    canvas.set_overlay_style(OverlayStyle(colour=(255, 0, 0), opacity=1.0))
    assert canvas.overlay_item.buffer[60, 80] == 0xFFFF0000  # opaque red, premultiplied ARGB
    assert canvas.overlay_item.buffer[0, 0] == 0
    assert canvas.boundary_item.pen().color().red() == 255
    canvas.set_overlay_style(OverlayStyle(opacity=0.5, fill=True, boundary=True))
    assert canvas.overlay_item.buffer[60, 80] == (128 << 24) | (128 << 8)


def test_mask_changes_rebuild_the_overlay(canvas: LesionCanvas, document: LesionDocument) -> None:
    document.set_threshold(0.9)
    assert np.array_equal(canvas.overlay_item.buffer != 0, document.mask)
    document.open_image(Path("other.png"), np.zeros((50, 70, 3), np.uint8))
    assert not canvas.overlay_item.isVisible() and canvas.polygons == []
    assert canvas.scene().sceneRect().width() == 70


def test_calibration_line(canvas: LesionCanvas, qtbot) -> None:
    canvas.set_tool(Tool.CALIBRATE)
    with qtbot.waitSignal(canvas.calibrationLineDrawn, timeout=1000) as blocker:
        drag(canvas, [(10, 10), (40, 50), (70, 90)])
    assert blocker.args[0] == pytest.approx(100.0, abs=1.0)
    assert canvas.calibration_item.isVisible()
    canvas.set_tool(Tool.NAVIGATE)
    assert not canvas.calibration_item.isVisible()


def test_cursor_reports_image_pixel(canvas: LesionCanvas, qtbot) -> None:
    with qtbot.waitSignal(canvas.cursorMoved, timeout=1000) as blocker:
        QTest.mouseMove(canvas.viewport(), view_pos(canvas, 33, 44))
    assert blocker.args == [33, 44]


def test_navigate_does_not_edit(canvas: LesionCanvas, document: LesionDocument) -> None:
    canvas.set_tool(Tool.NAVIGATE)
    drag(canvas, [(20, 20), (60, 60)])
    assert document.undo_stack.count() == 0


def test_brush_before_segmentation_creates_a_mask(qtbot) -> None:
    doc = LesionDocument()
    doc.open_image(Path("x.png"), np.zeros((40, 50, 3), np.uint8))
    view = LesionCanvas(doc)
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    view.set_tool(Tool.BRUSH)
    view.set_brush_radius(3)
    drag(view, [(20, 20), (25, 20)])
    assert doc.mask is not None and doc.mask[20, 22] and doc.undo_stack.count() == 1


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LESIONLENS_SLOW") != "1", reason="timing print; set LESIONLENS_SLOW=1")
def test_overlay_rebuild_time_large_mask(qtbot) -> None:
    from app.canvas_items import OverlayItem

    yy, xx = np.ogrid[:4000, :6000]
    mask = (yy - 2000) ** 2 + (xx - 3000) ** 2 < 1500**2
    item = OverlayItem()
    item.rebuild(mask, (0, 255, 0), 0.35)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        item.rebuild(mask, (0, 255, 0), 0.35)
        runs.append(time.perf_counter() - start)
    print(f"\noverlay rebuild 6000x4000: best {min(runs) * 1000:.1f} ms, median {sorted(runs)[2] * 1000:.1f} ms")
