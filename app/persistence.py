"""Autosave of the clinician's work, and where the window keeps its own (Qt) state.

Every mask change restarts a 500 ms timer; when it fires, the state is written by a background thread (a PNG of a
24-megapixel mask takes a noticeable moment) through :class:`AutosaveStore`, which writes atomically. Switching
images and closing the window save at once. So a crash loses at most the last stroke, and the window never waits
for the disk while the clinician draws.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal

from app.document import LesionDocument
from app.settings import app_data_dir
from app.workers import new_pool
from segmentation.autosave import AutosaveStore, SavedState, saved_state
from segmentation.calibration import SOURCES, Calibration
from segmentation.imageio import OutputWriteError
from segmentation.private_files import private_folder

log = logging.getLogger("lesionlens.gui")
AUTOSAVE_DELAY_MS = 500


def window_settings() -> QSettings:
    """The window's geometry and dock layout (Qt's own state; everything else is in settings.json): an ini file in
    the private data folder, beside the autosaves, so nothing about the user's work lands outside it."""
    with contextlib.suppress(OSError):  # unwritable: Qt keeps the state in memory and the window still opens
        private_folder(app_data_dir())
    return QSettings(str(app_data_dir() / "window.ini"), QSettings.Format.IniFormat)


def saved_time(saved_at: str) -> str:
    """'14:02' today, else '3 Mar 14:02', in local time, from the store's UTC ISO stamp."""
    try:
        moment = datetime.fromisoformat(saved_at).astimezone()
    except ValueError:
        return saved_at
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M")
    return moment.strftime("%d %b %Y %H:%M")


class AutosaveController(QObject):
    """Saves the document's state after changes (debounced) and restores it when an image is opened."""

    saved = Signal(Path)
    failed = Signal(str)

    def __init__(self, document: LesionDocument, folder: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.store = AutosaveStore(folder or app_data_dir() / "autosave")
        self.model_sha256 = ""
        self._timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        self._pool = new_pool(1, self)  # one writer, in order: saves of one image never overlap, none is dropped

    def schedule(self) -> None:
        """A mask change happened: save in a moment (restarts the timer, so a burst of changes saves once)."""
        if self._worth_saving():
            self._timer.start()

    def save_now(self, *, wait: bool = False) -> None:
        """Save the current state now (image switch, close); ``wait`` blocks until it is on disk."""
        self._timer.stop()
        state = self._state()
        if state is None:
            return
        path = self.document.path
        if wait:
            self._pool.waitForDone(10_000)
            self._write(path, state)
        else:
            self._pool.start(lambda: self._write(path, state))

    def _write(self, path: Path, state: SavedState) -> None:
        """Runs on the writer thread (or the GUI thread when waiting); signals reach the GUI thread queued."""
        try:
            self.store.save(path, state)
        except OutputWriteError as error:  # expected (a full disk): the reason, no traceback, goes to the log
            log.warning("autosave of %s failed: %s", path, error)
            self.failed.emit(f"Autosave failed, your latest edits are not saved on disk: {error}")
        except Exception as error:
            log.exception("autosave of %s failed", path)
            self.failed.emit(f"Autosave failed, your latest edits are not saved on disk: {error}")
        else:
            self.saved.emit(path)

    def restore(self) -> SavedState | None:
        """Apply a saved state of the open image, if there is one of the same size; returns it.

        A saved state that cannot be used is kept aside by the store (never deleted) and the user is told where,
        through ``failed``: the image then shows the model's mask, and they know their edits were not restored."""
        document = self.document
        if document.path is None or document.image is None:
            return None
        state, set_aside = self.store.load_checked(document.path, document.image.shape[:2])
        if set_aside is not None:
            where = f"kept aside in {set_aside.files[0].parent}" if set_aside.files else "left where they were"
            log.warning("saved edits of %s not restored (%s); %s", document.path, set_aside.reason, where)
            self.failed.emit(
                f"Your saved edits of {document.path.name} could not be restored: {set_aside.reason}. "
                f"They were {where}; the image shows the model's mask."
            )
        if state is None:
            return None
        document.restore(
            state.mask, edited=state.edited, threshold=state.threshold, cleanup=state.cleanup, edited_at=state.edited_at
        )
        if state.mm_per_pixel is not None:  # this image's own calibration, saved with its edits
            source = state.calibration_source if state.calibration_source in SOURCES else "typed"
            profile = state.calibration_profile if source == "profile" else ""
            with contextlib.suppress(ValueError):  # a value out of range is dropped, never guessed
                document.set_calibration(Calibration(state.mm_per_pixel, source, profile))
        return state

    def has(self, path: Path) -> bool:
        return self.store.has(path)

    def wait(self, msecs: int = 10_000) -> bool:
        return self._pool.waitForDone(msecs)

    def _worth_saving(self) -> bool:
        """Edits, or an image with a state saved before (its reset must be saved too); not every fresh AI mask."""
        document = self.document
        if document.path is None or document.mask is None:
            return False
        return (
            document.edited
            or document.undo_stack.count() > 0
            or document.calibration is not None  # the image's own calibration is kept with it
            or self.store.has(document.path)
        )

    def _state(self) -> SavedState | None:
        if not self._worth_saving():
            return None
        document = self.document
        segmentation = document.segmentation
        return saved_state(
            document.result,
            calibration=document.calibration,
            edited_at=document.edited_at,
            model_sha256=segmentation.model.sha256 if segmentation else self.model_sha256,
        )
