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


# -- 6. brush size in screen pixels; [ and ] from any widget -------------------------------------------------------
def dot_width_on_screen(window: MainWindow, qtbot) -> float:
    """Paint one dab at the image centre on an empty mask; its width in image pixels times the zoom."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    document, canvas = window.document, window.canvas
    document.replace_mask(np.zeros((48, 64), bool), "clear", edited_after=False)
    point = canvas.mapFromScene(QPointF(32.5, 24.5))
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    columns = np.flatnonzero(document.mask.any(axis=0))
    return (columns[-1] - columns[0] + 1) * canvas.zoom


def test_brush_size_is_in_screen_pixels_at_any_zoom(window: MainWindow, image_folder: Path, qtbot) -> None:
    from app.canvas import Tool

    open_folder_at(window, image_folder, qtbot)
    canvas = window.canvas
    window.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(8)
    canvas.zoom_actual_size()
    at_1 = dot_width_on_screen(window, qtbot)
    canvas.zoom_by(4.0)
    at_4 = dot_width_on_screen(window, qtbot)
    assert canvas.brush_radius == 8 and canvas.brush_image_radius == 2
    assert 14 <= at_1 <= 20 and 14 <= at_4 <= 24, (at_1, at_4)  # the same dab on the screen (17 px wide)
    circle = canvas.cursor_item.rect().width() * canvas.zoom
    assert abs(circle - at_4) <= 1e-6  # the circle shows exactly what a dab paints
    assert window.settings.brush_screen_radius == 8  # remembered as screen pixels, for every image


def test_bracket_keys_size_the_brush_whatever_widget_has_the_focus(window: MainWindow, image_folder: Path, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    open_folder_at(window, image_folder, qtbot)
    canvas = window.canvas
    canvas.set_brush_radius(16)
    for widget in (window.folder_panel.list, window.overlay_panel.threshold_slider, window.overlay_panel.fill_box):
        widget.setFocus()
        before = canvas.brush_radius
        QTest.keyClick(widget, Qt.Key.Key_BracketRight)
        assert canvas.brush_radius > before, widget
        QTest.keyClick(widget, Qt.Key.Key_BracketLeft)
        assert canvas.brush_radius == before, widget
    spin = window.calibration_box.spin  # typing in a number field stays typing
    spin.setFocus()
    QTest.keyClick(spin, Qt.Key.Key_BracketRight)
    assert canvas.brush_radius == 16


# -- 7. export folder per opened folder, export without a dialog, export and next -------------------------------
def test_export_folder_is_remembered_per_folder_and_export_and_next_moves_on(
    make_window, image_folder: Path, tmp_path: Path, qtbot, monkeypatch
) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    out, other_out = tmp_path / "exports", tmp_path / "other exports"
    out.mkdir()
    other_out.mkdir()
    asked: list[str] = []

    def choose(parent, title, start):
        asked.append(start)
        return str(out if len(asked) == 1 else other_out)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
    overwrites: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: overwrites.append(a[2]) or QMessageBox.Yes))
    window = make_window()
    open_folder_at(window, image_folder, qtbot)
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
        assert window.export()  # the first export of this folder asks
    assert len(asked) == 1 and (out / "lesion_0_segmentation.png").exists()
    assert str(out) in window.named_actions["export"].toolTip()

    step(window, qtbot, 1)
    exported, moved = window.exporter.exported, window.segmented  # export and next: no dialog, then the next image
    with qtbot.waitSignal(moved, timeout=WAIT_MS), qtbot.waitSignal(exported, timeout=WAIT_MS):
        window.named_actions["export_next"].trigger()
    assert len(asked) == 1 and (out / "lesion_1_segmentation.png").exists() and not overwrites
    assert window.document.path == image_folder / "lesion_2.png"
    assert window.named_actions["export_next"].shortcuts()
    window.close()

    again = make_window()  # remembered between runs, for this folder
    open_folder_at(again, image_folder, qtbot)
    with qtbot.waitSignal(again.exporter.exported, timeout=WAIT_MS):
        assert again.export()
    assert len(asked) == 1 and len(overwrites) == 1  # same folder as before: lesion_0's export is there already
    with qtbot.waitSignal(again.exporter.exported, timeout=WAIT_MS):  # Export to… chooses another folder
        assert again.export_to()
    assert len(asked) == 2 and asked[1] == str(out) and (other_out / "lesion_0_segmentation.png").exists()
    assert again.export_folder_for(image_folder / "lesion_0.png") == other_out

    elsewhere = tmp_path / "another folder"  # another folder of images has no export folder yet: asks
    elsewhere.mkdir()
    (image_folder / "lesion_2.png").rename(elsewhere / "lesion_2.png")
    assert again.export_folder_for(elsewhere / "lesion_2.png") is None


# -- 10. F1 lists every key and gesture, from the real bindings ---------------------------------------------------
def test_help_lists_the_real_bindings_including_canvas_keys_and_gestures(window: MainWindow) -> None:
    from PySide6.QtGui import QKeySequence

    dialog = window.show_shortcuts()
    rows = [(dialog.table.item(r, 0).text(), dialog.table.item(r, 1).text()) for r in range(dialog.table.rowCount())]
    keys_text = "\n".join(keys for _what, keys in rows)
    native = QKeySequence.SequenceFormat.NativeText
    for action in window.findChildren(type(window.named_actions["open"])):  # every QAction with a key
        for sequence in action.shortcuts():
            assert sequence.toString(native) in keys_text, action.text()
    text = "\n".join(f"{what}: {keys}" for what, keys in rows)
    for needed in ("Del", "Backspace", "Esc", "Right-click", "Double-click", "[", "]", "Ctrl+Return"):
        assert needed in text, needed
    assert any("Abandon" in what and keys == "Esc" for what, keys in rows)
    assert any("Delete the selected vertex" in what and "Backspace" in keys for what, keys in rows)
    dialog.close()


# -- 9. "restored your edits": a banner per image, until dismissed, with the time of the edit -------------------
def test_restored_edits_banner_is_per_image_until_dismissed_with_the_edit_time(
    make_window, image_folder: Path, qtbot, monkeypatch
) -> None:
    import app.document
    from app.persistence import saved_time

    edit_time = "2025-01-02T03:04:05+00:00"
    monkeypatch.setattr(app.document, "edit_clock", lambda: edit_time)
    first = make_window()
    open_folder_at(first, image_folder, qtbot)
    document = first.document
    document.paint(np.ones((6, 6), bool), (10, 10), not document.mask[12, 12], "Brush stroke")
    step(first, qtbot, 1)  # leaving the image saves it (now), long after the edit
    first.close()

    window = make_window()
    open_folder_at(window, image_folder, qtbot)
    banner = window.restore_banner
    assert f"Restored your edits from {saved_time(edit_time)}" in banner.text()  # the edit's time, not the leaving
    window.status.say("Something else happened.")  # other messages do not overwrite it
    assert "Restored your edits" in banner.text()
    step(window, qtbot, 1)
    assert banner.text() == ""  # the next, unedited image has nothing restored
    step(window, qtbot, -1)
    assert "Restored your edits" in banner.text()
    banner.button.click()  # Dismiss: gone for this image
    assert banner.text() == ""
    step(window, qtbot, 1)
    step(window, qtbot, -1)
    assert banner.text() == ""


# -- 8. batch review: sort, filter, open the written mask, say when the folder cannot be opened ------------------
def test_batch_table_sorts_numbers_as_numbers_and_filters(window: MainWindow, tmp_path: Path) -> None:
    from app.batch_dialog import COLUMNS, SHOW_FILTERS
    from segmentation.batch import BatchItem, BatchResult
    from segmentation.measurements import LesionMeasurements
    from segmentation.quality import QualityAssessment

    dialog = window.show_batch_dialog()

    def typed(area: float, dice: float | None = None, *, review: bool = False, border: bool = False) -> dict:
        measured = LesionMeasurements(area, 0, 0, 0, 0, 0, 0, 0, None, "px", 1)
        return {"measurements": measured, "quality": QualityAssessment(dice, review, False, border, 0.8)}

    rows = [
        ("small.png", "ok", typed(50, 0.93, border=True)),
        ("large.png", "ok", typed(10_000)),
        ("middle.png", "skipped", {}),
        ("broken.png", "error", {}),
        ("medium.png", "ok", typed(900, 0.62, review=True)),
    ]
    for name, status, row in rows:  # what the worker reports, through the same slot
        source = tmp_path / name
        error = "not an image" * (status == "error")
        dialog._progress(BatchResult(BatchItem(source, Path(name)), status, error=error, **row))
    table, area = dialog.table, COLUMNS.index("Lesion area")

    def names() -> list[str]:
        return [table.item(r, 0).text() for r in dialog.visible_rows()]

    table.sortItems(area)
    assert names()[:3] == ["small.png", "medium.png", "large.png"]  # 50 < 900 < 10,000 (as text: "10,000" first)
    table.sortItems(0)
    assert names() == sorted(name for name, _s, _r in rows)
    dialog.show_filter.setCurrentText("Flagged (check first)")  # needs review; the image border is information
    assert names() == ["medium.png"] and dialog.filter_label.text() == "showing 1 of 5"
    dialog.show_filter.setCurrentText("Errors")
    assert names() == ["broken.png"]
    dialog.show_filter.setCurrentText("All results")
    dialog.text_filter.setText("NEEDS REV")
    assert names() == ["medium.png"]
    dialog.text_filter.setText("")
    assert len(names()) == 5 and set(SHOW_FILTERS) >= {"All results", "Errors"}


def test_opening_a_batch_row_shows_the_written_mask_without_segmenting(
    window: MainWindow, image_folder: Path, tmp_path: Path, qtbot
) -> None:
    from PIL import Image

    dialog = window.show_batch_dialog()
    out = tmp_path / "masks"
    dialog.set_inputs([image_folder])
    dialog.set_output(out)
    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS):
        assert dialog.start()
    written = np.zeros((48, 64), bool)
    written[10:30, 5:25] = True  # a mask no model run would give: the test sees which one is shown
    Image.fromarray(written.astype(np.uint8) * 255).save(out / "lesion_1_segmentation.png")
    calls: list[int] = []
    real_predict = window.predictor.predict
    window.predictor.predict = lambda image, threshold=0.5: calls.append(1) or real_predict(image, threshold)

    dialog.table.sortItems(0)
    row = next(r for r in range(3) if dialog.table.item(r, 0).text() == "lesion_1.png")
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        dialog.table.cellDoubleClicked.emit(row, 0)
    qtbot.wait(200)
    window.pools["model"].waitForDone(WAIT_MS)
    assert window.document.path == image_folder / "lesion_1.png"
    np.testing.assert_array_equal(window.document.mask, written)
    assert calls == [] and window.document.segmentation is None
    provenance = window.document.provenance()
    assert provenance["model"] == "untrained-test-model" and provenance["threshold"] == pytest.approx(0.5)

    (out / "lesion_2_segmentation.png").write_bytes(b"not a png")  # a damaged mask: say so, segment instead
    row = next(r for r in range(3) if dialog.table.item(r, 0).text() == "lesion_2.png")
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        dialog.table.cellDoubleClicked.emit(row, 0)
    assert "batch's mask" in window.message_banner.text() and calls == [1]


def test_open_output_folder_says_so_when_no_file_manager_can_open_it(window, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtGui import QDesktopServices

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile())))
    dialog = window.show_batch_dialog()
    dialog.set_output(tmp_path)
    dialog.open_out_button.click()
    assert opened == [str(tmp_path)]
    assert "no file manager" in dialog.message.text() and str(tmp_path) in dialog.message.text()
    dialog.set_output(tmp_path / "not yet")
    dialog.open_out_button.click()
    assert "does not exist yet" in dialog.message.text() and len(opened) == 1


# -- 10. Preferences (with reset to defaults) and About's versions ------------------------------------------------
def test_preferences_apply_save_and_reset_to_defaults(
    window: MainWindow, image_folder: Path, qtbot, lesionlens_home: Path
) -> None:
    import json

    from app.settings import PREFERENCE_KEYS, Settings

    open_folder_at(window, image_folder, qtbot)
    window.remember(last_folder=str(image_folder))
    dialog = window.show_preferences()
    assert tuple(dialog.values()) == PREFERENCE_KEYS
    dialog.opacity.setValue(60)
    dialog.show_fill.setChecked(False)
    dialog._set_colour("#ff00ff")
    dialog.threshold.setValue(0.3)
    dialog.brush.setValue(20)
    dialog.accept()
    assert window.canvas.overlay_style.opacity == pytest.approx(0.6) and not window.canvas.overlay_style.fill
    assert window.canvas.overlay_style.colour == (255, 0, 255)
    assert not window.named_actions["toggle_fill"].isChecked()
    assert window.document.threshold == pytest.approx(0.3)  # the open, unedited image takes the new threshold
    assert window.canvas.brush_radius == 20
    saved = json.loads((lesionlens_home / "settings.json").read_text())
    assert saved["overlay_opacity"] == pytest.approx(0.6) and saved["threshold"] == pytest.approx(0.3)

    dialog = window.show_preferences()  # shows what is set now
    assert dialog.opacity.value() == 60 and dialog.brush.value() == 20
    dialog.reset_button.click()
    defaults = Settings()
    assert dialog.values() == {key: getattr(defaults, key) for key in PREFERENCE_KEYS}
    dialog.reject()  # Cancel: nothing changes
    assert window.settings.overlay_opacity == pytest.approx(0.6)

    dialog = window.show_preferences()
    dialog.reset_button.click()
    dialog.backend.setCurrentIndex(dialog.backend.findData("torch"))  # a new CPU engine loads the model again
    with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS):
        dialog.accept()
    assert window.predictor.backend.name.startswith("PyTorch")
    assert window.predictor.info.name == "untrained-test-model"  # the same weights, not the bundled model
    assert window.settings.overlay_opacity == pytest.approx(defaults.overlay_opacity) and window.settings.show_fill
    assert window.settings.last_folder == str(image_folder)  # files chosen are not preferences
    assert window.named_actions["preferences"].shortcuts()


def test_about_shows_library_versions_and_readable_labels(window: MainWindow) -> None:
    import dataclasses
    import re

    import onnxruntime
    import torch
    from PySide6.QtCore import qVersion

    from app.about import model_html

    dialog = window.show_about()
    text = dialog.label.text()
    versions = (("Qt", qVersion()), ("PyTorch", torch.__version__), ("ONNX Runtime", onnxruntime.__version__))
    for label, version in versions:
        assert f"<b>{label}</b></td><td>{version}" in text, label
    info = dataclasses.replace(
        window.predictor.info, validation={"val_dice_mean_at_selection": 0.8583, "selected_on": "validation"}
    )
    labels = re.findall(r"<td><b>(.*?)</b></td>", model_html(info, "CPU") + text)
    assert labels and not [label for label in labels if "_" in label], labels
    assert "Validation Dice (mean)" in model_html(info, "CPU")
    dialog.close()
