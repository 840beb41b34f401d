"""File > Batch segmentation: the engine of ``lesionlens segment`` behind a dialog.

Same :class:`BatchSegmenter`, same ``results.csv`` (:class:`ResultsTable`), so a folder segmented here and one
segmented on a server are interchangeable, and a batch started in one can be resumed in the other. The batch runs on
a worker thread; Cancel stops it after the image in progress (a mask on disk is always complete), and Resume runs it
again skipping the images whose mask is already there.

Reviewing the results: the table sorts by any column (numbers as numbers) and filters by what to show (flagged,
errors...) and by text; opening a row shows the batch's own mask in the editor (no second segmentation), with the
model and threshold that ``results.csv`` records for it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.workers import TaskContext, TaskRunner, new_pool
from segmentation.batch import (
    RESULTS_NAME,
    BatchInputError,
    BatchResult,
    BatchSegmenter,
    ResultsTable,
    check_output_folder,
    collect_inputs,
)
from segmentation.folderlock import output_folder_lock
from segmentation.imageio import SUPPORTED_EXTENSIONS
from segmentation.inference import Predictor
from segmentation.measurements import unit_label
from segmentation.provenance import ModelIdentity, result_provenance

COLUMNS = ("File", "Status", "Lesion area", "Estimated Dice", "Flags", "Error")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # a number to sort by, where the text would sort wrongly ("1,200 px²")
RESULT_ROLE = Qt.ItemDataRole.UserRole + 2  # index of the row's BatchResult
#: What the "Show" filter offers: label -> which results it keeps.
SHOW_FILTERS: dict[str, Callable[[BatchResult], bool]] = {
    "All results": lambda result: True,
    "Flagged (check first)": lambda result: is_flagged(result),
    "Not flagged": lambda result: result.ok and not is_flagged(result),
    "Errors": lambda result: result.status == "error",
    "Segmented in this run": lambda result: result.status == "ok",
    "Already done (skipped)": lambda result: result.status == "skipped",
}


def run_batch(
    context: TaskContext,
    predictor: Predictor,
    inputs: list[Path],
    out_dir: Path,
    *,
    threshold: float,
    overlay: bool,
    resume: bool,
    recursive: bool,
) -> dict:
    """The worker: segment everything, reporting ("total", n) first and then each BatchResult; returns counts."""
    items, problems = collect_inputs(inputs, recursive=recursive)
    context.progress(("total", len(items) + len(problems)))
    out_dir.mkdir(parents=True, exist_ok=True)
    segmenter = BatchSegmenter(predictor, out_dir, threshold=threshold, overlay=overlay, resume=resume)
    counts = {"ok": 0, "skipped": 0, "error": 0}
    with output_folder_lock(out_dir):  # FolderLockedError: another run writes there (shown as the failure)
        table = ResultsTable(out_dir / RESULTS_NAME, segmenter.provenance())
        results = segmenter.run(items, cancel=context.event, finished=table.finished())
        try:
            for result in itertools.chain(problems, results):
                counts[result.status] += 1
                table.add(result)
                context.progress(result)
        finally:
            table.save()
    done = sum(counts.values())
    return {**counts, "total": len(items) + len(problems), "cancelled": done < len(items) + len(problems)}


def is_flagged(result: BatchResult) -> bool:
    """Needs review: the estimated Dice is below the model's operating point ("no lesion found" and "lesion at the
    image border" are information, not a reason to check first)."""
    return result.needs_review


def area_value(result: BatchResult) -> float | None:
    """The lesion area as a number (mm² when calibrated, else px²), for sorting; None when there is none."""
    if result.measurements is not None:
        return float(result.measurements.area)
    return 0.0 if result.status == "ok" else None


def estimated_dice(result: BatchResult) -> float | None:
    return None if result.quality is None else result.quality.estimated_dice


class ResultItem(QTableWidgetItem):
    """A table cell that sorts by its SORT_ROLE number when it has one (cells without one sort last), else by
    its text, case-insensitively."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is not None or theirs is not None:
            if mine is None or theirs is None:
                return theirs is None and mine is not None
            return float(mine) < float(theirs)
        return self.text().casefold() < other.text().casefold()


def result_cells(result: BatchResult) -> list[str]:
    """The table row of one result: file, status, lesion area, estimated Dice, flags, error."""
    measured = result.measurements
    area = "" if measured is None else f"{measured.area:,.0f} {unit_label('area', measured.unit)}"
    if result.status == "ok" and not area:
        area = "0"
    flags = ", ".join(result.quality.labels()) if result.quality else ""
    status = {"ok": "segmented", "skipped": "already done", "error": "error"}[result.status]
    estimate = estimated_dice(result)
    return [result.item.source.name, status, area, "" if estimate is None else f"{estimate:.2f}", flags, result.error]


class BatchDialog(QDialog):
    """Non-modal: the clinician can keep editing while a folder is segmented."""

    openImage = Signal(Path)  # a row without a mask (an error): open the image as usual
    openMask = Signal(Path, Path, dict)  # image, the batch's mask for it, its provenance (model, threshold)
    resultAdded = Signal(object)  # BatchResult
    batchFinished = Signal(dict)

    def __init__(
        self,
        predictor: Callable[[], Predictor | None],
        *,
        threshold: float = 0.5,
        pool: QThreadPool | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch segmentation — LesionLens")
        self._predictor = predictor
        self.runner = TaskRunner("run the batch", pool or new_pool(1, self), self)
        self.runner.progress.connect(self._progress)
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self._failed)
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._results: list[BatchResult] = []
        self._run_provenance: dict = {}
        self._build(threshold)
        self._set_running(False)

    # -- layout --------------------------------------------------------------------------------------------------
    def _build(self, threshold: float) -> None:
        self.inputs = QListWidget(self)
        self.inputs.setMaximumHeight(90)
        self.inputs.setAccessibleName("Input folders and files")
        add_folder = QPushButton("Add folder…", self)
        add_files = QPushButton("Add images…", self)
        remove = QPushButton("Remove", self)
        add_folder.clicked.connect(self.choose_input_folder)
        add_files.clicked.connect(self.choose_input_files)
        remove.clicked.connect(lambda: [self.inputs.takeItem(self.inputs.row(i)) for i in self.inputs.selectedItems()])
        input_buttons = QVBoxLayout()
        for button in (add_folder, add_files, remove):
            input_buttons.addWidget(button)
        input_buttons.addStretch()
        input_row = QHBoxLayout()
        input_row.addWidget(self.inputs, 1)
        input_row.addLayout(input_buttons)

        self.output = QLineEdit(self)
        self.output.setPlaceholderText("Folder for masks and results.csv")
        choose_out = QPushButton("Choose…", self)
        choose_out.clicked.connect(self.choose_output_folder)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(choose_out)

        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(threshold)
        self.threshold.setMaximumWidth(90)
        self.overlay = QCheckBox("Also write overlay images", self)
        self.resume = QCheckBox("Skip images that already have a mask (resume)", self)
        self.recursive = QCheckBox("Include subfolders", self)
        options = QGroupBox("Options", self)
        option_form = QFormLayout(options)
        option_form.addRow("Threshold", self.threshold)
        option_form.addRow(self.overlay)
        option_form.addRow(self.resume)
        option_form.addRow(self.recursive)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.progress_bar = QProgressBar(self)
        self.progress_label = QLabel("Not started", self)
        self.review_first = QPushButton("Review first", self)
        self.review_first.setToolTip("Sort by the estimated Dice, lowest first: the masks that need review come first")
        self.review_first.clicked.connect(self.sort_review_first)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setToolTip("Double-click a row to open the image with the batch's mask in the editor")
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # in the order they came until a column is clicked
        header.setToolTip("Click a column to sort by it")
        self.table.cellDoubleClicked.connect(self._open_row)
        self.show_filter = QComboBox(self)
        self.show_filter.addItems(list(SHOW_FILTERS))
        self.show_filter.setAccessibleName("Which results to show")
        self.text_filter = QLineEdit(self)
        self.text_filter.setPlaceholderText("Filter by file name, status, flag or error…")
        self.text_filter.setClearButtonEnabled(True)
        self.filter_label = QLabel(self)
        self.show_filter.currentIndexChanged.connect(self.apply_filter)
        self.text_filter.textChanged.connect(self.apply_filter)
        filter_row = QHBoxLayout()
        filter_row.addWidget(QLabel("Show", self))
        filter_row.addWidget(self.show_filter)
        filter_row.addWidget(self.text_filter, 1)
        filter_row.addWidget(self.filter_label)
        filter_row.addWidget(self.review_first)

        self.start_button = QPushButton("Start", self)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Run again, skipping the images whose mask is already in the output folder")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop after the image in progress")
        self.open_out_button = QPushButton("Open output folder", self)
        close = QPushButton("Close", self)
        self.start_button.clicked.connect(lambda: self.start(resume=self.resume.isChecked()))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.cancel_button.clicked.connect(self.cancel)
        self.open_out_button.clicked.connect(self.open_output_folder)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.resume_button, self.cancel_button, self.open_out_button):
            buttons.addWidget(button)
        buttons.addStretch()
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Input", input_row)
        form.addRow("Output", output_row)
        layout.addLayout(form)
        layout.addWidget(options)
        layout.addWidget(self.message)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.progress_label)
        layout.addLayout(progress_row)
        layout.addLayout(filter_row)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.resize(760, 600)

    # -- inputs ----------------------------------------------------------------------------------------------
    def set_inputs(self, paths: list[Path]) -> None:
        self.inputs.clear()
        self.inputs.addItems([str(p) for p in paths])

    def input_paths(self) -> list[Path]:
        return [Path(self.inputs.item(i).text()) for i in range(self.inputs.count())]

    def set_output(self, folder: Path) -> None:
        self.output.setText(str(folder))

    def choose_input_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to segment")
        if folder:
            self.inputs.addItem(folder)
            if not self.output.text().strip():
                self.output.setText(str(Path(folder).with_name(Path(folder).name + "_masks")))

    def choose_input_files(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Images to segment", "", f"Images ({patterns})")
        self.inputs.addItems(files)

    def choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for masks and results.csv")
        if folder:
            self.output.setText(folder)

    # -- running -------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner.busy

    def start(self, *, resume: bool = False) -> bool:
        """Start the batch with the dialog's options; False (with a message) when it cannot start."""
        if self.running:
            return False
        predictor = self._predictor()
        inputs, out_text = self.input_paths(), self.output.text().strip()
        problem = ""
        if predictor is None:
            problem = "No model is loaded: choose a weights file first (File > Choose weights…)."
        elif not inputs:
            problem = "Add a folder or images to segment."
        elif not out_text:
            problem = "Choose an output folder."
        else:
            try:
                check_output_folder(
                    inputs, Path(out_text), allow_input_folder=False, recursive=self.recursive.isChecked()
                )
            except BatchInputError as error:
                problem = str(error)
        if problem:
            self._say(problem, error=True)
            return False
        self.resume.setChecked(resume)
        self._run_provenance = result_provenance(predictor.identity, threshold=self.threshold.value())
        self.table.setRowCount(0)
        self._results, self._total, self._done = [], 0, 0
        self._update_filter_label()
        self._started = time.perf_counter()
        self._say("")
        self.progress_label.setText("Starting…")
        self._set_running(True)
        self.runner.start(
            run_batch,
            predictor,
            inputs,
            Path(out_text),
            threshold=self.threshold.value(),
            overlay=self.overlay.isChecked(),
            resume=resume,
            recursive=self.recursive.isChecked(),
        )
        return True

    def cancel(self) -> None:
        """Stop after the image in progress; everything finished so far stays (and is in results.csv)."""
        if self.running:
            self.runner.request_stop()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText(f"Stopping after the current image… {self._count_text()}")

    def results(self) -> list[BatchResult]:
        return list(self._results)

    def _progress(self, value: object) -> None:
        if isinstance(value, tuple) and value[0] == "total":
            self._total = value[1]
            self.progress_bar.setRange(0, max(1, self._total))
            self.progress_bar.setValue(0)
            self.progress_label.setText(self._count_text())
            return
        result: BatchResult = value  # type: ignore[assignment]
        self._results.append(result)
        self._done += 1
        self.table.setSortingEnabled(False)  # rows must not move while one is being filled in
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate(result_cells(result)):
            item = ResultItem(text)
            item.setData(Qt.ItemDataRole.UserRole, str(result.item.source))
            item.setData(RESULT_ROLE, len(self._results) - 1)
            item.setToolTip(str(result.item.source) if column == 0 else text)
            review = column == COLUMNS.index("Flags") and result.needs_review
            if result.status == "error" or review:
                item.setForeground(Qt.GlobalColor.darkRed)
            self.table.setItem(row, column, item)
        area, first = self.table.item(row, COLUMNS.index("Lesion area")), self.table.item(row, 0)
        if area is not None:
            area.setData(SORT_ROLE, area_value(result))
        estimate = estimated_dice(result)
        if estimate is not None:  # sorts by the number; rows without an estimate sort last
            self.table.item(row, COLUMNS.index("Estimated Dice")).setData(SORT_ROLE, estimate)
        self.table.setSortingEnabled(True)  # sorts again by the column the clinician chose, if any
        self._filter_row(self.table.row(first))
        self._update_filter_label()
        if self.table.horizontalHeader().sortIndicatorSection() < 0:
            self.table.scrollToBottom()
        self.progress_bar.setValue(self._done)
        if self.cancel_button.isEnabled():
            self.progress_label.setText(self._count_text())
        self.resultAdded.emit(result)

    def sort_review_first(self) -> None:
        """Review-first order: the lowest estimated Dice first, so every mask that needs review (an estimate below
        the model's operating point) comes before the rest; rows without an estimate (errors) come last."""
        self.table.sortItems(COLUMNS.index("Estimated Dice"), Qt.SortOrder.AscendingOrder)

    def _count_text(self) -> str:
        text = f"{self._done} / {self._total} images"
        if 0 < self._done < self._total:
            elapsed = time.perf_counter() - self._started
            remaining = round(elapsed / self._done * (self._total - self._done))
            text += f" · about {remaining // 60}:{remaining % 60:02d} left"
        return text

    def _finished(self, summary: dict) -> None:
        self._set_running(False)
        text = (
            f"{summary['ok'] + summary['skipped']} of {summary['total']} images done "
            f"({summary['ok']} segmented, {summary['skipped']} already done), {summary['error']} failed."
        )
        if summary["cancelled"]:
            text = f"Cancelled. {text} Press Resume to do the rest."
        self.progress_label.setText(f"{self._done} / {self._total} images")
        self._say(f"{text} Results: {Path(self.output.text().strip()) / RESULTS_NAME}", error=summary["error"] > 0)
        self.batchFinished.emit(summary)

    def _failed(self, message: str) -> None:
        self._set_running(False)
        self._say(f"The batch stopped: {message}", error=True)
        self.batchFinished.emit({"ok": 0, "skipped": 0, "error": 1, "total": self._total, "cancelled": True})

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #a4262c;" if error else "")

    # -- reviewing the results -----------------------------------------------------------------------------------
    def result_at(self, row: int) -> BatchResult | None:
        item = self.table.item(row, 0)
        return None if item is None else self._results[item.data(RESULT_ROLE)]

    def apply_filter(self) -> None:
        """Hide the rows the "Show" choice and the text filter leave out."""
        for row in range(self.table.rowCount()):
            self._filter_row(row)
        self._update_filter_label()

    def visible_rows(self) -> list[int]:
        return [row for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    def _filter_row(self, row: int) -> None:
        result = self.result_at(row)
        if result is None:
            return
        keep = SHOW_FILTERS[self.show_filter.currentText()](result)
        needle = self.text_filter.text().strip().casefold()
        if keep and needle:
            cells = (self.table.item(row, column) for column in range(self.table.columnCount()))
            keep = any(needle in cell.text().casefold() for cell in cells if cell is not None)
        self.table.setRowHidden(row, not keep)

    def _update_filter_label(self) -> None:
        shown, total = len(self.visible_rows()), self.table.rowCount()
        self.filter_label.setText(f"showing {shown} of {total}" if shown != total else "")

    def _open_row(self, row: int, _column: int) -> None:
        """Open the row's image with the mask the batch wrote (no second segmentation); an error row opens the
        image as usual, so the clinician sees what is wrong with it."""
        result = self.result_at(row)
        if result is None:
            return
        source = result.item.source
        if result.mask_path is not None and result.status in ("ok", "skipped"):
            self.openMask.emit(source, result.mask_path, self._provenance_of(source, result))
        else:
            self.openImage.emit(source)

    def _provenance_of(self, source: Path, result: BatchResult) -> dict:
        """Model (with device and backend) and threshold of the run that wrote the mask: this run's, or for a skipped
        image (its mask is from an earlier run, possibly with another model) what results.csv records for it."""
        row = dict(self._run_provenance)
        if result.status != "ok":
            results = Path(self.output.text().strip()) / RESULTS_NAME
            try:
                row = ResultsTable(results, {}).rows.get(str(source), {})
            except (OSError, ValueError):
                row = {}
        try:
            threshold = float(row["threshold"]) if row.get("threshold") not in (None, "") else None
        except ValueError:
            threshold = None
        return {**ModelIdentity.from_record(row).record(), "threshold": threshold}

    def open_output_folder(self) -> bool:
        """Open the output folder in the file manager; say so (and where it is) when that cannot be done."""
        text = self.output.text().strip()
        if not text:
            self._say("Choose an output folder first.", error=True)
            return False
        folder = Path(text)
        if not folder.is_dir():
            self._say(f"The output folder {folder} does not exist yet: it is made when the batch starts.", error=True)
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._say(
                f"Could not open the folder: no file manager is available here. The masks and {RESULTS_NAME} are "
                f"in {folder}",
                error=True,
            )
            return False
        return True
