"""Where each image of the open folder stands: not segmented, AI mask, edited, exported, cannot open; and its
confidence flags (estimated Dice, needs review).

One small model, the only place these states change. It follows the document by its signals (the model's result
arrives: AI mask; the clinician edits: edited), and the window reports what the document does not see (an export
written, a file that cannot be opened, an estimate made in the background). The folder list only draws it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.document import LesionDocument
from segmentation.quality import QualityAssessment

NOT_SEGMENTED, AI_MASK, EDITED, EXPORTED = "not segmented", "AI mask", "edited", "exported"
CANNOT_OPEN = "cannot open"
STATES = (NOT_SEGMENTED, AI_MASK, EDITED, EXPORTED, CANNOT_OPEN)
UNCHECKED = (NOT_SEGMENTED, AI_MASK)  # the clinician has not touched these: background estimates may fill them in
NO_MASK = (NOT_SEGMENTED, CANNOT_OPEN)  # no mask was shown for these yet


class FolderStates(QObject):
    """The listed images (in the folder's name order), their states and flags.

    ``listChanged`` when another list is set; ``stateChanged(path)`` when one image's state or flags changed.
    Images that are not listed (a file opened alone) are ignored.
    """

    listChanged = Signal()
    stateChanged = Signal(Path)

    def __init__(self, document: LesionDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._document = document
        self._states: dict[Path, str] = {}
        self._flags: dict[Path, QualityAssessment | None] = {}
        self._restoring = False
        document.segmentationChanged.connect(self._segmentation_changed)
        document.maskChanged.connect(self._mask_changed)

    # -- the list --------------------------------------------------------------------------------------------
    def set_paths(self, paths: list[Path], states: dict[Path, str] | None = None) -> None:
        """List ``paths`` with their known states (not segmented otherwise) and no flags yet."""
        self._states = {Path(path): (states or {}).get(path, NOT_SEGMENTED) for path in paths}
        self._flags = dict.fromkeys(self._states)
        self.listChanged.emit()

    def paths(self) -> list[Path]:
        return list(self._states)

    def state(self, path: Path | None) -> str | None:
        return None if path is None else self._states.get(Path(path))

    def flags(self, path: Path | None) -> QualityAssessment | None:
        return None if path is None else self._flags.get(Path(path))

    def counts(self) -> dict[str, int]:
        """How many images are in each state (every state present, zero or not)."""
        counts = dict.fromkeys(STATES, 0)
        for state in self._states.values():
            counts[state] = counts.get(state, 0) + 1
        return counts

    def set_state(
        self, path: Path | None, state: str | None = None, flags: QualityAssessment | bool | None = False
    ) -> None:
        """Change one image: ``state`` None keeps its state, ``flags`` False keeps its flags."""
        if path is None or Path(path) not in self._states:
            return
        path = Path(path)
        if state is not None:
            self._states[path] = state
        if flags is not False:
            self._flags[path] = flags  # type: ignore[assignment]
        self.stateChanged.emit(path)

    # -- what the window reports ---------------------------------------------------------------------------------
    def exported(self, path: Path) -> None:
        self.set_state(path, EXPORTED)

    def cannot_open(self, path: Path | None) -> None:
        self.set_state(path, CANNOT_OPEN)

    def mask_shown(self, path: Path | None) -> None:
        """A mask from the model or a batch is shown for ``path``: an image without one becomes AI mask (edited,
        when the clinician edited it before the mask came); edited and exported images keep their state."""
        if self.state(path) in NO_MASK:
            edited = path == self._document.path and self._document.edited
            self.set_state(path, EDITED if edited else AI_MASK)

    def estimated(self, path: Path, quality: QualityAssessment | None) -> None:
        """A background estimate for ``path``; kept only for an image the clinician has not opened or touched."""
        if path != self._document.path and self.state(path) in UNCHECKED:
            self.set_state(path, AI_MASK, quality)

    def needs_estimate(self, path: Path) -> bool:
        """Not estimated yet, untouched by the clinician and not the shown image (which is measured as it opens)."""
        return self.flags(path) is None and self.state(path) in UNCHECKED and path != self._document.path

    def forget_estimates(self) -> None:
        """A new model: the untouched images other than the shown one are to be estimated again."""
        for path in self.paths():
            if path != self._document.path and self.state(path) in UNCHECKED:
                self.set_state(path, None, None)

    @contextmanager
    def restoring(self) -> Iterator[None]:
        """Around putting back an image's autosaved edits: restoring is not a new edit, so an exported image stays
        exported (an image not exported yet becomes edited as usual)."""
        self._restoring = True
        try:
            yield
        finally:
            self._restoring = False

    # -- the document --------------------------------------------------------------------------------------------
    def _segmentation_changed(self) -> None:
        if self._document.segmentation is not None:
            self.mask_shown(self._document.path)

    def _mask_changed(self) -> None:
        doc = self._document
        state = self.state(doc.path)
        if not doc.edited or state in (None, EDITED) or (self._restoring and state == EXPORTED):
            return
        self.set_state(doc.path, EDITED)
