"""The fast measurement path (lesion crop, reduced copies) against a plain full-resolution computation, on real
full-resolution ISIC photos: area and perimeter within 1 %, diameters within 0.5 % (the clinic's tolerances), and
the clean-up steps equal to their whole-image definitions."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from skimage import measure

from segmentation import measurements
from segmentation.imageio import read_image, read_mask
from segmentation.measurements import measure_lesion
from segmentation.postprocess import fill_holes, keep_largest_lesion, smooth_boundary

FULLRES = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "isic2017-fullres-samples"


def _sample(stem: str, megapixels: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    image_path, mask_path = FULLRES / "images" / f"{stem}.jpg", FULLRES / "masks" / f"{stem}_segmentation.png"
    if not image_path.is_file() or not mask_path.is_file():
        pytest.skip(f"full-resolution ISIC samples not found at {FULLRES}")
    image, mask = read_image(image_path), read_mask(mask_path)
    if megapixels is not None:  # a camera of more pixels: upscale the photo and its mask
        factor = math.sqrt(megapixels * 1e6 / mask.size)
        size = (round(mask.shape[1] * factor), round(mask.shape[0] * factor))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)
    return image, mask


def _reference(mask: np.ndarray) -> dict[str, float]:
    """Whole-image numbers by skimage/scipy, without any crop or reduced copy."""
    props = measure.regionprops(mask.astype(np.uint8))[0]
    outline = np.vstack(measure.find_contours(np.pad(mask, 1).astype(np.uint8), 0.5, fully_connected="high"))
    outline = outline[ConvexHull(outline).vertices]
    return {
        "area": float(props.area),
        "perimeter": float(props.perimeter_crofton),
        "max_diameter": math.sqrt(float(pdist(outline, "sqeuclidean").max())),
        "equivalent_diameter": float(props.equivalent_diameter_area),
    }


def _check_against_full_resolution(image: np.ndarray, mask: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = measure_lesion(mask, image)
    assert measurements.reduction_factor(fast.area) > 1, "the sample must be large enough to take the reduced path"
    reference = _reference(mask)
    for name, tolerance in (
        ("area", 0.01),
        ("perimeter", 0.01),
        ("max_diameter", 0.005),
        ("equivalent_diameter", 0.005),
    ):
        assert getattr(fast, name) == pytest.approx(reference[name], rel=tolerance), name
    # The ratios and colour from the reduced copy against the same computation at full resolution.
    monkeypatch.setattr(measurements, "REDUCED_PIXELS", 10**12)
    full = measure_lesion(mask, image)
    assert measurements.reduction_factor(full.area) == 1
    for name in ("asymmetry_major", "asymmetry_minor", "asymmetry"):
        assert getattr(fast, name) == pytest.approx(getattr(full, name), abs=0.01), name
    assert fast.colour_variegation == pytest.approx(full.colour_variegation, rel=0.01)


def test_reduced_path_matches_full_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    image, mask = _sample("ISIC_0007141")  # 3024x2016, a lesion of a million pixels
    _check_against_full_resolution(image, mask, monkeypatch)


@pytest.mark.slow
def test_reduced_path_matches_full_resolution_at_12_megapixels(monkeypatch: pytest.MonkeyPatch) -> None:
    image, mask = _sample("ISIC_0012660", megapixels=12)
    _check_against_full_resolution(image, mask, monkeypatch)


def test_clean_up_on_the_crop_equals_the_whole_image_definitions() -> None:
    _, mask = _sample("ISIC_0012660")
    mask = mask.copy()
    rng = np.random.default_rng(3)
    rows, cols = np.nonzero(mask)
    for i in rng.choice(rows.size, 40, replace=False):  # pinholes and small holes inside the lesion
        mask[rows[i] : rows[i] + rng.integers(1, 9), cols[i] : cols[i] + rng.integers(1, 9)] = False
    mask[:5, :5] = True  # specks, one at the image border
    mask[100:104, 2000:2003] = True
    mask[200:205, 200:205] = True  # a ring whose hollow touches the outside only at a corner: still a hole, since
    mask[201:204, 201:204] = False  # the background is 4-connected
    mask[200, 204] = False
    assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    labels = measure.label(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    assert np.array_equal(keep_largest_lesion(mask), labels == np.argmax(sizes))
    small = mask[::4, ::4]  # the whole-image blur is slow at full size
    whole = ndimage.gaussian_filter(small.astype(np.float32), sigma=3, mode="nearest") > 0.5
    assert np.array_equal(smooth_boundary(small, 3), whole)
