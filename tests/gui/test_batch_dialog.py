"""The batch dialog: same engine and results.csv as ``lesionlens segment``, cancel, resume, open from the table."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from segmentation.batch import RESULTS_NAME

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_batch_processes_a_folder_and_opens_a_row(window, image_folder: Path, tmp_path: Path, qtbot) -> None:
    dialog = window.show_batch_dialog()
    out = tmp_path / "masks"
    dialog.set_inputs([image_folder])
    dialog.set_output(out)
    dialog.overlay.setChecked(True)
    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS) as blocker:
        assert dialog.start()
    assert blocker.args[0]["ok"] == 3 and not blocker.args[0]["cancelled"]
    assert dialog.table.rowCount() == 3
    assert [dialog.table.item(r, 0).text() for r in range(3)] == ["lesion_0.png", "lesion_1.png", "lesion_2.png"]
    assert {dialog.table.item(r, 1).text() for r in range(3)} == {"segmented"}
    assert all(
        dialog.table.item(r, 2).text().endswith("px²") or dialog.table.item(r, 2).text() == "0" for r in range(3)
    )
    rows = csv_rows(out / RESULTS_NAME)
    assert len(rows) == 3 and {row["status"] for row in rows} == {"ok"}
    assert {row["model"] for row in rows} == {"untrained-test-model"}
    assert sorted(p.name for p in out.glob("*_segmentation.png")) == [f"lesion_{i}_segmentation.png" for i in range(3)]
    assert len(list(out.glob("*_overlay.jpg"))) == 3
    assert "3 of 3" in dialog.message.text()

    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS):  # resume: everything is already done
        dialog.resume_button.click()
    assert {dialog.table.item(r, 1).text() for r in range(3)} == {"already done"}

    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        dialog.table.cellDoubleClicked.emit(1, 0)
    assert window.document.path == image_folder / "lesion_1.png"


def test_batch_cancel_stops_after_the_current_image_and_resume_finishes(window, image_folder, tmp_path, qtbot):
    dialog = window.show_batch_dialog()
    out = tmp_path / "masks"
    dialog.set_inputs([image_folder])
    dialog.set_output(out)
    second_started, release = threading.Event(), threading.Event()
    calls: list[int] = []
    real_predict = window.predictor.predict

    def predict(image, threshold):  # the second image waits for the test: Cancel lands while it is in progress
        calls.append(1)
        if len(calls) == 2:
            second_started.set()
            release.wait(10)
        return real_predict(image, threshold)

    window.predictor.predict = predict
    with qtbot.waitSignal(dialog.resultAdded, timeout=WAIT_MS):
        dialog.start()
    qtbot.waitUntil(second_started.is_set, timeout=WAIT_MS)
    dialog.cancel_button.click()
    assert "Stopping after the current image" in dialog.progress_label.text()
    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS) as blocker:
        release.set()
    summary = blocker.args[0]
    assert summary["cancelled"] and summary["ok"] == 2  # the image in progress finished; the third never started
    assert dialog.table.rowCount() == 2 and len(csv_rows(out / RESULTS_NAME)) == 2
    assert "Resume" in dialog.message.text() and dialog.resume_button.isEnabled()

    with qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS) as blocker:
        dialog.resume_button.click()
    assert blocker.args[0] == {"ok": 1, "skipped": 2, "error": 0, "total": 3, "cancelled": False}
    assert len(csv_rows(out / RESULTS_NAME)) == 3


def test_batch_refuses_the_input_folder_as_output(window, image_folder: Path) -> None:
    dialog = window.show_batch_dialog()
    dialog.set_inputs([image_folder])
    dialog.set_output(image_folder)
    assert not dialog.start()
    assert "input folder" in dialog.message.text()
