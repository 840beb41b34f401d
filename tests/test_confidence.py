"""Tests for segmentation.lesion and segmentation.quality on synthetic maps: flags, thresholds, the estimator's
metadata entry and LesionSegmentation. The real-image checks are in tests/test_quality.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from segmentation.lesion import LesionSegmentation, binarise
from segmentation.provenance import PROVENANCE_KEYS, ModelIdentity
from segmentation.quality import (
    AT_BORDER,
    NO_LESION,
    QualityEstimator,
    assess_quality,
    model_resolution_mask,
    quality_features,
)

SIZE = (200, 240)
SMALL = (40, 48)  # the "model's resolution" of these synthetic maps


def _distance_from_centre(size: tuple[int, int] = SIZE, centre: tuple[float, float] | None = None) -> np.ndarray:
    height, width = size
    cy, cx = centre or (height / 2, width / 2)
    yy, xx = np.mgrid[0:height, 0:width]
    return np.hypot(yy - cy, xx - cx).astype(np.float32)


def _crisp_disc(radius: float = 50, size: tuple[int, int] = SIZE, **kwargs) -> np.ndarray:
    return (_distance_from_centre(size, **kwargs) <= radius).astype(np.float32)


def _blurry_disc(radius: float = 10, ramp: float = 8, size: tuple[int, int] = SMALL) -> np.ndarray:
    """1 inside ``radius - ramp/2``, 0 outside ``radius + ramp/2``, a slow linear ramp between (0.5 at radius)."""
    return np.clip(0.5 - (_distance_from_centre(size) - radius) / ramp, 0.0, 1.0).astype(np.float32)


def _estimator(**changes) -> QualityEstimator:
    """Estimated Dice = 0.5 + 0.5 * (soft_dice - 0.9) / 0.1, review below 0.8."""
    base = QualityEstimator(
        features=("soft_dice",), mean=(0.9,), scale=(0.1,), coefficients=(0.5,), intercept=0.5, review_below=0.8
    )
    return replace(base, **changes)


def test_empty_mask_is_no_lesion_found_without_review() -> None:
    quality = assess_quality(np.zeros(SMALL, np.float32), np.zeros(SIZE, bool), _estimator())
    assert quality.no_lesion and not quality.needs_review and not quality.at_border
    assert quality.estimated_dice is None
    assert quality.reasons() == [NO_LESION]


def test_crisp_disc_has_a_high_estimate_and_no_flag() -> None:
    mask = _crisp_disc() >= 0.5
    quality = assess_quality(model_resolution_mask(mask, SMALL).astype(np.float32), mask, _estimator())
    assert quality.estimated_dice == pytest.approx(1.0)
    assert not quality.any
    assert quality.reasons() == []
    assert quality.estimate_text() == "estimated Dice 1.00"


def test_blurry_disc_estimates_lower_and_needs_review() -> None:
    probability = _blurry_disc()
    quality = assess_quality(probability, probability >= 0.5, _estimator())
    assert quality.estimated_dice < 0.8
    assert quality.needs_review
    assert quality.labels() == ["needs review"]
    assert "estimated Dice" in quality.reasons()[0] and "0.80" in quality.reasons()[0]


def test_the_operating_point_comes_from_the_estimator() -> None:
    probability = _blurry_disc()
    mask = probability >= 0.5
    estimate = assess_quality(probability, mask, _estimator()).estimated_dice
    assert assess_quality(probability, mask, _estimator(review_below=estimate - 0.01)).needs_review is False
    assert assess_quality(probability, mask, _estimator(review_below=estimate + 0.01)).needs_review is True


@pytest.mark.parametrize(
    "centre", [(10, 120), (190, 120), (100, 5), (100, 235)], ids=["top", "bottom", "left", "right"]
)
def test_lesion_at_the_border_is_informational(centre: tuple[int, int]) -> None:
    mask = _crisp_disc(radius=30, centre=centre) >= 0.5
    quality = assess_quality(model_resolution_mask(mask, SMALL).astype(np.float32), mask, _estimator())
    assert quality.at_border
    assert not quality.needs_review, "the border is common in dermoscopy: not a review flag"
    assert quality.reasons() == [AT_BORDER]


def test_without_an_estimator_there_is_no_estimate() -> None:
    mask = _crisp_disc() >= 0.5
    quality = assess_quality(np.zeros(SMALL, np.float32), mask, None)
    assert quality.estimated_dice is None and not quality.needs_review


def test_a_damaged_mask_estimates_lower_than_the_models_own() -> None:
    probability = _crisp_disc(radius=10, size=SMALL)
    own = assess_quality(probability, probability >= 0.5, _estimator()).estimated_dice
    shifted = np.roll(probability >= 0.5, 6, axis=1)
    assert assess_quality(probability, shifted, _estimator()).estimated_dice < own


def test_features_are_measured_at_the_model_resolution() -> None:
    features = quality_features(_blurry_disc(), _blurry_disc() >= 0.5)
    assert set(features) >= {"soft_dice", "near_threshold", "band_uncertainty", "lesion_share", "border_contact"}
    assert 0 < features["soft_dice"] < 1
    assert features["components"] == 1.0
    with pytest.raises(ValueError, match="one shape"):
        quality_features(np.zeros(SMALL, np.float32), np.zeros(SIZE, bool))


def test_to_dict_has_the_csv_columns() -> None:
    probability = _blurry_disc()
    row = assess_quality(probability, probability >= 0.5, _estimator()).to_dict()
    assert set(row) == {"estimated_dice", "needs_review", "no_lesion", "at_border", "reasons"}
    assert row["needs_review"] is True
    assert row["reasons"].startswith("needs review: estimated Dice")


def test_estimator_round_trips_and_rejects_bad_entries() -> None:
    estimator = _estimator(no_lesion={"mean_inside": 0.7})
    assert QualityEstimator.from_dict(estimator.to_dict()) == estimator
    for broken, message in (
        ({**estimator.to_dict(), "review_below": 1.5}, "review_below"),
        ({**estimator.to_dict(), "features": ["made_up"]}, "unknown features"),
        ({**estimator.to_dict(), "scale": [0.0]}, "positive"),
        ({**estimator.to_dict(), "coefficients": [1.0, 2.0]}, "coefficients"),
        ({k: v for k, v in estimator.to_dict().items() if k != "intercept"}, "intercept"),
        ({**estimator.to_dict(), "no_lesion": {"made_up": 1}}, "no_lesion"),
    ):
        with pytest.raises(ValueError, match=message):
            QualityEstimator.from_dict(broken)


def test_no_lesion_rule_empties_a_faint_outline() -> None:
    faint = np.zeros(SIZE, np.float32)
    faint[90:110, 100:130] = 0.6
    small = np.zeros(SMALL, np.float32)
    small[18:22, 20:26] = 0.6
    rule = _estimator(no_lesion={"mean_inside": 0.7, "soft_area": 0.05})
    segmentation = LesionSegmentation(faint, model_probability=small, quality_model=rule)
    assert not segmentation.mask.any()
    assert segmentation.quality().no_lesion
    strong = LesionSegmentation(faint * 1.6, model_probability=small * 1.6, quality_model=rule)
    assert strong.mask.any(), "a confident outline is kept"
    assert LesionSegmentation(faint, model_probability=small).mask.any(), "no rule without an estimator"


def test_set_threshold_rebinarises_the_result_in_place() -> None:
    probability = _blurry_disc(radius=50, ramp=30, size=SIZE)
    result = LesionSegmentation(probability, threshold=0.5, model=ModelIdentity("untrained-test-model", "ab"))
    at_half = result.mask.sum()
    assert result.set_threshold(0.2)
    np.testing.assert_array_equal(result.mask, probability >= 0.2)
    assert result.mask.sum() > at_half and result.threshold == 0.2
    assert result.set_threshold(0.8)
    np.testing.assert_array_equal(result.mask, probability >= 0.8)
    assert result.model == ModelIdentity("untrained-test-model", "ab"), "the model stays"
    with pytest.raises(ValueError, match="threshold"):
        result.set_threshold(1.5)
    assert result.threshold == 0.8, "a refused threshold changes nothing"


def test_set_threshold_keeps_an_edited_mask_and_its_threshold() -> None:
    probability = _crisp_disc()
    hand_drawn = np.zeros(SIZE, dtype=bool)
    edited = LesionSegmentation(probability, 0.4, mask=hand_drawn, edited=True, cleanup=("fill_holes",))
    assert not edited.set_threshold(0.6)
    assert edited.mask is hand_drawn and edited.threshold == 0.4 and edited.cleanup == ("fill_holes",)


def test_a_result_without_a_probability_map_keeps_its_mask() -> None:
    mask = _crisp_disc() >= 0.5
    restored = LesionSegmentation(None, 0.3, mask=mask)
    assert not restored.set_threshold(0.7)
    assert restored.mask is mask and restored.threshold == 0.7
    assert restored.shape == SIZE and restored.quality().estimated_dice is None
    with pytest.raises(ValueError, match="probability"):
        LesionSegmentation(None, 0.5)


def test_provenance() -> None:
    model = ModelIdentity(name="untrained-test-model", device="CPU (2 threads, PyTorch)", backend="PyTorch")
    segmentation = LesionSegmentation(_crisp_disc(), threshold=0.4, model=model)
    provenance = segmentation.provenance()
    assert tuple(provenance) == PROVENANCE_KEYS
    assert {key: provenance[key] for key in PROVENANCE_KEYS[:8]} == {
        "model": "untrained-test-model",
        "model_sha256": "",
        "model_created": "",
        "device": "CPU (2 threads, PyTorch)",
        "backend": "PyTorch",
        "threshold": 0.4,
        "cleanup": "none",
        "edited": False,
    }
    assert provenance["calibration_source"] == "none" and provenance["mm_per_pixel"] is None
    assert segmentation.shape == SIZE


@pytest.mark.parametrize("threshold", [-0.01, 1.01, float("nan")])
def test_binarise_rejects_a_threshold_outside_zero_one(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"threshold must be within 0\.\.1"):
        binarise(np.zeros((2, 2), dtype=np.float32), threshold)


def test_lesion_segmentation_rejects_a_bad_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        LesionSegmentation(np.zeros((2, 2), dtype=np.float32), threshold=2.0)


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_binarise_accepts_the_ends(threshold: float) -> None:
    probability = np.array([[0.0, 0.5], [0.999, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(binarise(probability, threshold), probability >= threshold)


def test_the_result_measures_its_own_mask() -> None:
    """The result carries its measurements (issue 17: one object): the largest region, in mm with a calibration."""
    probability = np.zeros((60, 80), np.float32)
    probability[10:40, 10:50] = 0.9  # the lesion: 30 x 40 px
    probability[50:53, 70:73] = 0.9  # a speck
    result = LesionSegmentation(probability)
    measured = result.measure(mm_per_pixel=0.1)
    assert measured is not None and measured.area == pytest.approx(30 * 40 * 0.01)
    assert measured.n_regions == 2 and measured.other_regions == 1
    result.mask[:] = False
    assert result.measure() is None
