"""Tests for segmentation.lesion: the confidence flags, thresholds and LesionSegmentation."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.lesion import (
    LOW_CONFIDENCE_SHARE,
    ConfidenceFlags,
    LesionSegmentation,
    assess_confidence,
    binarise,
)

SIZE = (200, 240)


def _distance_from_centre(size: tuple[int, int] = SIZE, centre: tuple[float, float] | None = None) -> np.ndarray:
    height, width = size
    cy, cx = centre or (height / 2, width / 2)
    yy, xx = np.mgrid[0:height, 0:width]
    return np.hypot(yy - cy, xx - cx).astype(np.float32)


def _crisp_disc(radius: float = 50, **kwargs) -> np.ndarray:
    return (_distance_from_centre(**kwargs) <= radius).astype(np.float32)


def _blurry_disc(radius: float = 50, ramp: float = 30) -> np.ndarray:
    """1 inside ``radius - ramp/2``, 0 outside ``radius + ramp/2``, a slow linear ramp between (0.5 at radius)."""
    return np.clip(0.5 - (_distance_from_centre() - radius) / ramp, 0.0, 1.0).astype(np.float32)


def test_empty_mask_sets_only_the_empty_flag() -> None:
    probability = np.full(SIZE, 0.1, dtype=np.float32)
    flags = LesionSegmentation(probability).confidence()
    assert flags == ConfidenceFlags(empty=True, touches_border=False, low_confidence=False, uncertain_share=0.0)
    assert flags.any
    assert flags.labels() == ["no lesion found"]


def test_crisp_disc_is_confident() -> None:
    segmentation = LesionSegmentation(_crisp_disc())
    flags = segmentation.confidence()
    assert not flags.empty
    assert not flags.touches_border
    assert not flags.low_confidence
    assert flags.uncertain_share < 0.05
    assert not flags.any
    assert flags.labels() == []


@pytest.mark.parametrize(
    "centre", [(10, 120), (190, 120), (100, 5), (100, 235)], ids=["top", "bottom", "left", "right"]
)
def test_lesion_touching_the_border(centre: tuple[int, int]) -> None:
    flags = LesionSegmentation(_crisp_disc(radius=30, centre=centre)).confidence()
    assert flags.touches_border
    assert not flags.empty
    assert not flags.low_confidence
    assert flags.labels() == ["lesion at image border"]


def test_blurry_boundary_is_low_confidence() -> None:
    probability = _blurry_disc(radius=50, ramp=30)
    segmentation = LesionSegmentation(probability, threshold=0.5)
    assert segmentation.mask.any()
    flags = segmentation.confidence()
    assert flags.low_confidence
    assert flags.uncertain_share > LOW_CONFIDENCE_SHARE
    assert not flags.touches_border
    assert flags.labels() == ["low confidence"]


def test_flags_to_dict_has_the_csv_columns() -> None:
    flags = assess_confidence(_blurry_disc(), _blurry_disc() >= 0.5)
    row = flags.to_dict()
    assert set(row) == {"flag_empty", "flag_border", "flag_low_confidence", "uncertain_share"}
    assert row["flag_low_confidence"] is True
    assert row["uncertain_share"] == round(flags.uncertain_share, 4)


def test_with_threshold_rebinarises() -> None:
    probability = _blurry_disc(radius=50, ramp=30)
    segmentation = LesionSegmentation(probability, threshold=0.5, model_name="untrained-test-model", model_sha256="ab")
    lower, higher = segmentation.with_threshold(0.2), segmentation.with_threshold(0.8)
    np.testing.assert_array_equal(lower.mask, probability >= 0.2)
    np.testing.assert_array_equal(higher.mask, probability >= 0.8)
    assert higher.mask.sum() < segmentation.mask.sum() < lower.mask.sum()
    assert (lower.threshold, higher.threshold) == (0.2, 0.8)
    assert lower.model_name == "untrained-test-model"
    assert lower.model_sha256 == "ab"
    assert segmentation.threshold == 0.5, "the original is unchanged"
    np.testing.assert_array_equal(segmentation.mask, probability >= 0.5)


def test_with_threshold_drops_a_manual_edit() -> None:
    probability = _crisp_disc()
    edited = LesionSegmentation(probability, mask=np.zeros(SIZE, dtype=bool), edited=True, cleanup=("fill_holes",))
    redone = edited.with_threshold(0.5)
    assert not redone.edited
    assert redone.cleanup == ()
    np.testing.assert_array_equal(redone.mask, probability >= 0.5)


def test_provenance() -> None:
    segmentation = LesionSegmentation(_crisp_disc(), threshold=0.4, model_name="untrained-test-model", device="CPU")
    assert segmentation.provenance() == {
        "model": "untrained-test-model",
        "model_sha256": "",
        "threshold": 0.4,
        "cleanup": "none",
        "edited": False,
        "device": "CPU",
    }
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
