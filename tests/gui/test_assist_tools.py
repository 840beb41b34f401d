"""The Assist and Box tools in the main window, through real mouse events on the canvas's viewport.

The probability map is a known disc whose edge fades over 10 pixels (0.5 at radius 30, 0.2 at radius 33), so what a
click should add or remove is computed here independently of the code under test. The box runs the session's tiny
untrained model: its mask means nothing, but where it lands (inside the box only) and what it is (the model's
output on the box's crop) are checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.canvas import LesionCanvas, Tool
from app.main_window import MainWindow
from segmentation.assist import box_crop
from segmentation.lesion import LesionSegmentation
from segmentation.provenance import ModelIdentity
from tests.assist_helpers import edge_disc, expected_region
from tests.gui.conftest import WAIT_MS

pytestmark = pytest.mark.gui

HEIGHT, WIDTH = 120, 160
CENTRE, RADIUS = (80.0, 60.0), 30.0


def disc_probability() -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    distance = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    return np.clip(0.5 + (RADIUS - distance) / 10, 0.0, 1.0).astype(np.float32)


def view_pos(canvas: LesionCanvas, x: float, y: float) -> QPoint:
    return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


@pytest.fixture(autouse=True)
def _torch_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch directly: no ONNX export and timing at model load (tests/test_backends.py covers that), so the
    window is ready in time on two busy cores."""
    monkeypatch.setenv("LESIONLENS_BACKEND", "torch")


@pytest.fixture
def assisted(window: MainWindow, tmp_path: Path, rgb_image, open_segmented) -> MainWindow:
    path = tmp_path / "lesion.png"
    Image.fromarray(rgb_image(HEIGHT, WIDTH)).save(path)
    open_segmented(window, path)
    window.document.set_segmentation(LesionSegmentation(disc_probability(), model=ModelIdentity("disc")))
    window.canvas.zoom_to_fit()
    return window


def test_click_adds_the_region_the_map_predicts_and_undo_restores(assisted: MainWindow) -> None:
    window, document = assisted, assisted.document
    window.named_actions["tool_assist"].trigger()
    assert window.canvas.tool is Tool.ASSIST and window.assist_panel.isVisible()
    assert window.assist_panel.add_threshold.value() == pytest.approx(0.2)  # the threshold in use is shown
    before = document.mask.copy()
    row, col = 60, 80 + 32  # radius 32: probability 0.3, under the mask's 0.5, over the click's 0.2
    QTest.mouseClick(
        window.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view_pos(window.canvas, col, row),
    )
    radius = window.assist.settings.reach_px(before.shape)
    model_region = expected_region(~before & (disc_probability() >= 0.2), row, col, radius)
    added = model_region | (edge_disc(before, row, col, radius, radius) & ~before)
    assert model_region.sum() > 50
    np.testing.assert_array_equal(document.mask, before | added)
    assert document.undo_stack.count() == 1 and document.edited
    document.undo_stack.undo()
    np.testing.assert_array_equal(document.mask, before)


def test_shift_click_removes_the_unsure_part_and_the_threshold_is_adjustable(assisted: MainWindow) -> None:
    window, document = assisted, assisted.document
    window.named_actions["tool_assist"].trigger()
    window.assist_panel.remove_threshold.setValue(0.7)  # the clinician raises the bar: the rim under 0.7 goes
    assert window.assist.settings.remove_threshold == pytest.approx(0.7)
    before = document.mask.copy()
    row, col = 60, 80 - 29  # radius 29: probability 0.6, in the mask but under 0.7
    QTest.mouseClick(
        window.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
        view_pos(window.canvas, col, row),
    )
    radius = window.assist.settings.reach_px(before.shape)
    model_region = expected_region(before & (disc_probability() < 0.7), row, col, radius)
    removed = model_region | (edge_disc(~before, row, col, radius, radius) & before)
    assert model_region.sum() > 20
    np.testing.assert_array_equal(document.mask, before & ~removed)
    assert document.mask.sum() > 0.8 * before.sum()
    document.undo_stack.undo()
    np.testing.assert_array_equal(document.mask, before)


def test_box_resegments_only_inside_it_and_undo_restores(assisted: MainWindow, qtbot) -> None:
    window, document, canvas = assisted, assisted.document, assisted.canvas
    window.named_actions["tool_box"].trigger()
    before = document.mask.copy()
    viewport = canvas.viewport()
    with qtbot.waitSignal(canvas.boxDrawn, timeout=WAIT_MS) as drawn:
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 30, 20))
        QTest.mouseMove(viewport, view_pos(canvas, 70, 60))
        with qtbot.waitSignal(window.assist.runner.finished, timeout=WAIT_MS):
            QTest.mouseRelease(
                viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(canvas, 110, 90)
            )
    top, left, bottom, right = drawn.args
    assert abs(top - 20) <= 1 and abs(left - 30) <= 1 and abs(bottom - 91) <= 1 and abs(right - 111) <= 1
    predictor = window.predictor
    h, w = predictor.info.preprocessing.input_size
    c_top, c_left, c_bottom, c_right = box_crop(before.shape, drawn.args, window.assist.settings.box_margin, w / h)
    crop_probability = predictor.predict_probability(document.image[c_top:c_bottom, c_left:c_right])
    inside = crop_probability[top - c_top : bottom - c_top, left - c_left : right - c_left] >= document.threshold
    outside = np.ones_like(before)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(document.mask[outside], before[outside])
    np.testing.assert_array_equal(document.mask[top:bottom, left:right], inside)
    assert document.undo_stack.count() == 1
    window_rows, window_cols = slice(top, bottom), slice(left, right)
    box_look = crop_probability[top - c_top : bottom - c_top, left - c_left : right - c_left]
    np.testing.assert_array_equal(window.assist.probability()[window_rows, window_cols], box_look)  # clicks follow it
    document.undo_stack.undo()
    np.testing.assert_array_equal(document.mask, before)
    base = document.segmentation.probability[window_rows, window_cols]
    np.testing.assert_array_equal(window.assist.probability()[window_rows, window_cols], base)  # undone: gone too


def test_box_outside_cleared_when_chosen(assisted: MainWindow, qtbot) -> None:
    window, document = assisted, assisted.document
    window.named_actions["tool_box"].trigger()
    window.assist_panel.keep_outside.setChecked(False)
    with qtbot.waitSignal(window.assist.runner.finished, timeout=WAIT_MS):
        window.canvas.boxDrawn.emit(40, 60, 80, 100)
    assert not document.mask[:40].any() and not document.mask[:, :60].any() and not document.mask[80:].any()


def test_esc_cancels_the_box(assisted: MainWindow, qtbot) -> None:
    window, document = assisted, assisted.document
    before = document.mask.copy()
    assert window.assist.resegment(10, 10, 100, 150)
    assert window.named_actions["cancel"].isEnabled()
    with qtbot.waitSignal(window.assist.runner.cancelled, timeout=1000):
        window.named_actions["cancel"].trigger()  # Esc
    window.pools["model"].waitForDone(WAIT_MS)
    qtbot.wait(50)
    np.testing.assert_array_equal(document.mask, before)
    assert document.undo_stack.count() == 0


def test_tools_are_listed_in_f1(window: MainWindow) -> None:
    dialog = window.show_shortcuts()
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert rows["Assist: click adds what the model almost found (Shift+click removes)"] == "A"
    assert rows["Box: drag a box, the model segments it again"] == "R"
