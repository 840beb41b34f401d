"""segmentation.assist: click add / remove and the box re-segmentation, on real validation images with the bundled
model's probability maps, and on a 6000x4000 photo made by upscaling a full-resolution sample.

The expected regions are computed independently here (skimage's labelling of the thresholded map inside the reach),
so a click is checked against what the probability map predicts, not against the code's own flood fill.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import measure

from segmentation.assist import (
    AssistSettings,
    RefinedProbability,
    box_crop,
    click_add,
    click_remove,
    resegment_box,
)
from segmentation.imageio import read_image
from segmentation.inference import Predictor
from segmentation.resources import bundled_weights_path
from tests.assist_helpers import edge_disc, expected_region
from tests.conftest import ISIC_SAMPLE_DIR

VALIDATION = ISIC_SAMPLE_DIR / "ISIC-2017_Validation_Data"
FULLRES = ISIC_SAMPLE_DIR.parent / "isic2017-fullres-samples" / "images"
SETTINGS = AssistSettings()


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    weights = bundled_weights_path()
    if not weights.exists():
        pytest.skip("no bundled model")
    return Predictor(weights, "cpu", backend="torch")


def validation_images() -> list[Path]:
    if not VALIDATION.is_dir():
        pytest.skip(f"ISIC validation images not found at {VALIDATION}")
    return sorted(VALIDATION.glob("*.jpg"))


@pytest.fixture(scope="module")
def faint_rim(predictor: Predictor) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The first validation image whose model mask has an "almost lesion" rim (0.2 <= p < 0.5) of some size; the
    click goes to the rim pixel farthest from the rim's edge."""
    for path in validation_images():
        probability = predictor.predict_probability(read_image(path))
        rim = (probability >= SETTINGS.add_threshold) & (probability < 0.5)
        if rim.sum() > 300:
            distance = cv2.distanceTransform(np.pad(rim, 1).view(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            row, col = np.unravel_index(int(np.argmax(distance)), rim.shape)
            return probability, probability >= 0.5, int(row), int(col)
    pytest.skip("no validation image with an uncertain rim")


def test_click_add_takes_the_almost_lesion_connected_to_the_click(faint_rim) -> None:
    probability, mask, row, col = faint_rim
    patch = click_add(probability, mask, row, col, SETTINGS)
    assert patch is not None and patch.used_model
    new = patch.apply(mask)
    radius = SETTINGS.reach_px(mask.shape)
    model_region = expected_region(~mask & (probability >= SETTINGS.add_threshold), row, col, radius)
    expected = model_region | (edge_disc(mask, row, col, radius, radius) & ~mask)
    assert np.array_equal(new & ~mask, expected)
    assert model_region.sum() > 10 and new[row, col]
    assert (new | mask).sum() == new.sum()  # nothing of the lesion was lost
    top, left, bottom, right = patch.box
    outside = np.ones_like(mask)
    outside[top:bottom, left:right] = False
    assert np.array_equal(new[outside], mask[outside])  # only the click's window changes


def test_click_add_on_lesion_adds_nothing(faint_rim) -> None:
    probability, mask, _, _ = faint_rim
    row, col = np.argwhere(mask)[0]
    assert click_add(probability, mask, int(row), int(col), SETTINGS) is None


def test_click_add_without_model_support_fills_a_disc_to_the_lesion(faint_rim) -> None:
    probability, mask, _, _ = faint_rim
    rows, cols = np.nonzero(probability < 0.01)
    index = len(rows) // 2
    row, col = int(rows[index]), int(cols[index])
    patch = click_add(probability, mask, row, col, SETTINGS)
    assert patch is not None and not patch.used_model
    added = patch.apply(mask) & ~mask
    lesion = np.argwhere(mask)
    nearest = np.sqrt(((lesion - [row, col]) ** 2).sum(axis=1)).min()
    radius = min(nearest, SETTINGS.fallback * SETTINGS.reach_px(mask.shape))
    yy, xx = np.nonzero(added)
    distances = np.sqrt((yy - row) ** 2 + (xx - col) ** 2)
    assert added[row, col] and distances.max() <= radius + 1e-6
    assert added.sum() >= 0.8 * np.pi * max(radius - 1, 1) ** 2


def test_click_remove_takes_a_separate_component_whole(faint_rim) -> None:
    probability, mask, _, _ = faint_rim
    mask, probability = mask.copy(), probability.copy()
    lesion = mask.copy()
    free = np.argwhere(cv2.dilate(mask.view(np.uint8), np.ones((41, 41), np.uint8)) == 0)
    row, col = (int(v) for v in free[len(free) // 2])
    cv2.rectangle(mask.view(np.uint8), (col - 12, row - 3), (col + 12, row + 3), 1, -1)
    speck = mask & ~lesion
    probability[speck] = 0.99  # the model was sure of it: only "separate component" takes it whole
    patch = click_remove(probability, mask, row, col, SETTINGS)
    assert patch is not None
    assert np.array_equal(patch.apply(mask), lesion)
    assert speck.sum() > 20


def test_click_remove_on_the_lesion_takes_only_the_unsure_part(predictor: Predictor) -> None:
    for path in validation_images():
        probability = predictor.predict_probability(read_image(path))
        mask = probability >= SETTINGS.add_threshold  # a generous mask: its rim is unsure
        unsure = mask & (probability < SETTINGS.remove_threshold)
        if measure.label(mask, connectivity=2).max() == 1 and unsure.sum() > 200:
            break
    else:
        pytest.skip("no validation image with one lesion and an unsure rim")
    row, col = (int(v) for v in np.argwhere(unsure)[unsure.sum() // 2])
    patch = click_remove(probability, mask, row, col, SETTINGS)
    new = patch.apply(mask)
    removed = mask & ~new
    radius = SETTINGS.reach_px(mask.shape)
    expected = expected_region(unsure, row, col, radius) | (edge_disc(~mask, row, col, radius, radius) & mask)
    assert np.array_equal(removed, expected)
    assert removed[row, col] and new.sum() > 0.5 * mask.sum()  # never the whole lesion
    assert not (new & ~mask).any()


def test_click_remove_never_takes_the_whole_lesion() -> None:
    probability = np.full((100, 100), 0.6, np.float32)  # one small, wholly unsure lesion
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True
    patch = click_remove(probability, mask, 50, 50, SETTINGS)
    new = patch.apply(mask)
    assert 0 < new.sum() < mask.sum() and not new[50, 50]


def test_box_resegments_inside_the_box_only(faint_rim) -> None:
    _, mask, _, _ = faint_rim
    image = np.zeros((*mask.shape, 3), np.uint8)
    box = (40, 60, 120, 180)
    calls: list[tuple[int, int]] = []

    def predict(crop: np.ndarray) -> np.ndarray:  # a known "model": lesion on the crop's left half
        calls.append(crop.shape[:2])
        out = np.zeros(crop.shape[:2], np.float32)
        out[:, : crop.shape[1] // 2] = 1.0
        return out

    patch, inside = resegment_box(predict, image, mask, box, margin=0.1, keep_outside=True)
    new = patch.apply(mask)
    top, left, bottom, right = box
    outside = np.ones_like(mask)
    outside[top:bottom, left:right] = False
    assert np.array_equal(new[outside], mask[outside])
    assert patch.box == box and inside.shape == (bottom - top, right - left)
    crop = box_crop(mask.shape, box, 0.1)
    assert calls == [(crop[2] - crop[0], crop[3] - crop[1])]
    assert np.array_equal(new[top:bottom, left:right], inside >= 0.5)
    cleared, _ = resegment_box(predict, image, mask, box, margin=0.1, keep_outside=False)
    assert not cleared.apply(mask)[outside].any()
    assert np.array_equal(cleared.apply(mask)[top:bottom, left:right], inside >= 0.5)


def test_box_crop_keeps_the_models_aspect_inside_the_image() -> None:
    top, left, bottom, right = box_crop((192, 256), (50, 100, 100, 120), 0.0, aspect=1.25)
    assert (right - left) / (bottom - top) == pytest.approx(1.25, abs=0.05)
    assert box_crop((192, 256), (0, 0, 192, 256), 0.5) == (0, 0, 192, 256)


def test_refined_probability_reads_patches_over_the_map() -> None:
    refined = RefinedProbability(np.zeros((50, 60), np.float32))
    refined.add(10, 20, np.ones((5, 5), np.float32))
    window = refined[slice(8, 12), slice(18, 22)]
    assert window.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    assert refined.base.sum() == 0


def test_bad_settings_and_clicks_are_refused() -> None:
    with pytest.raises(ValueError, match="add threshold"):
        AssistSettings(add_threshold=1.5)
    with pytest.raises(ValueError, match="outside the image"):
        click_add(np.zeros((10, 10), np.float32), np.zeros((10, 10), bool), 10, 3)
    with pytest.raises(ValueError, match="less than 2x2"):
        resegment_box(lambda c: c[..., 0] * 0.0, np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), bool),
                      (3, 3, 3, 8))  # fmt: skip


@pytest.mark.slow
def test_a_6000x4000_photo(predictor: Predictor) -> None:
    """Clicks and a box on a full-resolution sample upscaled to 6000x4000: each touches only its window."""
    if not FULLRES.is_dir():
        pytest.skip(f"full-resolution samples not found at {FULLRES}")
    image = cv2.resize(read_image(sorted(FULLRES.glob("*.jpg"))[0]), (6000, 4000), interpolation=cv2.INTER_LINEAR)
    probability = predictor.predict_probability(image)
    mask = probability >= 0.5
    assert mask.any()
    rim = (probability >= SETTINGS.add_threshold) & ~mask
    rows, cols = np.nonzero(rim[::8, ::8])
    row, col = int(rows[len(rows) // 2]) * 8, int(cols[len(cols) // 2]) * 8
    patch = click_add(probability, mask, row, col, SETTINGS)
    reach = SETTINGS.reach_px(mask.shape)
    assert patch is not None and max(patch.values.shape) <= 2 * reach + 1
    assert patch.values[row - patch.top, col - patch.left]
    new = patch.apply(mask)
    lesion_rows, lesion_cols = np.nonzero(mask[::16, ::16])
    top, left = int(lesion_rows.min()) * 16, int(lesion_cols.min()) * 16
    bottom, right = int(lesion_rows.max()) * 16 + 16, int(lesion_cols.max()) * 16 + 16
    box_patch, inside = resegment_box(predictor.predict_probability, image, new, (top, left, bottom, right))
    assert box_patch.box == (top, left, min(bottom, 4000), min(right, 6000))
    assert inside.dtype == np.float32 and box_patch.values.any()
