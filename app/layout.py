"""Where everything sits in the main window: banners over the canvas, docks, toolbars and menus.

Kept apart from the window's behaviour so each stays readable; these functions only create and place widgets and
hand them back (:class:`WindowParts`): they set nothing on the window but its Qt layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea, QToolBar, QVBoxLayout, QWidget

from app.assist import AssistPanel
from app.calibration import CalibrationBox
from app.panels import Banner, MeasurementsPanel, OverlayPanel
from app.status import StatusBar

MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("&File", ("open", "open_folder", "-", "export", "export_to", "export_next", "batch", "-", "choose_weights", "-",
               "quit")),
    ("&Edit", ("undo", "redo", "-", "fill_holes", "keep_largest", "smooth", "-", "reset_mask", "-", "preferences")),
    ("&View", ("zoom_in", "zoom_out", "zoom_fit", "zoom_actual", "-", "toggle_fill", "toggle_boundary")),
    ("&Tools", ("tool_navigate", "tool_brush", "tool_eraser", "tool_vertices", "tool_assist", "tool_box",
                "tool_calibrate", "-",
                "brush_smaller", "brush_larger", "-", "set_calibration", "clear_calibration")),
    ("&Image", ("previous_image", "next_image", "review_first", "-", "segment", "cancel")),
    ("&Help", ("help", "about")),
)  # fmt: skip
TOOLBAR: tuple[str, ...] = (
    "open", "open_folder", "export", "export_next", "-", "previous_image", "next_image", "-",
    "tool_navigate", "tool_brush", "tool_eraser", "tool_vertices", "tool_assist", "tool_box", "tool_calibrate", "-",
    "undo", "redo", "-", "fill_holes", "keep_largest", "smooth", "reset_mask", "-", "zoom_fit", "zoom_actual",
)  # fmt: skip
SHORT_LABELS = {
    "open": "Open", "open_folder": "Folder", "export": "Export", "export_next": "Export + next",
    "previous_image": "Previous",
    "next_image": "Next", "tool_navigate": "Navigate", "tool_brush": "Brush", "tool_eraser": "Eraser",
    "tool_vertices": "Vertices", "tool_assist": "Assist", "tool_box": "Box", "tool_calibrate": "Calibrate",
    "fill_holes": "Fill holes",
    "keep_largest": "Largest only", "smooth": "Smooth", "reset_mask": "Reset", "zoom_fit": "Fit",
    "zoom_actual": "1:1", "undo": "Undo", "redo": "Redo",
}  # fmt: skip
PREFERRED_WINDOW = QSize(1440, 900)
SCREEN_SHARE = 0.92  # of the screen's free area, so the window's edges and the panels stay on a small screen


def first_window_size(available: QSize, preferred: QSize = PREFERRED_WINDOW) -> QSize:
    """The window's size on a first start (no saved geometry): the preferred size, shrunk to fit the screen."""
    return QSize(
        min(preferred.width(), int(available.width() * SCREEN_SHARE)),
        min(preferred.height(), int(available.height() * SCREEN_SHARE)),
    )


@dataclass(frozen=True)
class WindowParts:
    """The widgets :func:`build_layout` made and placed; the window keeps the ones it talks to."""

    status: StatusBar
    weights_banner: Banner  # no usable model: says why, offers another file
    message_banner: Banner  # the last problem the clinician must see
    restore_banner: Banner  # per image, until dismissed: edits came back from the autosave
    flags_banner: Banner  # the confidence flags of the shown result
    overlay_panel: OverlayPanel
    calibration_box: CalibrationBox
    measurements_panel: MeasurementsPanel
    assist_panel: AssistPanel
    lesion_dock: QDockWidget


def build_layout(window: QMainWindow, canvas: QWidget, folder_panel: QDockWidget) -> WindowParts:
    """Status bar, the banners above the canvas, the lesion panel on the right, the image list on the left."""
    status = StatusBar(window)
    window.setStatusBar(status)
    weights_banner = Banner(window, button_text="Choose weights…")
    message_banner = Banner(window, button_text="Dismiss")
    message_banner.button.clicked.connect(message_banner.hide)
    restore_banner = Banner(window, button_text="Dismiss")
    flags_banner = Banner(window)
    central = QWidget(window)
    layout = QVBoxLayout(central)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    for widget in (weights_banner, message_banner, restore_banner, flags_banner):
        layout.addWidget(widget)
    layout.addWidget(canvas, 1)
    window.setCentralWidget(central)

    overlay_panel, calibration_box = OverlayPanel(), CalibrationBox()
    measurements_panel, assist_panel = MeasurementsPanel(), AssistPanel()
    assist_panel.hide()  # shown while the Assist or Box tool is active
    panel = QWidget()
    column = QVBoxLayout(panel)
    for widget in (overlay_panel, assist_panel, calibration_box, measurements_panel):
        column.addWidget(widget)
    column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(panel)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    dock = QDockWidget("Lesion", window)
    dock.setObjectName("lesion_dock")
    dock.setWidget(scroll)
    dock.setMinimumWidth(panel.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 12)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, folder_panel)
    folder_panel.hide()  # shown when a folder (or several files) is opened
    return WindowParts(
        status, weights_banner, message_banner, restore_banner, flags_banner, overlay_panel, calibration_box,
        measurements_panel, assist_panel, dock,
    )  # fmt: skip


def build_menus(window: QMainWindow, actions: dict[str, QAction], docks: tuple[QDockWidget, ...]) -> QToolBar:
    """Menus and the main toolbar, from the actions the window made (all through app.actions.new_action); the View
    menu also shows and hides ``docks``. Returns the toolbar."""
    for title, names in MENUS:
        menu = window.menuBar().addMenu(title)
        for name in names:
            menu.addSeparator() if name == "-" else menu.addAction(actions[name])
        if title == "&View":
            menu.addSeparator()
            for dock in docks:
                menu.addAction(dock.toggleViewAction())
    toolbar = QToolBar("Tools", window)
    toolbar.setObjectName("main_toolbar")
    toolbar.setIconSize(QSize(18, 18))
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for name in TOOLBAR:
        if name == "-":
            toolbar.addSeparator()
            continue
        actions[name].setIconText(SHORT_LABELS.get(name, actions[name].iconText()))  # menus keep the long text
        toolbar.addAction(actions[name])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    return toolbar
