"""Where everything sits in the main window: banners over the canvas, docks, toolbars and menus.

Kept apart from the window's behaviour so each stays readable; these functions only create and place widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDockWidget, QScrollArea, QToolBar, QVBoxLayout, QWidget

from app.assist import AssistPanel
from app.calibration import CalibrationBox
from app.panels import Banner, MeasurementsPanel, OverlayPanel
from app.status import StatusBar

if TYPE_CHECKING:
    from app.main_window import MainWindow

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


def build_layout(window: MainWindow) -> None:
    """Status bar, the banners above the canvas, the lesion panel on the right, the image list on the left."""
    window.status = StatusBar(window)
    window.setStatusBar(window.status)
    window.weights_banner = Banner(window, button_text="Choose weights…")
    window.message_banner = Banner(window, button_text="Dismiss")
    window.message_banner.button.clicked.connect(window.message_banner.hide)
    window.restore_banner = Banner(window, button_text="Dismiss")  # per image, until dismissed
    window.flags_banner = Banner(window)
    central = QWidget(window)
    layout = QVBoxLayout(central)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    for widget in (window.weights_banner, window.message_banner, window.restore_banner, window.flags_banner):
        layout.addWidget(widget)
    layout.addWidget(window.canvas, 1)
    window.setCentralWidget(central)

    window.overlay_panel = OverlayPanel()
    window.calibration_box = CalibrationBox()
    window.measurements_panel = MeasurementsPanel()
    window.assist_panel = AssistPanel()
    window.assist_panel.hide()  # shown while the Assist or Box tool is active
    panel = QWidget()
    column = QVBoxLayout(panel)
    for widget in (window.overlay_panel, window.assist_panel, window.calibration_box, window.measurements_panel):
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
    window.lesion_dock = dock
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, window.folder_panel)
    window.folder_panel.hide()  # shown when a folder (or several files) is opened


def build_menus(window: MainWindow) -> None:
    """Menus and the main toolbar, from the actions the window made (all through app.actions.new_action)."""
    actions = window.named_actions
    for title, names in MENUS:
        menu = window.menuBar().addMenu(title)
        for name in names:
            menu.addSeparator() if name == "-" else menu.addAction(actions[name])
        if title == "&View":
            menu.addSeparator()
            menu.addAction(window.folder_panel.toggleViewAction())
            menu.addAction(window.lesion_dock.toggleViewAction())
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
    window.toolbar = toolbar
