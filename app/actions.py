"""Every keyboard shortcut of the app in one table, the one helper that makes QActions, and the Help window.

One table means the Help window can never drift from what the keys really do, and a clash is visible in one place
(a test checks there is none). Keys handled by a key handler instead of a QAction (peek, held down) are in the table
too, and the keys that the canvas handles only while something is selected or in progress (Delete a vertex, Esc
abandons a stroke) are in :data:`CANVAS_SHORTCUTS`; the handlers read their keys from these tables (``is_shortcut``),
and the Help window lists the window's real QActions plus these tables, so it cannot drift from what the keys do.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QKeyCombination, QObject, Qt
from PySide6.QtGui import QAction, QIcon, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: name -> key sequences (portable text, as QKeySequence reads it). The first one is shown in menus.
SHORTCUTS: dict[str, tuple[str, ...]] = {
    "open": ("Ctrl+O",),
    "open_folder": ("Ctrl+Shift+O",),
    "export": ("Ctrl+E",),
    "export_to": ("Ctrl+Shift+E",),
    "export_next": ("Ctrl+Return", "Ctrl+Enter"),
    "batch": ("Ctrl+B",),
    "choose_weights": ("Ctrl+Shift+W",),
    "quit": ("Ctrl+Q",),
    "next_image": ("PgDown", "N"),
    "previous_image": ("PgUp", "P"),
    "review_first": ("Shift+N",),
    "segment": ("Ctrl+R",),
    "cancel": ("Esc",),
    "tool_navigate": ("M",),
    "tool_brush": ("B",),
    "tool_eraser": ("E",),
    "tool_vertices": ("V",),
    "tool_calibrate": ("C",),
    "tool_assist": ("A",),
    "tool_box": ("R",),
    "brush_smaller": ("[",),
    "brush_larger": ("]",),
    "undo": ("Ctrl+Z",),
    "redo": ("Ctrl+Shift+Z", "Ctrl+Y"),
    "fill_holes": ("Ctrl+Shift+F",),
    "keep_largest": ("Ctrl+Shift+K",),
    "smooth": ("Ctrl+Shift+S",),
    "reset_mask": ("Ctrl+Shift+R",),
    "zoom_in": ("Ctrl++", "Ctrl+=", "+"),
    "zoom_out": ("Ctrl+-", "-"),
    "zoom_fit": ("Ctrl+0", "F"),
    "zoom_actual": ("Ctrl+1", "1"),
    "toggle_fill": ("O",),
    "toggle_boundary": ("Shift+O",),
    "peek": ("H", "`"),
    "set_calibration": ("Ctrl+K",),
    "clear_calibration": (),  # no key: rarely used, and it must not be hit by accident
    "preferences": ("Ctrl+,",),
    "help": ("F1",),
    "about": (),
}

#: Keys the canvas takes only while they mean something there (a vertex is selected, a stroke is in progress);
#: otherwise the same key goes on to the window (Esc then cancels the segmentation).
CANVAS_SHORTCUTS: dict[str, tuple[str, ...]] = {
    "delete_vertex": ("Del", "Backspace"),
    "abandon_edit": ("Esc",),
}

#: name -> what it does, for menus and the Help window.
TITLES: dict[str, str] = {
    "open": "Open image…",
    "open_folder": "Open folder…",
    "export": "Export",
    "export_to": "Export to folder…",
    "export_next": "Export and next image",
    "batch": "Batch segmentation…",
    "choose_weights": "Choose weights…",
    "quit": "Quit",
    "next_image": "Next image",
    "previous_image": "Previous image",
    "review_first": "Review first: order the images by estimated Dice",
    "segment": "Segment again",
    "cancel": "Cancel segmentation",
    "tool_navigate": "Navigate (pan and zoom)",
    "tool_brush": "Brush: paint lesion",
    "tool_eraser": "Eraser: paint skin",
    "tool_vertices": "Vertices: drag the boundary",
    "tool_calibrate": "Calibrate: draw a line of known length",
    "tool_assist": "Assist: click adds what the model almost found (Shift+click removes)",
    "tool_box": "Box: drag a box, the model segments it again",
    "brush_smaller": "Smaller brush",
    "brush_larger": "Larger brush",
    "undo": "Undo",
    "redo": "Redo",
    "fill_holes": "Fill holes",
    "keep_largest": "Keep largest lesion",
    "smooth": "Smooth boundary",
    "reset_mask": "Reset to the model's mask",
    "zoom_in": "Zoom in",
    "zoom_out": "Zoom out",
    "zoom_fit": "Fit to window",
    "zoom_actual": "Actual size (1:1)",
    "toggle_fill": "Show lesion fill",
    "toggle_boundary": "Show lesion boundary",
    "peek": "Peek: hide the overlay while held",
    "set_calibration": "Set calibration (mm per pixel)…",
    "clear_calibration": "Clear calibration",
    "preferences": "Preferences…",
    "help": "Keyboard shortcuts",
    "about": "About LesionLens",
    "delete_vertex": "Delete the selected vertex (Vertices tool)",
    "abandon_edit": "Abandon the stroke, vertex drag or calibration line in progress",
}

#: Shortcuts the canvas or the window's key handler implement directly (no QAction).
HANDLED_BY_KEYS = frozenset({"peek", *CANVAS_SHORTCUTS})

#: Mouse gestures, listed in the Help window under the keys.
MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Zoom", "Mouse wheel"),
    ("Pan", "Drag with the Navigate tool, or drag with the middle button in any tool"),
    ("Brush / eraser size (screen pixels: the same at any zoom)", "Ctrl + wheel with the Brush or Eraser"),
    ("Paint lesion / skin", "Drag with the Brush / Eraser"),
    ("Move a boundary vertex", "Drag it with the Vertices tool"),
    ("Insert a vertex", "Double-click an edge with the Vertices tool"),
    ("Delete a vertex", "Right-click it with the Vertices tool"),
    ("Measure a length for calibration", "Drag with the Calibrate tool"),
    ("Assist: remove the unsure part", "Shift + click, or right click, with the Assist tool"),
    ("Box: cancel the re-segmentation", "Esc while it runs"),
)


def key_sequences(name: str) -> list[QKeySequence]:
    keys = SHORTCUTS[name] if name in SHORTCUTS else CANVAS_SHORTCUTS[name]
    return [QKeySequence(key) for key in keys]


def shortcut_text(name: str) -> str:
    """The keys of ``name`` as the user sees them on this platform ("Ctrl+Z, Ctrl+Y")."""
    return ", ".join(seq.toString(QKeySequence.SequenceFormat.NativeText) for seq in key_sequences(name))


def new_action(
    parent: QObject,
    name: str,
    slot: Callable | None = None,
    *,
    checkable: bool = False,
    checked: bool = False,
    enabled: bool = True,
    icon: QIcon | None = None,
    tip: str = "",
    action: QAction | None = None,
) -> QAction:
    """Make (or configure, for Qt-made actions like QUndoStack's) the action ``name`` from the tables above.

    The tooltip always names the keys, so a clinician learns them by hovering.
    """
    if name in HANDLED_BY_KEYS:
        raise ValueError(f"{name!r} is handled by key events, not by a QAction")
    created = action is None
    action = action or QAction(TITLES[name], parent)
    if not action.text().startswith(TITLES[name].rstrip("…")):
        action.setText(TITLES[name])
    action.setObjectName(f"action_{name}")
    if SHORTCUTS.get(name):
        action.setShortcuts(key_sequences(name))
    keys = shortcut_text(name)
    action.setToolTip(f"{tip or TITLES[name]} ({keys})" if keys else tip or TITLES[name])
    action.setStatusTip(tip or TITLES[name])
    if icon is not None:
        action.setIcon(icon)
    if checkable:
        action.setCheckable(True)
        action.setChecked(checked)
    if created:  # a Qt-made action (undo, redo) keeps the enabled state its owner manages
        action.setEnabled(enabled)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(slot)
    return action


def is_shortcut(name: str, event: QKeyEvent) -> bool:
    """Whether a key event is one of ``name``'s shortcuts (for keys that act while held, like peek)."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    pressed = QKeySequence(QKeyCombination(modifiers, Qt.Key(event.key())))
    return any(seq.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch for seq in key_sequences(name))


def shortcut_rows(actions: dict[str, QAction]) -> list[tuple[str, str]]:
    """(what, keys) for the Help window: the window's QActions with the keys they really have, then the keys that
    handlers take directly, then the mouse gestures."""
    native = QKeySequence.SequenceFormat.NativeText
    rows = [
        (TITLES.get(name, action.text()), ", ".join(k.toString(native) for k in action.shortcuts()) or "—")
        for name, action in actions.items()
    ]
    rows += [(TITLES[name], shortcut_text(name)) for name in sorted(HANDLED_BY_KEYS - actions.keys())]
    return rows + list(MOUSE_HELP)


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts: every action of the window with its keys, the canvas's keys, the mouse gestures."""

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — LesionLens")
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        for what, keys in shortcut_rows(actions):
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(what))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The keys work whichever panel has the focus, except while typing in a field.", self))
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 640)
