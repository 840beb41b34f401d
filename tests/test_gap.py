"""The inference-side levers of the model card (trainer/gap.py): flip averaging and clean-up, scored honestly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor
from segmentation.metrics import ConfusionCounts, dice
from segmentation.postprocess import fill_holes, keep_largest_lesion
from trainer.evaluate import evaluate_folder
from trainer.gap import (
    VARIANTS,
    flip_averaged_probability,
    gap_sentence,
    measure_variants,
    variants_table,
    where_the_gap_is,
)


@pytest.fixture(scope="module")
def predictor(tiny_weights: Path) -> Predictor:
    return Predictor(tiny_weights, "cpu")


def test_flip_averaging_commutes_with_flipping_the_photo(predictor: Predictor, rgb_image) -> None:
    image = rgb_image(96, 128, seed=3)
    averaged = flip_averaged_probability(predictor, image)
    assert averaged.shape == image.shape[:2] and averaged.dtype == np.float32
    for flip in (np.fliplr, np.flipud):
        flipped = flip_averaged_probability(predictor, np.ascontiguousarray(flip(image)))
        np.testing.assert_allclose(flip(flipped), averaged, atol=2e-5)
    # It is a mean over four passes, not the single pass the app runs.
    assert not np.allclose(averaged, predictor.predict_probability(image), atol=1e-4)


@pytest.fixture
def validation_subset(require_isic, tmp_path: Path) -> tuple[Path, Path]:
    images, masks = require_isic("ISIC-2017_Validation_Data"), require_isic("ISIC-2017_Validation_Part1_GroundTruth")
    subset = (tmp_path / "images", tmp_path / "masks")
    for folder in subset:
        folder.mkdir()
    for image in sorted(images.glob("ISIC_*.jpg"))[:4]:
        (subset[0] / image.name).symlink_to(image)
        mask = f"{image.stem}_segmentation.png"
        (subset[1] / mask).symlink_to(masks / mask)
    return subset


def test_variants_score_the_same_images_as_the_model_card(predictor: Predictor, validation_subset) -> None:
    images, masks = validation_subset
    summaries = measure_variants(predictor, images, masks)
    assert list(summaries) == list(VARIANTS)
    shipped, _ = evaluate_folder(predictor, images, masks)
    assert summaries["as shipped"].mean == pytest.approx(shipped.mean)
    # The clean-up row is the app's own fill-holes + largest-lesion steps applied to the shipped masks.
    plain = [predictor.predict(read_image(path)).mask for path in sorted(images.glob("*.jpg"))]
    truths = [read_mask(path) for path in sorted(masks.glob("*.png"))]
    cleaned = [
        dice(ConfusionCounts.from_masks(keep_largest_lesion(fill_holes(mask)), truth))
        for mask, truth in zip(plain, truths, strict=True)
    ]
    assert summaries["clean-up (fill holes, largest lesion)"].mean["dice"] == pytest.approx(np.mean(cleaned))
    table = variants_table(summaries)
    assert table.count("\n") == len(VARIANTS) + 1 and "| as shipped | 1 |" in table and "+0.00 |" in table


def test_where_the_gap_is_splits_the_shortfall_between_failed_and_other_images() -> None:
    gap = where_the_gap_is([0.0, 0.9, 0.9, 0.86])  # shortfalls from 0.88: 0.88, 0, 0, 0.02
    assert gap["mean"] == pytest.approx(0.665)
    assert gap["median"] == pytest.approx(0.88)
    assert gap["failed_images"] == 1
    assert gap["mean_without_failed"] == pytest.approx((0.9 + 0.9 + 0.86) / 3)
    assert gap["shortfall_share_of_failed"] == pytest.approx(0.88 / 0.90)
    sentence = gap_sentence(gap, 4)
    assert (
        "1 of 4 images score below 0.5 Dice" in sentence
        and "98 %" in sentence
        and "Mean Dice 66.50 against a median of 88.00" in sentence
    )
