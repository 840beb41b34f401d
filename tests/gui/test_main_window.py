"""The main window's plumbing: open, segment off the GUI thread, threshold, peek, measurements, folders, errors.

The model is untrained (see conftest); nothing here looks at what its masks contain, only where they go.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QColorDialog, QInputDialog

from app.canvas import Tool
from app.folder_states import AI_MASK, EDITED
from app.layout import first_window_size
from app.main_window import MainWindow, run

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


def test_open_and_segment_off_the_gui_thread(window: MainWindow, image_folder: Path, qtbot) -> None:
    path = image_folder / "lesion_0.png"
    with qtbot.waitSignal(window.segmenter.finished, timeout=WAIT_MS) as blocker:
        window.open_paths([path])
    returned_path, segmentation = blocker.args[0]
    assert returned_path == path
    assert segmentation.model.name == "untrained-test-model"
    qtbot.waitUntil(lambda: window.document.segmentation is segmentation)
    assert window.document.mask.shape == (48, 64)
    assert not window.status.is_busy()
    assert "untrained-test-model" in window.status.model_label.text()
    assert window.predictor.weights_sha256[:12] in window.status.model_label.text()
    assert "CPU" in window.status.device_label.text()
    assert window.windowTitle().startswith("lesion_0.png")


def test_cancel_frees_the_ui_and_discards_the_late_result(window: MainWindow, image_folder: Path, qtbot) -> None:
    release = threading.Event()
    real_predict = window.predictor.predict

    def slow_predict(image, threshold=0.5):
        release.wait(10)
        return real_predict(image, threshold)

    window.predictor.predict = slow_predict
    with qtbot.waitSignal(window.segmenter.started, timeout=WAIT_MS):
        window.open_paths([image_folder / "lesion_0.png"])
    assert window.status.is_busy("segment") and window.named_actions["cancel"].isEnabled()
    with qtbot.waitSignal(window.segmenter.cancelled, timeout=1000):
        window.named_actions["cancel"].trigger()
    assert not window.status.is_busy() and not window.named_actions["cancel"].isEnabled()
    assert QApplication.overrideCursor() is None
    release.set()
    window.pools["model"].waitForDone(WAIT_MS)
    QApplication.processEvents()
    assert window.document.segmentation is None  # the late result was discarded


def test_threshold_slider_rebinarises_until_edited(
    window: MainWindow, image_folder, open_segmented, known_segmentation
):
    open_segmented(window, image_folder / "lesion_0.png")
    document, panel = window.document, window.overlay_panel
    document.set_segmentation(known_segmentation((48, 64)))
    panel.threshold_slider.setValue(30)
    assert document.threshold == pytest.approx(0.30)
    np.testing.assert_array_equal(document.mask, document.segmentation.probability >= 0.30)
    panel.threshold_slider.setValue(80)
    np.testing.assert_array_equal(document.mask, document.segmentation.probability >= 0.80)
    assert panel.threshold_slider.isEnabled() and panel.threshold_note.isHidden()

    document.paint(np.ones((5, 5), bool), (10, 5), True, "Brush stroke")
    assert not panel.threshold_slider.isEnabled()
    assert not panel.threshold_note.isHidden() and "reset" in panel.threshold_note.text()
    assert window.named_actions["reset_mask"].isEnabled()

    window.named_actions["reset_mask"].trigger()
    assert panel.threshold_slider.isEnabled() and panel.threshold_note.isHidden()
    np.testing.assert_array_equal(document.mask, document.segmentation.probability >= 0.80)


def test_brush_stroke_through_the_window_updates_measurements(window: MainWindow, image_folder, open_segmented, qtbot):
    open_segmented(window, image_folder / "lesion_0.png")
    window.document.replace_mask(np.zeros((48, 64), bool), "clear", edited_after=False)
    qtbot.waitUntil(lambda: window.measurements_panel.text_of("area") == "—", timeout=WAIT_MS)
    window.named_actions["tool_brush"].trigger()
    assert window.canvas.tool is Tool.BRUSH
    window.canvas.set_brush_radius(4)
    viewport = window.canvas.viewport()
    points = [window.canvas.mapFromScene(QPointF(x, 24.5)) for x in (20.5, 30.5, 40.5)]
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        for point in points[1:]:
            QTest.mouseMove(viewport, point)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])
    area = window.measurements_panel.text_of("area")
    assert area.endswith("px²") and float(area.split()[0].replace(",", "")) == window.document.mask.sum()
    assert "not calibrated" in window.measurements_panel.unit_label.text()
    assert window.document.edited


def test_calibration_by_line_switches_measurements_to_mm(window, image_folder, open_segmented, qtbot, monkeypatch):
    open_segmented(window, image_folder / "lesion_0.png")
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *args, **kwargs: (5.0, True)))
    window.named_actions["tool_calibrate"].trigger()
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.canvas.calibrationLineDrawn.emit(100.0)
    assert window.document.mm_per_pixel == pytest.approx(0.05)
    assert "mm" in window.measurements_panel.unit_label.text()
    assert "measured on this image" in window.measurements_panel.unit_label.text()
    assert "measured on this image" in window.calibration_box.source_label.text()
    assert window.canvas.tool is Tool.NAVIGATE
    if window.document.mask.any():
        assert window.measurements_panel.text_of("area").endswith("mm²")
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.named_actions["clear_calibration"].trigger()
    assert window.document.mm_per_pixel is None
    assert "px (not calibrated)" in window.measurements_panel.unit_label.text()


def test_peek_hides_the_overlay_while_the_key_is_held(window: MainWindow) -> None:
    canvas = window.canvas
    target = window.folder_panel.list  # peek works whichever widget of the window has the focus

    def key(kind: QEvent.Type, auto_repeat: bool = False) -> None:
        QApplication.sendEvent(target, QKeyEvent(kind, Qt.Key.Key_H, Qt.KeyboardModifier.NoModifier, "h", auto_repeat))

    key(QEvent.Type.KeyPress)
    assert canvas.peeking
    key(QEvent.Type.KeyRelease, auto_repeat=True)  # auto-repeat sends release+press pairs: ignored
    key(QEvent.Type.KeyPress, auto_repeat=True)
    assert canvas.peeking
    key(QEvent.Type.KeyRelease)
    assert not canvas.peeking
    target = window.calibration_box.spin.lineEdit()  # typing in a field is typing, not peeking
    key(QEvent.Type.KeyPress)
    assert not canvas.peeking


def test_folder_list_states_and_next_previous(window: MainWindow, image_folder: Path, qtbot) -> None:
    paths = sorted(image_folder.iterdir())
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([image_folder])
    panel = window.folder_panel
    assert panel.isVisible() and panel.paths() == paths
    assert panel.state(paths[0]) == AI_MASK
    # the rest of the folder is segmented in the background, after the shown image
    qtbot.waitUntil(lambda: [panel.state(p) for p in paths[1:]] == [AI_MASK, AI_MASK], timeout=WAIT_MS)
    assert AI_MASK in panel.item_text(paths[0]) and AI_MASK in panel.item_text(paths[1])

    window.canvas.setFocus()
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.named_actions["next_image"].trigger()
    assert window.document.path == paths[1]
    assert window.document.paint(np.ones((3, 3), bool), (0, 0), not window.document.mask[0, 0], "Brush stroke")
    assert panel.state(paths[1]) == EDITED
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.named_actions["previous_image"].trigger()
    assert window.document.path == paths[0]
    window.named_actions["previous_image"].trigger()  # past the first image: nothing happens
    assert window.document.path == paths[0] and window.loader.busy is False

    window.activateWindow()
    window.canvas.setFocus()
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        QTest.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.document.path == paths[1]
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        QTest.keyClick(window.canvas, Qt.Key.Key_N)
    assert window.document.path == paths[2]
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        QTest.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.document.path == paths[1]

    flags = panel.flags(paths[0])
    assert ("⚠" in panel.item_text(paths[0])) == bool(flags and flags.needs_review)
    qtbot.waitUntil(lambda: panel.list.item(0).icon().pixmap(8, 8).toImage().pixelColor(4, 4).name() != "#d0d0d0",
                    timeout=WAIT_MS)  # lazy thumbnails replace the grey placeholder  # fmt: skip


def test_unreadable_file_gives_a_message_and_the_app_stays_usable(window: MainWindow, image_folder, tmp_path, qtbot):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff this is not a JPEG")
    with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
        window.open_paths([bad])
    assert "broken.jpg" in window.last_error
    assert window.message_banner.text() and "broken.jpg" in window.message_banner.text()
    assert not window.status.is_busy()
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([image_folder / "lesion_1.png"])
    assert window.document.path == image_folder / "lesion_1.png"
    assert window.message_banner.isHidden()


def test_missing_weights_open_the_app_with_segmentation_off(make_window, image_folder, tmp_path, qtbot):
    window = make_window(tmp_path / "no-such-model.safetensors", wait_model=False)
    with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS) as blocker:
        pass
    assert blocker.args == [False]
    assert window.predictor is None
    assert "not found" in window.weights_banner.text() and "Choose" in window.weights_banner.button.text()
    assert "Model: none" in window.status.model_label.text()
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.open_paths([image_folder / "lesion_0.png"])
    assert window.document.image is not None and window.document.segmentation is None
    assert not window.named_actions["segment"].isEnabled()
    assert window.named_actions["choose_weights"].isEnabled()
    dialog = window.show_batch_dialog()
    assert not dialog.start()
    assert "No model" in dialog.message.text()


def test_help_lists_every_shortcut(window: MainWindow) -> None:
    from app.actions import SHORTCUTS, TITLES, key_sequences, shortcut_text

    dialog = window.show_shortcuts()
    rows = {(dialog.table.item(r, 0).text(), dialog.table.item(r, 1).text()) for r in range(dialog.table.rowCount())}
    for name, keys in SHORTCUTS.items():
        assert (TITLES[name], shortcut_text(name) if keys else "—") in rows
    sequences = [key.upper() for keys in SHORTCUTS.values() for key in keys]
    assert len(sequences) == len(set(sequences)), "two actions share a key"
    for name, action in window.named_actions.items():  # every action came from the one table
        assert [s.toString() for s in action.shortcuts()] == [s.toString() for s in key_sequences(name)]
        assert action.text().startswith(TITLES[name].rstrip("…"))
    dialog.close()


def test_about_names_version_model_licence_and_intended_use(window: MainWindow) -> None:
    from segmentation import __version__

    dialog = window.show_about()
    text = dialog.label.text()
    file_sha256 = hashlib.sha256(window.predictor.weights_path.read_bytes()).hexdigest()  # what sha256sum prints
    assert __version__ in text and "untrained-test-model" in text and file_sha256 in text
    assert window.predictor.info.sha256 not in text  # the tensor hash stays in the file's metadata
    label = window.status.model_label
    assert file_sha256[:12] in label.text() and file_sha256 in label.toolTip()
    assert window.predictor.info.sha256[:12] not in label.text() + label.toolTip()
    assert "not a diagnostic device" in text and "CC BY-NC 4.0" in text and "Codella" in text
    assert "no validation results" in text  # an untrained model must never look like it segments lesions
    dialog.close()


def test_run_entry_point_opens_the_window(tiny_weights: Path, image_folder: Path, qtbot, monkeypatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(logging.getLogger("lesionlens"), "handlers", [])
    seen: list[MainWindow] = []

    def close_when_segmented() -> None:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        seen.append(window)
        window.segmented.connect(lambda _path: window.close())
        if window.document.segmentation is not None:
            window.close()

    QTimer.singleShot(0, close_when_segmented)
    QTimer.singleShot(WAIT_MS, QApplication.quit)  # never hang the suite
    status = run([str(image_folder / "lesion_2.png"), "--weights", str(tiny_weights), "--device", "cpu"])
    assert status == 0
    assert seen and seen[0].document.path == image_folder / "lesion_2.png"
    assert seen[0].document.segmentation is not None
    assert not QApplication.windowIcon().isNull()  # resources/icons/lesionlens.png
    seen[0].deleteLater()


def test_drop_on_the_canvas_opens_a_folder(window: MainWindow, image_folder: Path, qtbot) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):  # QTest cannot drag: call the viewport's filter
        assert window.eventFilter(window.canvas.viewport(), event)
    assert event.isAccepted() and len(window.folder_panel.paths()) == 3
    mime.setUrls([QUrl.fromLocalFile(str(image_folder / "lesion_2.png"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):  # on the rest of the window too
        window.dropEvent(event)
    assert window.document.path == image_folder / "lesion_2.png"


def test_cleanup_runs_off_the_gui_thread_and_undoes(window: MainWindow, image_folder, open_segmented, qtbot) -> None:
    open_segmented(window, image_folder / "lesion_0.png")
    document = window.document
    ring = np.zeros((48, 64), bool)
    ring[10:30, 10:30] = True
    ring[18:22, 18:22] = False  # a hole
    ring[40:42, 50:52] = True  # a speck
    document.replace_mask(ring, "test mask")
    with qtbot.waitSignal(window.cleanup.done, timeout=WAIT_MS) as blocker:
        window.named_actions["fill_holes"].trigger()
    assert "done" in blocker.args[0]
    assert document.mask[18:22, 18:22].all() and document.cleanup == ("fill_holes",)
    with qtbot.waitSignal(window.cleanup.done, timeout=WAIT_MS):
        window.named_actions["keep_largest"].trigger()
    assert not document.mask[40:42, 50:52].any() and document.provenance()["cleanup"] == "fill_holes+keep_largest"
    window.named_actions["undo"].trigger()
    assert document.mask[40:42, 50:52].all()
    window.named_actions["redo"].trigger()
    assert not document.mask[40:42, 50:52].any()

    with qtbot.waitSignal(window.cleanup.done, timeout=WAIT_MS) as blocker:  # an edit during the step wins
        window.named_actions["smooth"].trigger()
        document.paint(np.ones((2, 2), bool), (0, 0), not document.mask[0, 0], "Brush stroke")
    assert "changed" in blocker.args[0] and "smooth" not in document.cleanup


def test_overlay_controls_reach_the_canvas(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    panel, canvas = window.overlay_panel, window.canvas
    panel.opacity_slider.setValue(70)
    assert canvas.overlay_style.opacity == pytest.approx(0.7)
    window.named_actions["toggle_fill"].trigger()
    assert not canvas.overlay_style.fill and not panel.fill_box.isChecked()
    panel.boundary_box.setChecked(False)
    assert not canvas.overlay_style.boundary and not window.named_actions["toggle_boundary"].isChecked()
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *args, **kwargs: QColor(255, 0, 128)))
    panel.colour_button.click()
    assert canvas.overlay_style.colour == (255, 0, 128) and window.settings.overlay_colour == "#ff0080"


def test_undo_redo_follow_the_stack(window: MainWindow, image_folder, open_segmented) -> None:
    assert not window.named_actions["undo"].isEnabled() and not window.named_actions["redo"].isEnabled()
    open_segmented(window, image_folder / "lesion_0.png")
    document = window.document
    before = document.mask.copy()
    document.paint(np.ones((4, 4), bool), (5, 5), not document.mask[5, 5], "Brush stroke")
    assert window.named_actions["undo"].isEnabled() and "Brush stroke" in window.named_actions["undo"].text()
    assert [s.toString() for s in window.named_actions["redo"].shortcuts()] == ["Ctrl+Shift+Z", "Ctrl+Y"]
    window.named_actions["undo"].trigger()
    np.testing.assert_array_equal(document.mask, before)
    assert window.named_actions["redo"].isEnabled()


def test_unexpected_errors_are_logged_and_shown_not_raised(lesionlens_home, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from app.startup import install_excepthook, setup_logging

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(logging.getLogger("lesionlens"), "handlers", [])
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()))
    log_path = setup_logging()
    install_excepthook(lambda: None)
    try:
        raise ValueError("boom in a slot")
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    assert len(shown) == 1 and "boom in a slot" in shown[0] and "Traceback" not in shown[0]
    assert "Traceback" in log_path.read_text(encoding="utf-8")


def test_first_start_window_fits_a_small_screen(tiny_weights: Path, qtbot) -> None:
    """With no saved geometry the window takes its preferred size shrunk to the screen, so no panel is cut off."""
    window = MainWindow(weights=tiny_weights, device="cpu")
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.modelLoaded, timeout=15_000):
        window.show()
    available = window.screen().availableGeometry()
    assert window.width() <= available.width()
    assert window.height() <= available.height()
    assert first_window_size(QSize(1400, 1050)) == QSize(1288, 900)  # the 1400-px screen that cut the panel off
    assert first_window_size(QSize(2560, 1440)) == QSize(1440, 900)
    window.close()
