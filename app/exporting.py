"""File > Export: mask, overlay, boundary and measurements of the open image, with its provenance.

Writing four files of a 24-megapixel image takes a second or two, so it runs off the GUI thread. An earlier export
is overwritten only after the clinician said Yes: exports are what goes into the patient's record.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.document import LesionDocument
from app.workers import TaskContext, TaskRunner
from segmentation import __version__
from segmentation.export import ExportExistsError, OverlayStyle, export_lesion


def _export_task(context: TaskContext, overwrite: bool, kwargs: dict) -> dict[str, Path] | ExportExistsError:
    """Returns the files written, or the ExportExistsError (a question for the user, not a failure)."""
    try:
        return export_lesion(**kwargs, overwrite=overwrite)
    except ExportExistsError as error:
        return error
    except ValueError as error:  # e.g. an output would be the source image itself: say so, as for a write error
        raise RuntimeError(str(error)) from error


class ExportController(QObject):
    """Exports in the background (asking for a folder when none is given), asks before overwriting, reports."""

    exported = Signal(Path, dict)  # image path, kind -> file written
    failed = Signal(str)
    declined = Signal()  # the user kept the earlier export

    def __init__(self, document: LesionDocument, pool: QThreadPool, parent: QWidget) -> None:
        super().__init__(parent)
        self.document = document
        self.window = parent
        self.last_folder = ""
        self.start_folder = ""  # where the folder dialog opens (the window sets the folder remembered for the image)
        self.runner = TaskRunner("export", pool, self)
        self.runner.finished.connect(self._done)
        self.runner.failed.connect(self.failed)
        self._pending: dict = {}

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def choose_folder(self) -> Path | None:
        start = self.start_folder or self.last_folder
        folder = QFileDialog.getExistingDirectory(self.window, "Export into folder", start)
        return Path(folder) if folder else None

    def export(self, style: OverlayStyle, out_dir: Path | None = None) -> bool:
        """Start an export of the open image (asks for a folder when none is given); False if nothing to export."""
        document = self.document
        if document.path is None or document.image is None or document.mask is None or self.busy:
            return False
        out_dir = out_dir or self.choose_folder()
        if out_dir is None:
            return False
        self.last_folder = str(out_dir)
        self._pending = {
            "image_path": document.path,
            "image": document.image,
            "mask": document.mask.copy(),  # the mask as it is now, whatever the clinician does next
            "out_dir": out_dir,
            "provenance": document.provenance(),
            "calibration": document.calibration,
            "regions": document.regions,
            "style": style,
            "app_version": __version__,
        }
        self.runner.start(_export_task, False, self._pending)
        return True

    def _done(self, result: object) -> None:
        if isinstance(result, ExportExistsError):
            names = "\n".join(p.name for p in result.paths)
            answer = QMessageBox.question(
                self.window,
                "Overwrite the earlier export?",
                f"Overwrite the earlier export?\n\nThese files are already in {self._pending['out_dir']}:\n{names}",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.runner.start(_export_task, True, self._pending)
            else:
                self.declined.emit()
            return
        self.exported.emit(self._pending["image_path"], result)
