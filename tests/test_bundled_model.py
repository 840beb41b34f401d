"""Regression test of the bundled model: a broken export or preprocessing change shows up as a Dice drop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor
from segmentation.metrics import ConfusionCounts, dice
from segmentation.resources import DEFAULT_WEIGHTS_NAME, resources_dir

REPO = Path(__file__).resolve().parent.parent
FLOOR = REPO / "tests" / "data" / "regression_floor.json"
VALIDATION = REPO.parent / "shared" / "datasets" / "isic2017"
WEIGHTS = resources_dir() / "models" / DEFAULT_WEIGHTS_NAME


@pytest.fixture(scope="module")
def floor() -> dict:
    if not WEIGHTS.exists():
        pytest.skip("no bundled model yet (resources/models/lesionlens.safetensors)")
    if not (VALIDATION / "ISIC-2017_Validation_Data").is_dir():
        pytest.skip("ISIC 2017 validation data not found at ../shared/datasets/isic2017")
    assert FLOOR.exists(), "a model is bundled but tests/data/regression_floor.json is missing: run publish_model.py"
    return json.loads(FLOOR.read_text())


def test_floor_belongs_to_the_bundled_weights(floor):
    predictor = Predictor(WEIGHTS, "cpu")
    assert predictor.info.sha256 == floor["weights_sha256"], "weights changed: rerun `scripts/publish_model.py`"


def test_bundled_model_keeps_its_validation_dice(floor):
    predictor = Predictor(WEIGHTS, "cpu")
    values = []
    for name in floor["images"]:
        image = read_image(VALIDATION / "ISIC-2017_Validation_Data" / name)
        truth = read_mask(
            VALIDATION / "ISIC-2017_Validation_Part1_GroundTruth" / name.replace(".jpg", "_segmentation.png")
        )
        values.append(dice(ConfusionCounts.from_masks(predictor.predict(image).mask, truth)))
    assert len(values) == 20
    assert float(np.mean(values)) >= floor["floor"]
