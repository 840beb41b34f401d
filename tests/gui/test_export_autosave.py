"""Export from the window (four files, asks before overwriting) and autosave (edits survive the window)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from app.folder_states import EXPORTED
from segmentation.geojson import geojson_to_mask
from segmentation.imageio import read_mask
from segmentation.ownership import RECORD_NAME

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


def test_export_writes_four_files_and_asks_before_overwriting(window, image_folder, open_segmented, qtbot, monkeypatch):
    source = image_folder / "lesion_0.png"
    source_bytes = source.read_bytes()
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([image_folder])
    document = window.document
    document.paint(np.ones((6, 6), bool), (20, 20), not document.mask[20, 20], "Brush stroke")
    out = image_folder.parent / "exports"
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS) as blocker:
        assert window.export(out)
    path, written = blocker.args
    assert path == source and set(written) == {"mask", "overlay", "boundary", "measurements"}
    assert sorted(p.name for p in out.iterdir() if p.name != RECORD_NAME) == [
        "lesion_0_boundary.geojson",
        "lesion_0_measurements.csv",
        "lesion_0_overlay.png",
        "lesion_0_segmentation.png",
    ]
    np.testing.assert_array_equal(read_mask(out / "lesion_0_segmentation.png"), document.mask)
    with (out / "lesion_0_measurements.csv").open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["model"] == "untrained-test-model" and row["edited"] == "True"
    boundary = json.loads((out / "lesion_0_boundary.geojson").read_text(encoding="utf-8"))
    properties = boundary["features"][0]["properties"]
    assert properties["model_sha256"] == window.predictor.weights_sha256  # the weights file's SHA-256
    assert properties["app_version"]
    np.testing.assert_array_equal(geojson_to_mask(boundary), document.mask)
    assert window.folder_panel.state(source) == EXPORTED
    assert source.read_bytes() == source_bytes  # the source image is never written

    asked: list[str] = []

    def answer(reply):
        def question(*args, **kwargs):
            asked.append(args[1])
            return reply

        return question

    before = (out / "lesion_0_segmentation.png").stat().st_mtime_ns
    document.paint(np.ones((4, 4), bool), (2, 2), not document.mask[2, 2], "Brush stroke")
    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer(QMessageBox.StandardButton.No)))
    with qtbot.waitSignal(window.exporter.declined, timeout=WAIT_MS):
        window.export(out)
    assert asked == ["Overwrite the earlier export?"]
    assert (out / "lesion_0_segmentation.png").stat().st_mtime_ns == before

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer(QMessageBox.StandardButton.Yes)))
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
        window.export(out)
    assert len(asked) == 2
    np.testing.assert_array_equal(read_mask(out / "lesion_0_segmentation.png"), document.mask)
    assert source.read_bytes() == source_bytes


def test_autosave_restores_edits_in_a_new_window(make_window, image_folder, open_segmented, qtbot, lesionlens_home):
    path = image_folder / "lesion_1.png"
    first = make_window()
    open_segmented(first, path)
    document = first.document
    document.paint(np.ones((8, 8), bool), (10, 10), not document.mask[10, 10], "Brush stroke")
    document.paint(np.ones((3, 3), bool), (30, 40), not document.mask[30, 40], "Brush stroke")
    with qtbot.waitSignal(first.autosave.saved, timeout=WAIT_MS):
        pass  # the debounced save (500 ms after the last change) runs on its own
    edited = document.mask.copy()
    first.close()  # closing saves too; the window is gone
    assert any((lesionlens_home / "autosave").glob("*.json"))

    second = make_window()
    with qtbot.waitSignal(second.segmented, timeout=WAIT_MS):
        second.open_paths([path])
    assert second.document.edited
    np.testing.assert_array_equal(second.document.mask, edited)  # the model's result did not override the edits
    assert "Restored your edits from" in second.restore_banner.text()
    assert not second.overlay_panel.threshold_slider.isEnabled()


def test_settings_are_remembered_between_runs(make_window, lesionlens_home: Path) -> None:
    first = make_window()
    first.overlay_panel.opacity_slider.setValue(60)
    first.overlay_panel.fill_box.setChecked(False)
    first.canvas.set_brush_radius(20)
    first.close()
    second = make_window()
    assert second.overlay_panel.style.opacity == pytest.approx(0.6) and not second.overlay_panel.style.fill
    assert second.canvas.overlay_style.opacity == pytest.approx(0.6)
    assert second.canvas.brush_radius == 20
    assert not second.named_actions["toggle_fill"].isChecked()
    assert (lesionlens_home / "window.ini").exists()
