"""Calibration belongs to one image; profiles apply only on request; the measurements panel says what it measured,
where its millimetres came from, and when its numbers are being updated."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QInputDialog

from app.calibration_profiles import ProfileStore
from app.main_window import MainWindow
from app.settings import default_settings_path
from segmentation.calibration import Calibration

WAIT_MS = 15_000


def _calibrate_by_line(window: MainWindow, qtbot, monkeypatch, mm: float, px: float) -> None:
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *args, **kwargs: (mm, True)))
    window.named_actions["tool_calibrate"].trigger()
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.canvas.calibrationLineDrawn.emit(px)


def test_calibration_stays_with_its_image(make_window, image_folder, open_segmented, qtbot, monkeypatch, tmp_path):
    window = make_window()
    first, second = image_folder / "lesion_0.png", image_folder / "lesion_1.png"
    open_segmented(window, first)
    _calibrate_by_line(window, qtbot, monkeypatch, 5.0, 80.0)  # a ruler line: 0.0625 mm/px
    assert window.document.calibration == Calibration(0.0625, "measured")
    open_segmented(window, second)
    assert window.document.calibration is None  # not carried to the next image
    assert "not calibrated" in window.measurements_panel.unit_label.text()
    assert window.calibration_box.spin.value() == 0
    other = tmp_path / "other_folder"
    other.mkdir()
    (other / "elsewhere.png").write_bytes(first.read_bytes())
    open_segmented(window, other / "elsewhere.png")
    assert window.document.calibration is None  # nor to another folder
    open_segmented(window, first)
    assert window.document.calibration == Calibration(0.0625, "measured")  # it is this image's own
    window.close()
    assert "mm_per_pixel" not in json.loads(default_settings_path().read_text())
    restarted = make_window()
    open_segmented(restarted, second)
    assert restarted.document.calibration is None  # nor to the next start of the app


def test_profiles_are_saved_and_applied_only_on_request(make_window, image_folder, open_segmented, qtbot, monkeypatch):
    window = make_window()
    open_segmented(window, image_folder / "lesion_0.png")
    window.calibration_box.spin.setValue(0.0625)
    window.calibration_box.spin.editingFinished.emit()
    assert window.document.calibration == Calibration(0.0625, "typed")
    assert "typed in" in window.calibration_box.source_label.text()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args, **kwargs: ("  Dermlite DL4 ", True)))
    window.calibration_box.save_button.click()
    assert ProfileStore().load() == {"Dermlite DL4": 0.0625}
    assert window.calibration_box.profiles.currentData() == "Dermlite DL4"

    open_segmented(window, image_folder / "lesion_1.png")
    assert window.document.calibration is None  # a profile is never applied on its own
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.calibration_box.apply_button.click()
    assert window.document.calibration == Calibration(0.0625, "profile", "Dermlite DL4")
    assert "profile Dermlite DL4" in window.measurements_panel.unit_label.text()
    provenance = window.document.provenance()
    assert (provenance["mm_per_pixel"], provenance["calibration_source"]) == (0.0625, "profile")
    assert provenance["calibration_profile"] == "Dermlite DL4"
    out = image_folder.parent / "exports"
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
        assert window.export(out)
    with (out / "lesion_1_measurements.csv").open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert (row["calibration_source"], row["calibration_profile"], row["mm_per_pixel"]) == (
        "profile",
        "Dermlite DL4",
        "0.0625",
    )
    window.close()
    restarted = make_window()
    open_segmented(restarted, image_folder / "lesion_2.png")
    assert restarted.document.calibration is None
    assert restarted.calibration_box.profiles.currentData() == "Dermlite DL4"  # the profile itself is kept


def test_damaged_profiles_file_gives_no_profiles(lesionlens_home: Path) -> None:
    store = ProfileStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text('{"profiles": {"good": 0.05, "": 0.1, "negative": -1, "nan": NaN, "text": "x"}}')
    assert store.load() == {"good": 0.05}
    store.path.write_text("not json")
    assert store.load() == {}
    with pytest.raises(ValueError):
        store.save("   ", 0.05)


def test_panel_measures_the_largest_region_and_counts_the_others(window, image_folder, open_segmented, qtbot):
    open_segmented(window, image_folder / "lesion_0.png")
    mask = np.zeros((48, 64), bool)
    mask[10:40, 10:40] = True
    mask[1:3, 60:62] = True  # a speck in the corner
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.document.replace_mask(mask, "test mask")
    panel = window.measurements_panel
    assert panel.text_of("area") == "900.0 px²" and panel.text_of("other_regions") == "1"
    assert panel.text_of("n_regions") == "2"
    assert not panel.regions_note.isHidden() and "1 other region" in panel.regions_note.text()
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        panel.all_regions_box.setChecked(True)
    assert panel.text_of("area") == "904.0 px²" and panel.text_of("other_regions") == "0"
    assert window.document.provenance()["measured_regions"] == "all"
    open_segmented(window, image_folder / "lesion_1.png")
    assert not panel.all_regions_box.isChecked() and window.document.regions == "largest"


def test_panel_says_when_its_numbers_are_being_updated(window, image_folder, open_segmented, qtbot):
    open_segmented(window, image_folder / "lesion_0.png")
    qtbot.waitUntil(lambda: not window.measurements_panel.updating, timeout=WAIT_MS)
    panel = window.measurements_panel
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        window.document.paint(np.ones((6, 6), bool), (20, 20), not window.document.mask[20, 20], "Brush stroke")
        assert panel.updating and not panel.values["area"].isEnabled()  # the old numbers are marked stale
        assert "Updating" in panel.updating_label.text()
    assert not panel.updating and panel.values["area"].isEnabled()


def test_measurements_do_not_wait_for_the_quality_estimate(window, image_folder, open_segmented, qtbot, monkeypatch):
    import threading

    from segmentation.lesion import LesionSegmentation

    open_segmented(window, image_folder / "lesion_0.png")
    panel = window.measurements_panel
    qtbot.waitUntil(lambda: not panel.updating, timeout=WAIT_MS)
    release = threading.Event()
    real = LesionSegmentation.quality

    def slow_quality(*args):  # hold the estimate back: the numbers must not wait for it
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(LesionSegmentation, "quality", slow_quality)
    mask = np.zeros((48, 64), bool)
    mask[10:40, 10:40] = True
    window.document.replace_mask(mask, "test mask")
    qtbot.waitUntil(lambda: panel.text_of("area") == "900.0 px²" and not panel.updating, timeout=WAIT_MS)
    assert window.analyser.busy  # the estimate is still being computed, the numbers are already there
    with qtbot.waitSignal(window.analysed, timeout=WAIT_MS):
        release.set()
