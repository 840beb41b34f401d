"""Start-up plumbing of the desktop app: command-line arguments, the log file and the last-resort error handler.

No traceback may reach a clinician: an unexpected error is written to the log with its traceback and shown as a
plain message, and the window stays open (their edits are autosaved anyway).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.settings import app_data_dir
from segmentation.inference import DEVICE_CHOICES
from segmentation.private_files import PrivateRotatingFileHandler, private_folder

log = logging.getLogger("lesionlens.gui")
LOG_NAME = "lesionlens.log"
LOG_MAX_BYTES = 1_000_000  # then lesionlens.log.1 ... .3: at most 4 MB of log, the oldest dropped
LOG_BACKUPS = 3


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``[IMAGE_OR_FOLDER...] [--weights FILE] [--device ...]``; unknown options (``-platform``...) are Qt's."""
    parser = argparse.ArgumentParser(prog="lesionlens", description="LesionLens desktop app")
    parser.add_argument("paths", nargs="*", type=Path, metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--weights", type=Path, help="LesionLens weights file (default: remembered or bundled)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="where the model runs (default: remembered, auto)")
    return parser.parse_known_args(argv)


def setup_logging() -> Path | None:
    """Log to ``app_data_dir()/lesionlens.log`` (stderr if that folder cannot be written); returns the file.

    The folder is private (0700), the log 0600 and rotated (``LOG_MAX_BYTES``, ``LOG_BACKUPS`` old files): it names
    the patients' image files."""
    logger = logging.getLogger("lesionlens")
    logger.setLevel(logging.INFO)
    path = app_data_dir() / LOG_NAME
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        return path
    try:
        private_folder(path.parent)
        handler: logging.Handler = PrivateRotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError:
        handler, path = logging.StreamHandler(), None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return path


def install_excepthook(parent: Callable[[], QWidget | None]) -> None:
    """Replace ``sys.excepthook``: log the traceback, show a short message, keep the app running."""
    showing: list[bool] = []

    def hook(kind, error, tb) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, error, tb)))
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        if showing:  # an error while the message is up: logged, not stacked
            return
        showing.append(True)
        try:
            box = QMessageBox(QMessageBox.Icon.Warning, "LesionLens", "", parent=parent())
            box.setTextFormat(Qt.TextFormat.PlainText)  # an error's text may hold a file name with markup in it
            box.setText(
                f"Something went wrong: {error}\n\nThe app is still usable and your edits are autosaved. "
                f"Details are in {app_data_dir() / LOG_NAME}."
            )
            box.exec()
        finally:
            showing.clear()

    sys.excepthook = hook
