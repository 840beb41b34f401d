"""The document holds one lesion result: the model's result is shown at the document's threshold in place (no copy
of its mask), edits, clean-up and the threshold live in it, and autosave and exports are written from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.document import LesionDocument
from segmentation.autosave import saved_state
from segmentation.calibration import Calibration

pytestmark = pytest.mark.gui
SHAPE = (20, 40)


def test_the_model_result_is_the_document_result(qtbot, known_segmentation) -> None:
    document = LesionDocument()
    document.open_image(Path("a.png"), np.zeros((*SHAPE, 3), np.uint8))
    document.set_threshold(0.25)  # the slider, before the model's result arrives
    result = known_segmentation(SHAPE)  # made at 0.5
    document.set_segmentation(result)

    assert document.result is result and document.mask is result.mask  # no second copy of the mask
    assert result.threshold == 0.25
    np.testing.assert_array_equal(result.mask, result.probability >= 0.25)
    assert document.set_threshold(0.75) and result.threshold == 0.75
    np.testing.assert_array_equal(document.mask, result.probability >= 0.75)

    document.paint(np.ones((4, 4), bool), (2, 2), True, "Brush stroke")
    cleaned = document.mask.copy()
    cleaned[0, 0] = not cleaned[0, 0]
    assert document.apply_cleanup("fill_holes", cleaned)  # the step's output, as computed off the GUI thread
    assert result.edited and document.edited and result.cleanup == ("fill_holes",)
    assert not document.set_threshold(0.1), "an edited mask keeps its threshold"
    provenance = document.provenance()
    assert (provenance["threshold"], provenance["edited"], provenance["model"]) == (0.75, True, "known-map")
    assert provenance["cleanup"] == "fill_holes"

    calibration = Calibration(0.05, "typed")
    state = saved_state(document.result, calibration=calibration, edited_at=document.edited_at)
    np.testing.assert_array_equal(state.mask, document.mask)
    assert state.mask is not document.mask, "autosave writes a copy, the clinician goes on editing"
    assert (state.threshold, state.edited, state.model_sha256, state.mm_per_pixel) == (0.75, True, "0" * 64, 0.05)

    document.reset_to_model()
    assert not result.edited and result.cleanup == ()
    np.testing.assert_array_equal(document.mask, result.probability >= 0.75)


def test_an_edited_autosave_stays_when_the_model_result_arrives(qtbot, known_segmentation) -> None:
    document = LesionDocument()
    document.open_image(Path("a.png"), np.zeros((*SHAPE, 3), np.uint8))
    saved = np.zeros(SHAPE, bool)
    saved[5:10, 5:10] = True
    document.restore(saved, edited=True, threshold=0.4, cleanup=("smooth",))
    assert document.segmentation is None and document.quality() is None  # no model map yet

    document.set_segmentation(known_segmentation(SHAPE))

    np.testing.assert_array_equal(document.mask, saved)
    assert (document.threshold, document.edited, document.cleanup) == (0.4, True, ("smooth",))
    assert document.segmentation is document.result and document.quality() is not None  # the map is behind it
    assert document.provenance()["model"] == "known-map"


def test_a_batch_mask_carries_the_model_device_and_backend_of_its_run(qtbot) -> None:
    document = LesionDocument()
    document.open_image(Path("a.png"), np.zeros((*SHAPE, 3), np.uint8))
    record = {
        "model": "m",
        "model_sha256": "ab" * 32,
        "model_created": "2026-01-01",
        "device": "CPU (2 threads, ONNX Runtime 1.22.0)",
        "backend": "ONNX Runtime 1.22.0",
        "threshold": 0.6,
    }
    document.load_mask(np.ones(SHAPE, bool), record)

    provenance = document.provenance()
    assert {key: provenance[key] for key in record} == record
    assert provenance["edited"] is False and document.segmentation is None
