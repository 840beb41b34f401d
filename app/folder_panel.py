"""The folder dock: every image of the open folder with a thumbnail, its state and its estimated Dice.

States tell the clinician where they are in a folder of 200 photos: not segmented yet, AI mask (unchecked model
output), edited, exported; they live in :class:`app.folder_states.FolderStates`, and this dock draws them. The
estimated Dice and the "needs review" flag say which results to look at first; "Review first" orders the list by
them (flagged first, lowest estimate first), and PgDown/PgUp then step through it in that order. Thumbnails load
lazily (only rows that are scrolled into view) on a background thread, so a folder of thousands opens at once.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.folder_states import CANNOT_OPEN, EDITED, EXPORTED, FolderStates
from app.workers import TaskRunner, new_pool, thumbnail_task
from segmentation.imageio import is_image_path, is_unsupported_image_path
from segmentation.naming import is_output_name
from segmentation.quality import QualityAssessment

THUMBNAIL = 56
PATH_ROLE = Qt.ItemDataRole.UserRole


def images_in(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (not LesionLens's own masks and overlays), sorted by name. Broken links and
    formats we refuse (DICOM, GIF...) are listed too, so opening one says what is wrong instead of hiding it.

    Raises OSError when the folder cannot be listed."""
    return sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() or p.is_symlink())
        and (is_image_path(p) or is_unsupported_image_path(p))
        and not is_output_name(p.name)
    )


class FolderPanel(QDockWidget):
    """Dock list of the images in ``states``, drawn as they change; emits ``imageActivated(path)`` when the user
    picks one."""

    imageActivated = Signal(Path)

    def __init__(self, states: FolderStates, parent: QWidget | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__("Images", parent)
        self.states = states
        self.setObjectName("folder_dock")
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.list.setUniformItemSizes(True)
        self.list.setAlternatingRowColors(True)
        self.list.setAccessibleName("Images in the folder")
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.review_first = QCheckBox("Review first", self)
        self.review_first.setToolTip(
            "Order the list by the estimated Dice: images that need review first, the lowest estimate first "
            "(PgDown/PgUp follow this order)"
        )
        self.review_first.toggled.connect(lambda _on: self._apply_order())
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(2, 2, 2, 2)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.review_first)
        layout.addLayout(header)
        layout.addWidget(self.list)
        self.setWidget(box)
        self._items: dict[Path, QListWidgetItem] = {}
        self._thumbnailed: set[Path] = set()
        self._placeholder = _placeholder_icon()
        self.thumbnails = TaskRunner("load previews", pool or new_pool(1, self), self)
        self.thumbnails.progress.connect(self._thumbnail_ready)
        self._lazy = QTimer(self, singleShot=True, interval=80)
        self._lazy.timeout.connect(self._load_visible_thumbnails)
        self.list.verticalScrollBar().valueChanged.connect(self._lazy.start)
        self.list.currentItemChanged.connect(self._activated)  # click or arrow keys, like labelme
        states.listChanged.connect(self._rebuild)
        states.stateChanged.connect(self._state_changed)
        if states.paths():
            self._rebuild()

    # -- contents ------------------------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Show the model's list (in order); thumbnails follow as rows come into view."""
        self.thumbnails.cancel()
        self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(False)
        self._items, self._thumbnailed = {}, set()
        for path in self.states.paths():
            item = QListWidgetItem(self._placeholder, path.name)
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(str(path))
            self.list.addItem(item)
            self._items[path] = item
            self._refresh(path)
        self._update_summary()
        self._apply_order()
        self._lazy.start()

    def paths(self) -> list[Path]:
        """The listed images in the order shown (by name, or review first)."""
        return [Path(self.list.item(row).data(PATH_ROLE)) for row in range(self.list.count())]

    def ordered_paths(self) -> list[Path]:
        """The order the list should show: by name, or with "Review first" flagged and low estimates first."""
        names = self.states.paths()
        if not self.review_first.isChecked():
            return names
        rank = {path: index for index, path in enumerate(names)}

        def key(path: Path) -> tuple:
            quality = self.states.flags(path)
            return ((True, True, 3.0) if quality is None else quality.review_key(), rank[path])

        return sorted(names, key=key)

    def set_review_first(self, on: bool) -> None:
        self.review_first.setChecked(on)

    def state(self, path: Path) -> str | None:
        """The state the row shows (the model's)."""
        return self.states.state(path)

    def flags(self, path: Path) -> QualityAssessment | None:
        """The confidence flags the row shows (the model's)."""
        return self.states.flags(path)

    def item_text(self, path: Path) -> str:
        return self._items[Path(path)].text()

    def _state_changed(self, path: Path) -> None:
        """Redraw one row; with "Review first" on, the row moves to its place in that order."""
        if path not in self._items:
            return
        if self.review_first.isChecked():
            self._apply_order()
        self._refresh(path)
        self._update_summary()

    def _apply_order(self) -> None:
        """Move rows into :meth:`ordered_paths` order, keeping the current row current (and no signal sent)."""
        current = self.list.currentItem()
        self.list.blockSignals(True)
        for row, path in enumerate(self.ordered_paths()):
            item = self._items[path]
            if self.list.row(item) != row:
                self.list.takeItem(self.list.row(item))
                self.list.insertItem(row, item)
        if current is not None:
            self.list.setCurrentItem(current)
        self.list.blockSignals(False)
        self._lazy.start()

    def select(self, path: Path) -> None:
        item = self._items.get(Path(path))
        if item is not None:
            self.list.blockSignals(True)
            self.list.setCurrentItem(item)
            self.list.blockSignals(False)
            self.list.scrollToItem(item)

    def neighbour(self, path: Path | None, step: int) -> Path | None:
        """The image ``step`` rows after (or before) ``path``; None past either end."""
        paths = self.paths()
        if not paths:
            return None
        if path is None or Path(path) not in self._items:
            return paths[0] if step > 0 else paths[-1]
        index = paths.index(Path(path)) + step
        return paths[index] if 0 <= index < len(paths) else None

    # -- drawing -------------------------------------------------------------------------------------------------
    def _refresh(self, path: Path) -> None:
        item, state, flags = self._items[path], self.states.state(path), self.states.flags(path)
        lines = [path.name, state, ""]  # three lines on every row: the list's rows have one height
        if flags is not None:
            if flags.estimate_text():
                lines[1] += f" · {flags.estimate_text()}"
            lines[2] = ("⚠ " if flags.needs_review else "") + ", ".join(flags.labels())
        item.setText("\n".join(lines))
        warn = state == CANNOT_OPEN or (flags is not None and flags.needs_review)
        item.setForeground(QColor("#a4262c") if warn else self.list.palette().text().color())
        check = "".join(f"\n{reason}" for reason in flags.reasons()) if flags is not None else ""
        item.setToolTip(f"{path}\nState: {state}{check}")

    def _update_summary(self) -> None:
        counts = self.states.counts()
        all_flags = [self.states.flags(path) for path in self._items]
        flagged = sum(1 for flags in all_flags if flags is not None and flags.needs_review)
        estimated = sum(1 for flags in all_flags if flags is not None)
        parts = [f"{len(self._items)} images", f"{counts[EDITED]} edited", f"{counts[EXPORTED]} exported"]
        parts.append(f"{estimated} estimated, {flagged} need review")
        self.summary.setText(" · ".join(parts))

    # -- lazy thumbnails ---------------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._lazy.start()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._lazy.start()

    def _load_visible_thumbnails(self) -> None:
        if not self._items or not self.list.isVisible():
            return
        viewport = self.list.viewport().rect()
        first = self.list.indexAt(viewport.topLeft()).row()
        last = self.list.indexAt(viewport.bottomLeft()).row()
        first = max(first, 0)
        last = self.list.count() - 1 if last < 0 else last
        wanted = [Path(self.list.item(row).data(PATH_ROLE)) for row in range(first, min(last + 3, self.list.count()))]
        wanted = [path for path in wanted if path not in self._thumbnailed]
        if wanted:
            self.thumbnails.start(thumbnail_task, wanted, THUMBNAIL)

    def _thumbnail_ready(self, value: object) -> None:
        path, image = value  # type: ignore[misc]
        self._thumbnailed.add(path)
        item = self._items.get(path)
        if item is not None and image is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _activated(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        if item is not None:
            self.imageActivated.emit(Path(item.data(PATH_ROLE)))


def _placeholder_icon() -> QIcon:
    pixmap = QPixmap(THUMBNAIL, THUMBNAIL)
    pixmap.fill(QColor("#d0d0d0"))
    return QIcon(pixmap)
