"""An autosave written by an earlier LesionLens still loads: the files in tests/data/autosave_v1 were written by
the AutosaveStore of format 1 (before the lesion result was one object) and are read back with today's code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from segmentation.autosave import AutosaveStore, autosave_key, saved_state
from segmentation.calibration import Calibration
from segmentation.lesion import LesionSegmentation
from segmentation.provenance import ModelIdentity

SAVED = Path(__file__).parent / "data" / "autosave_v1"


def _expected_mask() -> np.ndarray:
    mask = np.zeros((24, 32), bool)
    mask[5:15, 8:20] = True
    mask[8:10, 10:12] = False
    return mask


def test_an_autosave_of_format_1_still_loads(tmp_path: Path) -> None:
    document = json.loads((SAVED / "state.json").read_text(encoding="utf-8"))
    image = Path(shutil.copy(SAVED / "lesion.png", tmp_path / "lesion.png"))
    os.utime(image, ns=(document["source_mtime_ns"], document["source_mtime_ns"]))  # the file it was saved for
    folder = tmp_path / "autosave"
    folder.mkdir()
    key = autosave_key(image)
    shutil.copy(SAVED / "state.png", folder / f"{key}.png")
    shutil.copy(SAVED / "state.json", folder / f"{key}.json")

    state = AutosaveStore(folder).load(image, (24, 32))

    assert state is not None
    np.testing.assert_array_equal(state.mask, _expected_mask())
    assert (state.threshold, state.edited, state.cleanup) == (0.35, True, ("fill_holes", "keep_largest"))
    calibration = (state.mm_per_pixel, state.calibration_source, state.calibration_profile)
    assert calibration == (0.02, "profile", "DermLite DL4")
    assert state.model_sha256 == "ab" * 32
    assert (state.saved_at, state.edited_at) == ("2026-12-01T10:00:00+00:00", "2026-12-01T09:59:30+00:00")


def test_a_result_is_saved_without_its_probability_map_in_the_same_format(tmp_path: Path) -> None:
    """The state built from a lesion result writes the same JSON keys as format 1 and reads back as that result."""
    probability = np.zeros((24, 32), np.float32)
    probability[4:16, 6:22] = 0.9
    result = LesionSegmentation(probability, 0.35, ModelIdentity("m", "ab" * 32))
    result.mask[8:10, 10:12] = False
    result.edited, result.cleanup = True, ("fill_holes", "keep_largest")
    calibration = Calibration(0.02, "profile", "DermLite DL4")
    image = Path(shutil.copy(SAVED / "lesion.png", tmp_path / "lesion.png"))
    store = AutosaveStore(tmp_path / "autosave")

    store.save(image, saved_state(result, calibration=calibration, edited_at="2026-12-01T09:59:30+00:00"))

    written = json.loads((store.folder / f"{autosave_key(image)}.json").read_text(encoding="utf-8"))
    assert set(written) == set(json.loads((SAVED / "state.json").read_text(encoding="utf-8")))
    state = store.load(image, (24, 32))
    np.testing.assert_array_equal(state.mask, result.mask)
    assert (state.threshold, state.edited, state.cleanup) == (0.35, True, ("fill_holes", "keep_largest"))
    assert (state.mm_per_pixel, state.calibration_source, state.calibration_profile) == (
        0.02,
        "profile",
        "DermLite DL4",
    )
    assert state.model_sha256 == "ab" * 32 and state.edited_at == "2026-12-01T09:59:30+00:00"
