"""The editing maths behind the brush, eraser and vertex tools, without Qt: strokes, picking, vertex edits and how
an edit is rasterised into the mask. The GUI tests (tests/gui/test_canvas.py) drive the same code with the mouse."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.editing import (
    BrushStroke,
    EdgeRef,
    PixelBox,
    PolygonEdit,
    VertexEditor,
    VertexRef,
    display_tolerance,
    rasterise_edit,
    trace_holes,
    trace_polygons,
)
from segmentation.polygon import mask_to_polygons, polygons_to_mask

SQUARE = np.array([[20.0, 20.0], [60.0, 20.0], [60.0, 60.0], [20.0, 60.0]])  # (x, y), clockwise on screen


def square_mask(shape: tuple[int, int] = (80, 100)) -> np.ndarray:
    return polygons_to_mask([SQUARE], shape)


def editor(*polygons: np.ndarray) -> VertexEditor:
    vertices = VertexEditor()
    vertices.polygons = [p.copy() for p in polygons]
    return vertices


# -- brush strokes -----------------------------------------------------------------------------------------------
def test_a_stroke_is_discs_joined_without_gaps() -> None:
    stroke = BrushStroke((50, 80), radius=3, value=True)
    box = stroke.add(10, 20)
    assert box == PixelBox(16, 6, 25, 15)
    stroke.add(60, 20)  # a fast drag: one mouse event 50 px further
    patch = stroke.result()
    assert patch is not None
    footprint = np.zeros((50, 80), bool)
    rows, cols = patch.values.shape
    footprint[patch.top : patch.top + rows, patch.left : patch.left + cols] = patch.values
    assert footprint[20, 10:61].all()  # the whole line between the two positions
    assert footprint[17, 35] and footprint[23, 35] and not footprint[25, 35]  # as thick as the disc
    assert not footprint[20, 65] and not footprint[20, 5]
    assert np.array_equal(stroke.region(PixelBox(15, 0, 26, 80)), footprint[15:26])


def test_a_stroke_outside_the_image_touches_nothing() -> None:
    stroke = BrushStroke((50, 80), radius=2, value=False)
    assert stroke.add(-30, -30) is None
    assert stroke.extent() is None and stroke.result() is None
    box = stroke.add(-1, 10)  # a disc half inside: clipped at the image edge
    assert box is not None and box.left == 0
    patch = stroke.result()
    assert patch is not None and patch.left == 0 and patch.values[:, 0].any()
    assert stroke.extent() == PixelBox(stroke.top, 0, stroke.top + stroke.patch.shape[0], stroke.patch.shape[1])


# -- picking and vertex edits --------------------------------------------------------------------------------------
def test_pick_vertex_and_edge() -> None:
    vertices = editor(SQUARE, SQUARE + 100)
    assert vertices.pick_vertex(61, 58, 3.0) == VertexRef(0, 2)
    assert vertices.pick_vertex(158, 161, 3.0) == VertexRef(1, 2)
    assert vertices.pick_vertex(40, 40, 3.0) is None
    assert vertices.pick_edge(40, 61, 2.0) == EdgeRef(0, 2)  # bottom edge: vertex 2 -> 3
    assert vertices.pick_edge(19, 40, 2.0) == EdgeRef(0, 3)  # left edge closes the polygon: 3 -> 0
    assert vertices.pick_edge(40, 40, 2.0) is None


def test_insert_and_delete_give_edits_with_their_chains() -> None:
    vertices = editor(SQUARE)
    edit = vertices.insert(EdgeRef(0, 2), np.array([40.0, 70.0]))
    assert edit.polygon == 0 and len(edit.new) == 5 and vertices.selected == VertexRef(0, 3)
    assert np.array_equal(edit.old_chain, SQUARE[[2, 3]])
    assert np.array_equal(edit.new_chain, [[60, 60], [40, 70], [20, 60]])

    vertices.polygons = [edit.new]
    removed = vertices.delete(VertexRef(0, 3))
    assert removed is not None and np.array_equal(removed.new, SQUARE) and vertices.selected is None
    assert np.array_equal(removed.new_chain, SQUARE[[2, 3]])


def test_a_triangle_keeps_its_vertices() -> None:
    assert editor(SQUARE[:3]).delete(VertexRef(0, 1)) is None  # removing a lesion is the eraser's job


def test_drag_moves_one_vertex_and_reports_one_edit() -> None:
    vertices = editor(SQUARE, SQUARE + 100)
    vertices.begin_drag(VertexRef(0, 1))
    moved = vertices.drag_to(np.array([70.0, 15.0]))
    assert np.array_equal(moved[1], [70, 15]) and np.array_equal(vertices.polygons[0], SQUARE)  # original kept
    assert np.array_equal(vertices.dragged_polygons()[0][1], [70, 15])
    edit = vertices.end_drag()
    assert isinstance(edit, PolygonEdit) and vertices.drag is None
    assert np.array_equal(edit.old_chain, SQUARE[[0, 1, 2]])
    assert np.array_equal(edit.new_chain, [[20, 20], [70, 15], [60, 60]])

    vertices.begin_drag(VertexRef(1, 0))
    vertices.drag_to(SQUARE[0] + 100)  # dropped where it started
    assert vertices.end_drag() is None
    assert vertices.end_drag() is None  # no drag at all


# -- rasterising an edit -------------------------------------------------------------------------------------------
def test_a_dragged_corner_changes_only_the_mask_near_it() -> None:
    mask = square_mask()
    mask[30:35, 30:35] = False  # a hole far from the edit stays
    vertices = editor(SQUARE)
    vertices.begin_drag(VertexRef(0, 2))
    vertices.drag_to(np.array([75.0, 70.0]))
    new_mask = rasterise_edit(mask, vertices.end_drag(), tolerance=1.0)
    assert new_mask is not None and not mask[68, 72] and new_mask[68, 72]  # followed the corner out
    assert not new_mask[30:35, 30:35].any()
    assert np.array_equal(new_mask[:55, :55], mask[:55, :55])  # away from the edited edges nothing changed
    assert not (mask & ~new_mask).any()  # dragged outwards: the lesion only grows


def test_moving_a_vertex_inwards_leaves_no_sliver_of_the_old_boundary() -> None:
    yy, xx = np.mgrid[0:120, 0:120]
    mask = np.hypot(xx - 60, yy - 60) <= 40  # a disc: its simplified polygon cuts inside the real boundary
    polygon = trace_polygons(mask, 3.0)[0]
    right = int(np.argmax(polygon[:, 0]))
    x, y = polygon[right]
    vertices = editor(polygon)
    vertices.begin_drag(VertexRef(0, right))
    vertices.drag_to(np.array([x - 8, y]))
    edit = vertices.end_drag()
    new_mask = rasterise_edit(mask, edit, tolerance=3.0)
    assert new_mask is not None
    (x0, y0), (x1, y1) = edit.old_chain.min(axis=0).astype(int), edit.old_chain.max(axis=0).astype(int)
    along = np.s_[y0 : y1 + 1, x0 - 10 : x1 + 5]  # the edited edges, where the real boundary bulged past the polygon
    assert np.array_equal(new_mask[along], polygons_to_mask([edit.new], mask.shape)[along])


def test_an_edit_that_changes_no_pixel_gives_none() -> None:
    mask = square_mask()
    edit = PolygonEdit(0, SQUARE, SQUARE.copy(), SQUARE[[0, 1, 2]], SQUARE[[0, 1, 2]])
    assert rasterise_edit(mask, edit, tolerance=1.0) is None


# -- tracing for display --------------------------------------------------------------------------------------------
def test_traced_polygons_match_a_trace_of_the_whole_mask() -> None:
    mask = np.zeros((300, 400), bool)
    mask[120:180, 250:330] = True
    mask[20:40, 30:45] = True
    traced = trace_polygons(mask, 1.0)
    expected = mask_to_polygons(mask, tolerance_px=1.0)
    assert len(traced) == 2 and all(np.array_equal(a, b) for a, b in zip(traced, expected, strict=True))
    assert trace_polygons(None, 1.0) == [] and trace_polygons(np.zeros((5, 5), bool), 1.0) == []


def test_holes_are_traced_through_the_lesion_pixels_around_them() -> None:
    mask = np.zeros((48, 64), bool)
    mask[5:43, 5:59] = True
    mask[18:30, 24:40] = False
    (hole,) = trace_holes(mask, 1.0)
    assert (hole[:, 0].min(), hole[:, 0].max(), hole[:, 1].min(), hole[:, 1].max()) == (23, 40, 17, 30)
    mask[18:30, 24:40] = True
    assert trace_holes(mask, 1.0) == [] and trace_holes(None, 1.0) == []


@pytest.mark.parametrize(("shape", "tolerance"), [((120, 160), 1.0), ((4000, 6000), 8.0), ((6000, 4000, 3), 8.0)])
def test_display_tolerance_follows_the_shorter_side(shape: tuple[int, ...], tolerance: float) -> None:
    assert display_tolerance(shape) == tolerance
