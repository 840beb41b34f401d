"""Reviewing a folder without friction (issue 15, items 5-10): undo per image, brush size on screen, export and
next, batch review, the restored-edits banner, preferences, shortcuts and About.

The model is the untrained tiny one (see conftest); these tests check where masks, files and messages go.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.main_window import MainWindow

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


def open_folder_at(window: MainWindow, folder: Path, qtbot) -> None:
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([folder])


def step(window: MainWindow, qtbot, direction: int = 1) -> None:
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.step_image(direction)


# -- 5. undo history per image ----------------------------------------------------------------------------------
def test_undo_history_survives_going_to_the_next_image_and_back(window: MainWindow, image_folder: Path, qtbot):
    open_folder_at(window, image_folder, qtbot)
    document, undo = window.document, window.named_actions["undo"]
    model_mask = document.mask.copy()
    document.paint(np.ones((6, 6), bool), (10, 10), not model_mask[12, 12], "Brush stroke")
    document.paint(np.ones((4, 4), bool), (30, 40), not model_mask[31, 41], "Eraser stroke")
    after_edits = document.mask.copy()

    step(window, qtbot, 1)
    assert document.path == image_folder / "lesion_1.png"
    assert document.undo_stack.count() == 0 and not undo.isEnabled()  # the other image has its own history
    assert document.paint(np.ones((3, 3), bool), (5, 5), not document.mask[6, 6], "Brush stroke")

    step(window, qtbot, -1)
    assert document.path == image_folder / "lesion_0.png"
    np.testing.assert_array_equal(document.mask, after_edits)
    assert document.undo_stack.count() == 2 and undo.isEnabled()
    assert undo.text().endswith("Eraser stroke")
    undo.trigger()
    undo.trigger()
    np.testing.assert_array_equal(document.mask, model_mask)
    assert not document.edited

    step(window, qtbot, 1)  # the second image kept its own single step
    assert document.undo_stack.count() == 1


def test_a_kept_history_is_dropped_when_the_mask_is_not_the_one_it_was_left_with(qtbot):
    from app.document import LesionDocument

    document = LesionDocument()
    image = np.zeros((20, 30, 3), np.uint8)
    document.open_image(Path("a.png"), image)
    document.restore(np.zeros((20, 30), bool), edited=False, threshold=0.5, cleanup=())
    document.paint(np.ones((4, 4), bool), (2, 2), True, "Brush stroke")
    document.open_image(Path("b.png"), image)
    assert document.has_history(Path("a.png"))
    document.open_image(Path("a.png"), image)
    document.restore(np.ones((20, 30), bool), edited=True, threshold=0.5, cleanup=())  # changed elsewhere
    assert document.undo_stack.count() == 0
