"""The folder list's states come from one small model fed by the document's signals (issue 17): checked here with a
document and the model alone, without a window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.document import LesionDocument
from app.folder_states import AI_MASK, CANNOT_OPEN, EDITED, EXPORTED, NOT_SEGMENTED, FolderStates
from segmentation.quality import QualityAssessment

A, B, C = Path("a.png"), Path("b.png"), Path("c.png")
SHAPE = (20, 30)


def model(qtbot, states: dict[Path, str] | None = None) -> tuple[LesionDocument, FolderStates, list[Path]]:
    document = LesionDocument()
    folder = FolderStates(document)
    changed: list[Path] = []
    folder.stateChanged.connect(changed.append)
    folder.set_paths([A, B, C], states)
    return document, folder, changed


def test_the_models_result_and_an_edit_change_the_open_images_state(qtbot, known_segmentation) -> None:
    document, folder, changed = model(qtbot)
    assert [folder.state(p) for p in (A, B, C)] == [NOT_SEGMENTED] * 3
    document.open_image(A, np.zeros((*SHAPE, 3), np.uint8))
    assert folder.state(A) == NOT_SEGMENTED and not changed, "opening is not segmenting"
    document.set_segmentation(known_segmentation(SHAPE))
    assert folder.state(A) == AI_MASK and changed == [A]
    document.set_threshold(0.3)
    assert folder.state(A) == AI_MASK, "a threshold is not an edit"
    assert document.paint(np.ones((3, 3), bool), (0, 0), True, "Brush stroke")
    assert folder.state(A) == EDITED
    document.set_segmentation(known_segmentation(SHAPE))  # a second run of the model keeps the clinician's state
    assert folder.state(A) == EDITED
    assert folder.counts()[EDITED] == 1 and folder.counts()[NOT_SEGMENTED] == 2


def test_an_exported_image_stays_exported_when_its_edits_are_restored(qtbot) -> None:
    document, folder, _ = model(qtbot, {A: EXPORTED, B: EXPORTED})
    image = np.zeros((*SHAPE, 3), np.uint8)
    document.open_image(A, image)
    with folder.restoring():
        document.restore(np.ones(SHAPE, bool), edited=True, threshold=0.5, cleanup=())
    assert folder.state(A) == EXPORTED
    assert document.paint(np.ones((3, 3), bool), (0, 0), False, "Brush stroke")
    assert folder.state(A) == EDITED, "an edit after the export is a new edit"
    document.open_image(B, image)
    document.restore(np.ones(SHAPE, bool), edited=True, threshold=0.5, cleanup=())  # not announced as a restore
    assert folder.state(B) == EDITED


def test_what_the_window_reports_and_background_estimates(qtbot) -> None:
    document, folder, _ = model(qtbot, {C: EDITED})
    document.open_image(A, np.zeros((*SHAPE, 3), np.uint8))
    quality = QualityAssessment(0.8, needs_review=False, no_lesion=False, at_border=False)
    assert folder.needs_estimate(B) and not folder.needs_estimate(A) and not folder.needs_estimate(C)
    folder.estimated(B, quality)
    folder.estimated(C, quality)  # the clinician's edit is never overwritten by an estimate
    folder.estimated(A, quality)  # the shown image is measured as it opens, not in the background
    assert (folder.state(B), folder.flags(B)) == (AI_MASK, quality)
    assert (folder.state(C), folder.flags(C)) == (EDITED, None)
    assert folder.state(A) == NOT_SEGMENTED and folder.flags(A) is None
    assert not folder.needs_estimate(B)
    folder.forget_estimates()  # a new model: estimate again
    assert folder.flags(B) is None and folder.needs_estimate(B)

    folder.cannot_open(B)
    assert folder.state(B) == CANNOT_OPEN
    folder.mask_shown(B)  # a batch's mask for it opened after all
    assert folder.state(B) == AI_MASK
    folder.exported(B)
    assert folder.state(B) == EXPORTED
    folder.mask_shown(B)
    assert folder.state(B) == EXPORTED
    folder.set_state(Path("elsewhere.png"), EXPORTED)  # a file opened alone is not listed: ignored
    assert folder.state(Path("elsewhere.png")) is None and folder.paths() == [A, B, C]
