"""The batch dialog on a folder another run is writing into, and the last-resort error box (issue 18): a message
naming the run and the folder, no traceback in the log, and text shown as text."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from segmentation.folderlock import output_folder_lock

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


def test_a_locked_output_folder_stops_the_batch_with_a_message_and_no_traceback(
    window, image_folder: Path, tmp_path: Path, qtbot, caplog
) -> None:
    out = tmp_path / "masks"
    out.mkdir()
    dialog = window.show_batch_dialog()
    dialog.set_inputs([image_folder])
    dialog.set_output(out)
    with (
        output_folder_lock(out),  # another run holds it
        caplog.at_level(logging.INFO, logger="lesionlens"),
        qtbot.waitSignal(dialog.batchFinished, timeout=WAIT_MS),
    ):
        assert dialog.start()
    text = dialog.message.text()
    assert "another LesionLens run" in text and str(out) in text, text
    assert not any(record.exc_info for record in caplog.records), "an expected error logged with a traceback"
    assert not list(out.glob("*_segmentation.png"))


def test_the_error_box_shows_an_unexpected_error_as_plain_text(window, monkeypatch, qtbot) -> None:
    from app.startup import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    shown: list[tuple[Qt.TextFormat, str]] = []

    def close_when_shown() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            shown.append((box.textFormat(), box.text()))
            box.done(0)

    install_excepthook(lambda: window)
    error = RuntimeError('<img src="/etc/probe.png"><a href="x">click</a>')
    QTimer.singleShot(200, close_when_shown)
    sys.excepthook(type(error), error, error.__traceback__)
    assert shown and shown[0][0] == Qt.TextFormat.PlainText
    assert '<img src="/etc/probe.png">' in shown[0][1]
