"""Every keyboard shortcut of the app in one table, the one helper that makes QActions, and the Help window.

One table means the Help window can never drift from what the keys really do, and a clash is visible in one place
(a test checks there is none). Keys that the canvas handles itself (brush size, peek) are in the table too, so
the Help window lists them, but they get no QAction.
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
    "batch": ("Ctrl+B",),
    "choose_weights": ("Ctrl+Shift+W",),
    "quit": ("Ctrl+Q",),
    "next_image": ("PgDown", "N"),
    "previous_image": ("PgUp", "P"),
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
    "help": ("F1",),
    "about": (),
}

#: name -> what it does, for menus and the Help window.
TITLES: dict[str, str] = {
    "open": "Open image…",
    "open_folder": "Open folder…",
    "export": "Export…",
    "batch": "Batch segmentation…",
    "choose_weights": "Choose weights…",
    "quit": "Quit",
    "next_image": "Next image",
    "previous_image": "Previous image",
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
    "help": "Keyboard shortcuts",
    "about": "About LesionLens",
}

#: Shortcuts the canvas or the window's key handler implement directly (no QAction).
HANDLED_BY_KEYS = frozenset({"brush_smaller", "brush_larger", "peek"})

#: Mouse gestures, listed in the Help window under the keys.
MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Zoom", "Mouse wheel"),
    ("Pan", "Drag with the Navigate tool, or drag with the middle button in any tool"),
    ("Brush / eraser size", "[ and ] (or Ctrl + wheel, where the canvas supports it)"),
    ("Assist: remove the unsure part", "Shift + click, or right click, with the Assist tool"),
    ("Box: cancel the re-segmentation", "Esc while it runs"),
)


def key_sequences(name: str) -> list[QKeySequence]:
    return [QKeySequence(key) for key in SHORTCUTS[name]]


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
    if SHORTCUTS[name]:
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


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts: every entry of :data:`SHORTCUTS`, then the mouse gestures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — LesionLens")
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        rows = [(TITLES[name], shortcut_text(name) or "—") for name in SHORTCUTS]
        rows += [(what, how) for what, how in MOUSE_HELP]
        for what, keys in rows:
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
        layout.addWidget(QLabel("Single-letter keys work while the image has the focus.", self))
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 640)
