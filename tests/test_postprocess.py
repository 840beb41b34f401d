import numpy as np
import pytest
from skimage.draw import disk
from skimage.measure import perimeter

from segmentation.postprocess import (
    CLEANUP_STEPS,
    clean_up,
    default_smooth_radius,
    fill_holes,
    keep_largest_lesion,
    smooth_boundary,
)


def _disc(shape, centre, radius):
    mask = np.zeros(shape, dtype=bool)
    rr, cc = disk(centre, radius, shape=shape)
    mask[rr, cc] = True
    return mask


def _jagged_square():
    mask = np.zeros((100, 100), dtype=bool)
    mask[20:80, 20:80] = True
    for i in range(24, 76, 12):  # 2x2-px teeth and notches alternating along every side
        for a, b in ((i, i + 2), (i + 6, i + 8)):
            tooth = a == i
            mask[18:20, a:b] = tooth
            mask[20:22, a:b] = tooth
            mask[78:80, a:b] = tooth
            mask[80:82, a:b] = tooth
            mask[a:b, 18:20] = tooth
            mask[a:b, 20:22] = tooth
            mask[a:b, 78:80] = tooth
            mask[a:b, 80:82] = tooth
    return mask


def test_keep_largest_keeps_big_disc_only():
    big = _disc((80, 120), (40, 35), 20)
    small = _disc((80, 120), (40, 95), 8)
    mask = big | small
    original = mask.copy()
    out = keep_largest_lesion(mask)
    np.testing.assert_array_equal(out, big)
    np.testing.assert_array_equal(mask, original)
    assert out is not mask


def test_keep_largest_uses_8_connectivity():
    mask = np.zeros((6, 6), dtype=bool)
    mask[0:2, 0:2] = True
    mask[2:4, 2:4] = True  # touches the first block only diagonally
    mask[5, 5] = True
    expected = mask.copy()
    expected[5, 5] = False
    np.testing.assert_array_equal(keep_largest_lesion(mask), expected)


def test_ring_is_filled_to_disc():
    outer = _disc((60, 60), (30, 30), 20)
    ring = outer & ~_disc((60, 60), (30, 30), 10)
    original = ring.copy()
    np.testing.assert_array_equal(fill_holes(ring), outer)
    np.testing.assert_array_equal(ring, original)


def test_smooth_jagged_square_keeps_area():
    mask = _jagged_square()
    original = mask.copy()
    out = smooth_boundary(mask, 3)
    np.testing.assert_array_equal(mask, original)
    assert out.dtype == bool
    assert perimeter(out) < 0.8 * perimeter(mask)
    assert abs(int(out.sum()) - int(mask.sum())) < 0.03 * mask.sum()


def test_smooth_neither_erodes_nor_grows_at_image_border():
    mask = np.zeros((40, 40), dtype=bool)
    mask[:, :20] = True
    np.testing.assert_array_equal(smooth_boundary(mask, 3), mask)
    near = np.zeros((40, 40), dtype=bool)
    near[5:30, 2:20] = True  # 2 px from the left edge
    assert not smooth_boundary(near, 3)[:, :2].any()


def test_smooth_removes_specks_and_pinholes():
    mask = _disc((60, 60), (30, 30), 20)
    mask[30, 30] = False
    mask[2, 2] = True
    out = smooth_boundary(mask, 2)
    assert out[30, 30]
    assert not out[2, 2]
    assert smooth_boundary(mask, 0) is not mask
    np.testing.assert_array_equal(smooth_boundary(mask, 0), mask)
    with pytest.raises(ValueError):
        smooth_boundary(mask, -1)


def test_empty_stays_empty_for_every_step():
    empty = np.zeros((32, 48), dtype=bool)
    out = clean_up(empty, CLEANUP_STEPS)
    assert out.shape == empty.shape
    assert out.dtype == bool
    assert not out.any()


def test_clean_up_order_and_validation():
    mask = _disc((100, 100), (50, 50), 30) & ~_disc((100, 100), (50, 50), 5)
    mask |= _disc((100, 100), (5, 5), 3)
    original = mask.copy()
    out_a = clean_up(mask, ["smooth", "keep_largest", "fill_holes"])
    out_b = clean_up(mask, CLEANUP_STEPS)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(mask, original)
    assert not out_a[5, 5]
    assert out_a[50, 50]
    np.testing.assert_array_equal(clean_up(mask, []), mask)
    with pytest.raises(ValueError, match="fill_holes"):
        clean_up(mask, ["fill", "smooth"])


def test_default_smooth_radius_scales_with_size():
    assert default_smooth_radius((50, 80)) == 1
    assert default_smooth_radius((1024, 768)) == 4
    assert default_smooth_radius((2000, 3000)) == 10


def test_rejects_non_bool():
    with pytest.raises(TypeError):
        fill_holes(np.zeros((4, 4), dtype=np.uint8))
