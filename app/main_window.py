"""The LesionLens main window: opens images, runs the model off the GUI thread, and wires the panels to the document.

The window is glue. State lives in :class:`LesionDocument`; drawing and editing in :class:`LesionCanvas`; slow work
in :mod:`app.workers`; autosave and export in :mod:`app.persistence` and :mod:`app.exporting`. The flow for one
image: load (thread) -> restore autosaved edits -> segment (thread) -> measure (thread, debounced) -> autosave
(thread, debounced) -> export on request.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QFileDialog, QLineEdit, QMainWindow, QWidget

from app.about import AboutDialog
from app.actions import ShortcutsDialog, is_shortcut, new_action, shortcut_text
from app.assist import AssistController
from app.batch_dialog import BatchDialog
from app.calibration import CalibrationController
from app.canvas import LesionCanvas
from app.document import LesionDocument
from app.editing import CleanupController
from app.exporting import ExportController
from app.folder_panel import FolderPanel, images_in
from app.folder_states import EDITED, EXPORTED, NOT_SEGMENTED, FolderStates
from app.layout import build_layout, build_menus, first_window_size
from app.model_state import ModelController
from app.panels import colour_to_hex, flags_kind, flags_text, hex_to_colour
from app.persistence import AutosaveController, saved_time, window_settings
from app.preferences import PreferencesDialog
from app.settings import MAX_EXPORT_FOLDERS, MAX_EXPORTED_INTO, Settings, app_data_dir, load_settings, save_settings
from app.startup import install_excepthook, parse_args, setup_logging
from app.tools import TOOL_BEHAVIOURS, Tool
from app.workers import TaskRunner, analyse_task, folder_quality_task, load_image_task, new_pool, segment_task
from segmentation.autosave import SavedState
from segmentation.export import OverlayStyle, exported_images
from segmentation.imageio import SUPPORTED_EXTENSIONS, ImageReadError, OutputWriteError, read_mask
from segmentation.inference import Predictor
from segmentation.postprocess import CLEANUP_STEPS
from segmentation.resources import app_icon_path, samples_dir

log = logging.getLogger("lesionlens.gui")
SAMPLE_NAME = "ISIC_0014572.jpg"
ANALYSIS_DELAY_MS = 150
KEY_EVENTS = (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
DROP_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)
TOOLS = {"tool_navigate": Tool.NAVIGATE, "tool_brush": Tool.BRUSH, "tool_eraser": Tool.ERASER,
         "tool_vertices": Tool.VERTICES, "tool_assist": Tool.ASSIST, "tool_box": Tool.BOX,
         "tool_calibrate": Tool.CALIBRATE}  # fmt: skip


class MainWindow(QMainWindow):
    """The editor window. Signals let tests (and the screenshot script) wait for work without sleeping."""

    imageLoaded = Signal(Path)
    segmented = Signal(Path)
    analysed = Signal()
    modelLoaded = Signal(bool)  # True: a predictor is ready; False: segmentation is off (see ``model.problem``)

    def __init__(
        self, *, weights: Path | None = None, device: str | None = None, settings_path: Path | None = None
    ) -> None:
        super().__init__()
        self.settings_path = settings_path
        self.settings: Settings = load_settings(settings_path)
        self.document = LesionDocument(self)
        self.canvas = LesionCanvas(self.document)
        self.pools = {name: new_pool(n, self) for name, n in (("io", 2), ("model", 1), ("analysis", 1))}
        self.loader = TaskRunner("open the image", self.pools["io"], self)
        self.segmenter = TaskRunner("segment the image", self.pools["model"], self)
        self.analyser = TaskRunner("measure the lesion", self.pools["analysis"], self)
        # the open folder, segmented in the background on the model's one thread: the shown image's own
        # segmentation waits for at most one background image
        self.folder_segmenter = TaskRunner("segment the folder", self.pools["model"], self)
        self._folder_queue: list[Path] = []
        self.autosave = AutosaveController(self.document, app_data_dir() / "autosave", self)
        self.exporter = ExportController(self.document, self.pools["io"], self)
        self.cleanup = CleanupController(self.document, self.pools["analysis"], self)
        self.assist = AssistController(self.document, lambda: self.predictor, self.pools["model"], self)
        self.folder_states = FolderStates(self.document, self)  # the open folder's states, fed by the document
        self.folder_panel = FolderPanel(self.folder_states, self)
        self.batch_dialog: BatchDialog | None = None
        self.last_error = ""
        self._pending_segment = False
        self._next_after_export = False
        self._restore_dismissed: set[Path] = set()  # images whose "restored your edits" banner was dismissed
        self._opening: Path | None = None
        self._batch_mask: tuple[Path, Path, dict] | None = None  # (image, mask file, provenance) to show on load
        self._failed: Path | None = None  # the image that could not be opened: PgDown/N go on from it
        self._analysis_timer = QTimer(self, singleShot=True, interval=ANALYSIS_DELAY_MS)
        self._analysis_timer.timeout.connect(self._start_analysis)
        self._settings_timer = QTimer(self, singleShot=True, interval=1000)
        self._settings_timer.timeout.connect(self.save_settings)
        self.named_actions: dict[str, QAction] = {}
        ui = build_layout(self, self.canvas, self.folder_panel)  # panels, banners, docks, status bar
        self.status, self.lesion_dock = ui.status, ui.lesion_dock
        self.weights_banner, self.message_banner = ui.weights_banner, ui.message_banner
        self.restore_banner, self.flags_banner = ui.restore_banner, ui.flags_banner
        self.overlay_panel, self.calibration_box = ui.overlay_panel, ui.calibration_box
        self.measurements_panel, self.assist_panel = ui.measurements_panel, ui.assist_panel
        self.model = ModelController(self.settings, self.pools["io"], self.status, self.weights_banner, self)
        self.calibration = CalibrationController(self.document, self.calibration_box, parent=self)
        self._create_actions()
        self.toolbar = build_menus(self, self.named_actions, (self.folder_panel, self.lesion_dock))
        self._connect()
        self._apply_settings()
        self.setWindowTitle("LesionLens")
        state = window_settings()
        if not self.restoreGeometry(state.value("geometry", b"")):
            self.resize(first_window_size(self.screen().availableGeometry().size()))
        self.restoreState(state.value("state", b""))
        self.folder_panel.hide()  # until a folder is opened, whatever the last session showed
        self.exporter.last_folder = (self.settings.exported_into or [""])[-1]  # the newest
        self._update_actions()
        self.load_model(weights, device)

    # -- set-up --------------------------------------------------------------------------------------------------
    def _create_actions(self) -> None:
        a, doc = self.named_actions, self.document
        for name, slot in (
            ("open", self.choose_files), ("open_folder", self.choose_folder), ("export", self.export),
            ("export_to", self.export_to), ("export_next", self.export_and_next),
            ("brush_smaller", lambda: self.canvas.step_brush(-1)), ("brush_larger", lambda: self.canvas.step_brush(1)),
            ("batch", self.show_batch_dialog), ("choose_weights", self.model.choose), ("quit", self.close),
            ("next_image", lambda: self.step_image(1)), ("previous_image", lambda: self.step_image(-1)),
            ("segment", self.segment), ("cancel", self.cancel_segmentation),
            ("reset_mask", doc.reset_to_model), ("zoom_in", lambda: self.canvas.zoom_by(1.25)),
            ("zoom_out", lambda: self.canvas.zoom_by(0.8)), ("zoom_fit", self.canvas.zoom_to_fit),
            ("zoom_actual", self.canvas.zoom_actual_size), ("set_calibration", self.calibration.enter),
            ("clear_calibration", lambda: self.calibration.set(None)), ("help", self.show_shortcuts),
            ("about", self.show_about), ("preferences", self.show_preferences),
        ):  # fmt: skip
            a[name] = new_action(self, name, slot)
        for name in CLEANUP_STEPS:
            a[name] = new_action(self, name, lambda _=False, s=name: self.cleanup.run(s))
        a["undo"] = new_action(self, "undo", action=doc.undo_group.createUndoAction(self, "Undo"))
        a["redo"] = new_action(self, "redo", action=doc.undo_group.createRedoAction(self, "Redo"))
        group = QActionGroup(self)
        for name, tool in TOOLS.items():
            a[name] = new_action(self, name, checkable=True, checked=tool is Tool.NAVIGATE)
            a[name].triggered.connect(lambda _=False, t=tool: self.set_tool(t))
            group.addAction(a[name])
        a["review_first"] = new_action(self, "review_first", self.folder_panel.set_review_first, checkable=True)
        self.folder_panel.review_first.toggled.connect(a["review_first"].setChecked)
        a["toggle_fill"] = new_action(self, "toggle_fill", lambda on: self._set_style(fill=on), checkable=True)
        a["toggle_boundary"] = new_action(
            self, "toggle_boundary", lambda on: self._set_style(boundary=on), checkable=True
        )
        self.status.cancel_button.setDefaultAction(a["cancel"])
        self.weights_banner.button.clicked.connect(self.model.choose)
        self.restore_banner.button.clicked.connect(self._dismiss_restore_banner)
        self.addActions(list(a.values()))  # shortcuts work with the menu bar hidden too

    def _connect(self) -> None:
        doc, canvas = self.document, self.canvas
        doc.maskChanged.connect(self._mask_changed)
        doc.segmentationChanged.connect(self._update_actions)
        canvas.cursorMoved.connect(self.status.set_position)
        canvas.zoomChanged.connect(self.status.set_zoom)
        canvas.brushRadiusChanged.connect(lambda r: self.remember(brush_screen_radius=r))
        canvas.assistClicked.connect(self.assist.click)
        canvas.boxDrawn.connect(self.assist.resegment)
        canvas.calibrationLineDrawn.connect(self.calibration.line_drawn)
        doc.calibrationChanged.connect(self._calibration_changed)
        self.calibration.toolRequested.connect(self.set_tool)
        self.calibration.message.connect(self.status.say)
        self.calibration.failed.connect(self.show_error)
        self.model.weightsChosen.connect(self._weights_chosen)
        self.assist.done.connect(self.status.say)
        self.assist_panel.settingsChanged.connect(self._assist_settings_changed)
        QApplication.instance().installEventFilter(self)  # keys, whichever widget has the focus
        canvas.viewport().installEventFilter(self)  # drops: the view would take them for its scene
        self.setAcceptDrops(True)
        self.overlay_panel.styleChanged.connect(self._style_changed)
        self.overlay_panel.thresholdChanged.connect(self._threshold_changed)
        self.folder_panel.imageActivated.connect(self.open_image)
        self.loader.finished.connect(self._image_loaded)
        self.loader.failed.connect(self._image_failed)
        self.model.loaded.connect(self._model_ready)
        self.segmenter.finished.connect(self._segmented)
        self.segmenter.failed.connect(lambda message: self.show_error(f"Segmentation failed: {message}"))
        self.segmenter.cancelled.connect(lambda: self.status.say("Segmentation cancelled; the image is yours."))
        self.analyser.finished.connect(self._analysis_done)
        self.analyser.progress.connect(self._measured)
        self.analyser.failed.connect(self._analysis_failed)
        self.measurements_panel.regionsChanged.connect(self.document.set_regions)
        self.folder_segmenter.finished.connect(self._folder_image_done)
        self.folder_segmenter.failed.connect(self._folder_image_failed)
        self.autosave.failed.connect(self.show_error)
        self.cleanup.done.connect(self.status.say)
        self.exporter.exported.connect(self._exported)
        self.exporter.failed.connect(self._export_failed)
        self.exporter.declined.connect(self._export_declined)
        for runner, key, text in (
            (self.loader, "open", "Opening the image…"),
            (self.model.runner, "model", "Loading the model…"),
            (self.segmenter, "segment", "Segmenting…"),
            (self.exporter.runner, "export", "Exporting…"),
            (self.cleanup.runner, "cleanup", "Cleaning up the mask…"),
            (self.assist.runner, "box", "Re-segmenting the box…"),
        ):
            runner.busyChanged.connect(
                lambda busy, k=key, t=text: self.status.begin_busy(k, t) if busy else self.status.end_busy(k)
            )
            runner.busyChanged.connect(self._update_actions)

    def _apply_settings(self) -> None:
        s = self.settings
        style = OverlayStyle(hex_to_colour(s.overlay_colour), s.overlay_opacity, s.show_fill, s.show_boundary)
        self.overlay_panel.set_style(style)
        self._style_changed(style, save=False)
        self.overlay_panel.set_threshold(s.threshold)
        self.document.threshold = s.threshold
        self.canvas.set_brush_radius(s.brush_screen_radius)

    # -- the model -------------------------------------------------------------------------------------------------
    @property
    def predictor(self) -> Predictor | None:
        return self.model.predictor

    def load_model(self, weights: Path | None = None, device: str | None = None) -> None:
        """Load a model in the background; a new model segments the open image again."""
        self._pending_segment = self.document.image is not None
        self.model.load(weights, device)
        self._update_actions()

    def _weights_chosen(self, path: Path) -> None:
        self.remember(weights=str(path))
        self.load_model(path)

    def _model_ready(self, ok: bool) -> None:
        if ok:
            self.autosave.model_sha256 = self.predictor.weights_sha256
        self._update_actions()
        self.modelLoaded.emit(ok)
        if ok and self.document.image is not None and self._pending_segment:
            self.segment()
        if ok and self.folder_panel.paths():  # a new model: its own estimates for the whole folder
            self.folder_states.forget_estimates()
            self.segment_folder(self.folder_panel.paths(), first=self.document.path)

    # -- opening ---------------------------------------------------------------------------------------------------
    def open_paths(self, paths: list[Path]) -> None:
        """Files and folders from the command line, a dialog or a drop: list them and open the first."""
        images: list[Path] = []
        for path in map(Path, paths):
            try:
                images += images_in(path) if path.is_dir() else [path]
            except OSError as error:
                reason = "permission denied" if isinstance(error, PermissionError) else error.strerror or str(error)
                self.show_error(f"Cannot open the folder {path}: {reason}.")
                return
            self.remember(last_folder=str(path if path.is_dir() else path.parent))
        if not images:
            self.show_error("No images there (LesionLens opens JPEG, PNG, BMP and TIFF files).")
            return
        listed = self.folder_panel.paths()
        if len(images) > 1 or any(Path(p).is_dir() for p in paths):
            if images != listed:
                self.document.forget_histories()  # undo histories are kept while their folder is open
            folders = self.settings.exported_into  # every folder this user exported into
            exported = {image for folder in folders for image in exported_images(folder)}
            self.folder_states.set_paths(images, {p: self._initial_state(p, exported) for p in images})
            self.folder_panel.show()
            self.segment_folder(images, first=images[0])
        elif images[0] not in listed:  # one file from elsewhere: the list would be misleading
            self.folder_states.set_paths([])
            self.folder_panel.hide()
            self.segment_folder([])
        self.open_image(images[0])

    def open_image(self, path: Path) -> None:
        """Open ``path`` (decoded off the GUI thread); the edits on the current image are saved first."""
        path = Path(path)
        if path == self.document.path and self._opening is None:
            return
        self.autosave.save_now()
        if self._batch_mask is not None and self._batch_mask[0] != path:
            self._batch_mask = None  # the clinician moved on before the batch's image opened
        superseded, self._opening = self._opening, path
        if superseded != path:
            self._requeue_unestimated(superseded)  # left before it even opened
        self.folder_panel.select(path)
        self.loader.start(load_image_task, path)

    def _image_loaded(self, result: object) -> None:
        path, image = result  # type: ignore[misc]
        self._opening = self._failed = None
        self.message_banner.hide()
        self.flags_banner.hide()
        previous = self.document.path
        self.document.open_image(path, image)
        self._requeue_unestimated(previous)
        self.document.set_threshold(self.settings.threshold)  # the next image starts from the remembered one
        with self.folder_states.restoring():  # restoring is not a new edit: an exported image stays exported
            restored = self.autosave.restore()
        self.overlay_panel.set_threshold(self.document.threshold)
        self._show_restore_banner(path, restored)
        batch_mask = self._batch_mask if self._batch_mask is not None and self._batch_mask[0] == path else None
        if batch_mask is not None:
            self._batch_mask = None
        if batch_mask is not None and self._show_batch_mask(*batch_mask, restored):
            self.setWindowTitle(f"{path.name}[*] — LesionLens")
            self._show_export_folder()
            self._update_actions()
            self.imageLoaded.emit(path)
            return  # the batch's mask, not a second segmentation
        self.setWindowTitle(f"{path.name}[*] — LesionLens")
        self._show_export_folder()
        self.imageLoaded.emit(path)
        self.segment()

    def open_batch_mask(self, image: Path, mask: Path, source: dict) -> None:
        """Open ``image`` showing the mask a batch wrote for it (from the batch's results table), without running
        the model; the clinician's own autosaved edits of the image still win."""
        image = Path(image)
        if image == self.document.path and self._opening is None:
            if not self._show_batch_mask(image, Path(mask), source, None):
                self.segment()
            return
        self._batch_mask = (image, Path(mask), source)
        self.open_paths([image])

    def _show_batch_mask(self, image: Path, mask_path: Path, source: dict, restored: SavedState | None) -> bool:
        """Load the batch's mask into the document; False (with the reason shown) when it cannot be used."""
        doc = self.document
        if (restored is not None and restored.edited) or doc.edited:
            self.status.say("Your own edits of this image are kept; the batch's mask was not loaded.")
            return True
        height, width = doc.image.shape[:2]
        try:
            mask = read_mask(mask_path, max_megapixels=height * width / 1e6 + 1)
        except ImageReadError as error:
            self.show_error(f"Cannot use the batch's mask: {error}. Segmenting the image instead.")
            return False
        if mask.shape != (height, width):
            self.show_error(
                f"The batch's mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                f"{width}x{height}: the image changed after the batch. Segmenting the image instead."
            )
            return False
        doc.load_mask(mask, source)
        self.overlay_panel.set_threshold(doc.threshold)
        self.folder_states.mask_shown(image)
        model = source.get("model") or "an unrecorded model"
        self.status.say(f"Showing the batch's mask {mask_path.name} (by {model}); Segment again runs the model.", 0)
        return True

    def _show_restore_banner(self, path: Path, restored: SavedState | None) -> None:
        """Say, over the image and until dismissed, that its edits came back from the autosave and when they were
        made (not when the image was left); an image without restored edits shows no such banner."""
        if restored is None or not restored.edited or path in self._restore_dismissed:
            self.restore_banner.hide()
            return
        when = saved_time(restored.edited_at or restored.saved_at)
        self.restore_banner.show_message(
            f"Restored your edits from {when} (saved automatically). Edit > Reset to the model's mask discards them.",
            "info",
        )

    def _dismiss_restore_banner(self) -> None:
        if self.document.path is not None:
            self._restore_dismissed.add(self.document.path)
        self.restore_banner.hide()

    def _image_failed(self, message: str) -> None:
        path, self._opening = self._opening, None
        self._failed = path
        self.show_error(f"Cannot open the image. {message}")
        self.folder_states.cannot_open(path)
        if self.document.path is not None:
            self.folder_panel.select(self.document.path)

    def step_image(self, step: int) -> None:
        target = self.folder_panel.neighbour(self._opening or self._failed or self.document.path, step)
        if target is None:
            self.status.say("No next image." if step > 0 else "No previous image.")
        else:
            self.open_image(target)

    def choose_files(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self.settings.last_folder, f"Images ({patterns});;All files (*)"
        )
        if files:
            self.open_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([Path(folder)])

    def _initial_state(self, path: Path, exported: set[Path]) -> str:
        """Exported when an export folder's own ownership record lists an intact exported mask of this image."""
        if Path(os.path.abspath(path)) in exported:
            return EXPORTED
        return EDITED if self.autosave.has(path) else NOT_SEGMENTED

    # -- segmentation ----------------------------------------------------------------------------------------
    def segment(self) -> None:
        """Run the model on the open image in the background (an edited mask is kept; see document)."""
        doc = self.document
        if doc.image is None:
            return
        if self.predictor is None:
            self._pending_segment = self.model.runner.busy
            return
        self._pending_segment = False
        self.segmenter.start(segment_task, self.predictor, doc.path, doc.image)

    def cancel_segmentation(self) -> None:
        """Esc: stop the segmentation or the box re-segmentation in progress."""
        self.segmenter.cancel()
        self.assist.cancel()

    def _segmented(self, result: object) -> None:
        path, segmentation = result  # type: ignore[misc]
        if path != self.document.path or self.document.image is None:
            return  # the user moved on (its image is put back in the folder's queue: _requeue_unestimated)
        self.document.set_segmentation(segmentation)  # the folder list follows (app.folder_states)
        self._update_actions()
        self.segmented.emit(path)

    # -- the open folder, in the background -------------------------------------------------------------------
    def segment_folder(self, paths: list[Path], *, first: Path | None = None) -> None:
        """Segment every listed image in the background, after ``first`` (the shown one, segmented as it opens), so
        the list fills with estimated Dice; the clinician's edits and exports are never touched."""
        self.folder_segmenter.cancel()
        start = paths.index(first) + 1 if first in paths else 0
        self._folder_queue = [p for p in paths[start:] + paths[:start] if p != first]
        self._segment_next_in_folder()

    def _segment_next_in_folder(self) -> None:
        if self.folder_segmenter.busy or self.predictor is None:
            return  # the model's arrival starts it again
        while self._folder_queue:
            path = self._folder_queue.pop(0)
            if self.folder_states.needs_estimate(path):  # never the clinician's edits
                self.folder_segmenter.start(folder_quality_task, self.predictor, path, self.document.threshold)
                return

    def _requeue_unestimated(self, path: Path | None) -> None:
        """An image the clinician left before it opened or before its segmentation came back goes first in the
        background queue (it was left out of it as the shown image), so the list still fills with its estimate."""
        if path is not None and path in self.folder_states.paths() and self.folder_states.needs_estimate(path):
            self._folder_queue = [path, *(p for p in self._folder_queue if p != path)]
            self._segment_next_in_folder()

    def _folder_image_done(self, result: object) -> None:
        path, quality = result  # type: ignore[misc]
        self.folder_states.estimated(path, quality)
        QTimer.singleShot(0, self._segment_next_in_folder)

    def _folder_image_failed(self, message: str) -> None:
        log.info("background segmentation: %s", message)
        QTimer.singleShot(0, self._segment_next_in_folder)

    # -- document changes --------------------------------------------------------------------------------------
    def _mask_changed(self) -> None:
        doc = self.document
        self.schedule_analysis()
        self.autosave.schedule()
        self.setWindowModified(doc.edited)  # the folder list follows by itself (app.folder_states)
        self._update_actions()

    def _calibration_changed(self) -> None:
        self.measurements_panel.set_regions(self.document.regions)
        self.measurements_panel.set_calibration(self.document.calibration)
        self.schedule_analysis()
        self.autosave.schedule()

    def schedule_analysis(self) -> None:
        """Measure and flag the mask 150 ms after the last change, so a burst of changes is measured once; the
        panel says "Updating…" from the change until the new numbers are in."""
        self.measurements_panel.set_updating(True)
        self._analysis_timer.start()

    def _start_analysis(self) -> None:
        doc = self.document
        if doc.mask is None or doc.image is None:
            self.measurements_panel.show_measurements(None, doc.calibration)
            return
        self.analyser.start(analyse_task, doc.path, doc.snapshot(), doc.image, doc.mm_per_pixel, doc.regions)

    def _analysis_done(self, result: object) -> None:
        path, measurements, flags = result  # type: ignore[misc]
        if path != self.document.path:
            return
        self.measurements_panel.show_measurements(measurements, self.document.calibration)
        self.measurements_panel.show_quality(flags)
        text = flags_text(flags)
        self.flags_banner.show_message(text, flags_kind(flags)) if text else self.flags_banner.hide()
        self.folder_states.set_state(path, None, flags)
        self.analysed.emit()

    def _measured(self, result: object) -> None:
        """The measurements, ahead of the confidence flags of the same analysis."""
        path, measurements = result  # type: ignore[misc]
        if path == self.document.path:
            self.measurements_panel.show_measurements(measurements, self.document.calibration)

    def _analysis_failed(self, message: str) -> None:
        self.measurements_panel.show_measurements(None, self.document.calibration)
        self.status.say(message)

    def _threshold_changed(self, threshold: float) -> None:
        self.remember(threshold=threshold)
        self.document.set_threshold(threshold)

    def _update_actions(self, *_: object) -> None:
        doc, a = self.document, self.named_actions
        if not a:
            return
        has_mask, can_segment = doc.mask is not None, self.predictor is not None and doc.image is not None
        a["segment"].setEnabled(can_segment and not self.segmenter.busy)
        a["cancel"].setEnabled(self.segmenter.busy or self.assist.busy)
        for name in ("export", "export_to", "export_next"):
            a[name].setEnabled(has_mask and not self.exporter.busy)
        a["reset_mask"].setEnabled(doc.segmentation is not None and doc.edited)
        for name in CLEANUP_STEPS:
            a[name].setEnabled(has_mask and not self.cleanup.busy)
        self.overlay_panel.set_threshold_usable(doc.segmentation is not None, doc.edited)

    # -- overlay and tools -------------------------------------------------------------------------------------------
    def _style_changed(self, style: OverlayStyle, *, save: bool = True) -> None:
        self.canvas.set_overlay_style(style)
        for name, on in (("toggle_fill", style.fill), ("toggle_boundary", style.boundary)):
            if name in self.named_actions:
                self.named_actions[name].blockSignals(True)
                self.named_actions[name].setChecked(on)
                self.named_actions[name].blockSignals(False)
        if save:
            colour = colour_to_hex(style.colour)
            self.remember(overlay_colour=colour, overlay_opacity=style.opacity, show_fill=style.fill,
                          show_boundary=style.boundary)  # fmt: skip

    def _set_style(self, **changes: object) -> None:
        style = replace(self.overlay_panel.style, **changes)
        self.overlay_panel.set_style(style)
        self._style_changed(style)

    def set_tool(self, tool: Tool) -> None:
        self.canvas.set_tool(tool)
        self.named_actions[next(name for name, t in TOOLS.items() if t is tool)].setChecked(True)
        behaviour = TOOL_BEHAVIOURS[tool]
        self.assist_panel.setVisible(behaviour.uses_assist_panel)
        if behaviour.hint:
            self.status.say(behaviour.hint)

    def _assist_settings_changed(self, settings: object, keep_outside: bool) -> None:
        self.assist.settings, self.assist.keep_outside = settings, keep_outside

    # -- export, batch, dialogs ----------------------------------------------------------------------------------
    def export_folder_for(self, image: Path) -> Path | None:
        """The export folder remembered for the folder ``image`` is in; None if none yet or it is gone."""
        folder = self.settings.export_folders.get(str(Path(image).parent))
        return Path(folder) if folder and Path(folder).is_dir() else None

    def export(self, out_dir: Path | None = None) -> bool:
        """File > Export: into the export folder remembered for this image's folder, without a dialog; the folder is
        asked for only the first time (or when it is gone). Exports in the background."""
        doc = self.document
        if doc.path is None:
            return False
        out_dir = out_dir if isinstance(out_dir, Path) else self.export_folder_for(doc.path)
        self.exporter.start_folder = str(self.export_folder_for(doc.path) or self.exporter.last_folder)
        return self.exporter.export(self.overlay_panel.style, out_dir)

    def export_to(self) -> bool:
        """File > Export to folder…: choose another folder; it is remembered for this image's folder."""
        if self.document.path is None or self.document.mask is None:
            return False
        self.exporter.start_folder = str(self.export_folder_for(self.document.path) or self.exporter.last_folder)
        folder = self.exporter.choose_folder()
        return folder is not None and self.export(folder)

    def export_and_next(self) -> bool:
        """Export (as File > Export), then open the next image once the files are written."""
        self._next_after_export = self.export()
        return self._next_after_export

    def _exported(self, path: Path, written: dict) -> None:
        out_dir = self.exporter.last_folder
        folders = {k: v for k, v in self.settings.export_folders.items() if k != str(path.parent)}
        folders[str(path.parent)] = out_dir  # newest last; the oldest are forgotten first
        into = [folder for folder in self.settings.exported_into if folder != out_dir] + [out_dir]
        self.remember(
            export_folders=dict(list(folders.items())[-MAX_EXPORT_FOLDERS:]), exported_into=into[-MAX_EXPORTED_INTO:]
        )
        self.save_settings()  # at once: another window (or a crash) must know where the exports are
        self._show_export_folder()
        self.folder_states.exported(path)
        self.status.say(f"Exported {len(written)} files to {out_dir}.")
        if self._next_after_export:
            self._next_after_export = False
            self.step_image(1)

    def _export_failed(self, message: str) -> None:
        self._next_after_export = False
        self.show_error(f"Export failed: {message}")

    def _export_declined(self) -> None:
        self._next_after_export = False
        self.status.say("Export cancelled; the earlier export was kept.")

    def _show_export_folder(self) -> None:
        """The Export action says where it writes (tooltip and status tip), so a dialog is not needed to know."""
        folder = self.export_folder_for(self.document.path) if self.document.path is not None else None
        where = f"into {folder}" if folder else "(asks for a folder the first time)"
        for name in ("export", "export_next"):
            action = self.named_actions[name]
            action.setStatusTip(f"{action.text()} {where}")
            action.setToolTip(f"{action.text()} {where} ({shortcut_text(name)})")

    def show_batch_dialog(self) -> BatchDialog:
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(lambda: self.predictor, threshold=self.settings.threshold, parent=self)
            self.batch_dialog.openImage.connect(lambda path: self.open_paths([path]))
            self.batch_dialog.openMask.connect(self.open_batch_mask)
            if self.settings.last_folder:
                self.batch_dialog.set_inputs([Path(self.settings.last_folder)])
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def show_preferences(self) -> PreferencesDialog:
        """Edit > Preferences: OK applies and saves them at once."""
        dialog = PreferencesDialog(self.settings, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.values()))
        return self._show(dialog)

    def apply_preferences(self, values: dict) -> None:
        """Apply preference values (keys of ``PREFERENCE_KEYS``): the overlay and brush at once, the threshold to the
        open image unless its mask was edited, a new device or CPU engine by loading the model again."""
        reload = (values["device"], values["backend"]) != (self.settings.device, self.settings.backend)
        self.remember(**values)
        self.save_settings()
        s = self.settings
        style = OverlayStyle(hex_to_colour(s.overlay_colour), s.overlay_opacity, s.show_fill, s.show_boundary)
        self.overlay_panel.set_style(style)
        self._style_changed(style, save=False)
        self.canvas.set_brush_radius(s.brush_screen_radius)
        self.document.set_threshold(s.threshold)
        self.overlay_panel.set_threshold(self.document.threshold)
        if self.batch_dialog is not None and not self.batch_dialog.running:
            self.batch_dialog.threshold.setValue(s.threshold)
        if reload:  # the same weights file as now (it may have come from --weights), on the new device / engine
            current = self.predictor.weights_path if self.predictor is not None else None
            self.load_model(current, s.device)

    def show_shortcuts(self) -> ShortcutsDialog:
        return self._show(ShortcutsDialog(self.named_actions, self))

    def show_about(self) -> AboutDialog:
        predictor = self.predictor
        device = predictor.device_description if predictor else ""
        info, weights_sha256 = (predictor.info, predictor.weights_sha256) if predictor else (None, "")
        return self._show(AboutDialog(info, device, self.model.problem, self, weights_sha256=weights_sha256))

    def _show(self, dialog):
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_error(self, text: str) -> None:
        """A problem the clinician must see, without a modal box in the way of their work."""
        self.last_error = text
        self.message_banner.show_message(text, "error")
        self.status.say(text)

    def remember(self, **changes: object) -> None:
        """Change preferences and save them a second later (a slider drag saves once, a crash loses none)."""
        for key, value in changes.items():
            setattr(self.settings, key, value)
        self._settings_timer.start()

    def save_settings(self) -> None:
        try:
            save_settings(self.settings, self.settings_path)
        except OutputWriteError as error:
            self.status.say(f"Could not save the preferences: {error}")

    # -- events ------------------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Peek works whichever widget of this window has the focus; files dropped on the image open."""
        kind = event.type()
        if kind in KEY_EVENTS and is_shortcut("peek", event) and self._ours(watched, typing_ok=False):
            if not event.isAutoRepeat():
                self.canvas.set_peek(kind == QEvent.Type.KeyPress)
            return True
        if kind == QEvent.Type.WindowDeactivate and watched is self:
            self.canvas.set_peek(False)  # the key may be released in another window: never stay peeking
        if kind in DROP_EVENTS and watched is self.canvas.viewport():
            return self._drop(event)
        return super().eventFilter(watched, event)

    def _ours(self, watched: QObject, *, typing_ok: bool = True) -> bool:
        if not isinstance(watched, QWidget) or watched.window() is not self:
            return False
        return typing_ok or not isinstance(watched, QLineEdit | QAbstractSpinBox)

    def dropEvent(self, event) -> None:
        self._drop(event)

    dragEnterEvent = dragMoveEvent = dropEvent

    def _drop(self, event) -> bool:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return False
        event.acceptProposedAction()
        if event.type() == QEvent.Type.Drop:
            self.open_paths(paths)
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        QApplication.instance().removeEventFilter(self)
        self.autosave.save_now(wait=True)
        self.save_settings()
        state = window_settings()
        state.setValue("geometry", self.saveGeometry())
        state.setValue("state", self.saveState())
        self.hide()  # gone for the user at once; the threads below finish behind the scenes
        if self.batch_dialog is not None:
            self.batch_dialog.cancel()  # stops after the image in progress, whose mask is then complete
            self.batch_dialog.close()
            self.batch_dialog.runner.wait(60_000)
        self._folder_queue = []
        for runner in (self.loader, self.model.runner, self.segmenter, self.analyser, self.exporter.runner,
                       self.cleanup.runner, self.assist.runner, self.folder_panel.thumbnails,
                       self.folder_segmenter):  # fmt: skip
            runner.cancel()  # their files are written completely all the same: the pools are waited for
        for pool in (*self.pools.values(), self.folder_panel.thumbnails.pool):
            pool.waitForDone(10_000)  # a running torch call cannot be interrupted; it is short on small images
        super().closeEvent(event)


# ------------------------------------------------------------------------------------------------------ entry
def run(argv: list[str]) -> int:
    """``lesionlens [IMAGE_OR_FOLDER...] [--weights FILE] [--device ...]``: open the window (a sample by default)."""
    args, qt_args = parse_args(argv)
    setup_logging()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("LesionLens")
    app.setOrganizationName("LesionLens")
    app.setWindowIcon(QIcon(str(app_icon_path())))
    window = MainWindow(weights=args.weights, device=args.device)
    install_excepthook(lambda: window)
    window.show()
    sample = samples_dir() / SAMPLE_NAME
    if args.paths or sample.exists():
        window.open_paths(args.paths or [sample])
    return app.exec()
