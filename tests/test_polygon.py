import numpy as np
import pytest
from skimage.draw import disk, ellipse

from segmentation.polygon import mask_to_polygons, polygon_area, polygon_perimeter, polygons_to_mask


def _disc(shape=(90, 100), centre=(45, 50), radius=30):
    mask = np.zeros(shape, dtype=bool)
    rr, cc = disk(centre, radius, shape=shape)
    mask[rr, cc] = True
    return mask


def _ellipse(shape=(101, 151)):
    mask = np.zeros(shape, dtype=bool)
    rr, cc = ellipse(50, 75, 30, 60, shape=shape, rotation=0.4)
    mask[rr, cc] = True
    return mask


def _l_shape(shape=(80, 70)):
    mask = np.zeros(shape, dtype=bool)
    mask[10:70, 10:25] = True
    mask[55:70, 10:60] = True
    return mask


def _iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


@pytest.mark.parametrize("make", [_disc, _ellipse, _l_shape])
def test_round_trip_is_exact_without_simplification(make):
    mask = make()
    polys = mask_to_polygons(mask, tolerance_px=0)
    assert len(polys) == 1
    np.testing.assert_array_equal(polygons_to_mask(polys, mask.shape), mask)


@pytest.mark.parametrize("make", [_disc, _ellipse, _l_shape])
def test_simplified_round_trip_is_close_with_far_fewer_vertices(make):
    mask = make()
    exact = mask_to_polygons(mask, tolerance_px=0)[0]
    simple = mask_to_polygons(mask, tolerance_px=1.0)[0]
    assert len(simple) < len(exact) / 3
    assert _iou(polygons_to_mask([simple], mask.shape), mask) >= 0.98


def test_polygon_format_and_pixel_centre_convention():
    mask = np.zeros((7, 11), dtype=bool)
    mask[2:5, 5:8] = True  # rows 2..4, columns 5..7
    (poly,) = mask_to_polygons(mask, tolerance_px=0)
    assert poly.dtype == np.float64
    assert poly.ndim == 2
    assert poly.shape[1] == 2
    assert not np.array_equal(poly[0], poly[-1])  # open
    assert set(poly[:, 0]) == {5.0, 6.0, 7.0}  # x = column
    assert set(poly[:, 1]) == {2.0, 3.0, 4.0}  # y = row
    assert polygon_area(poly) == pytest.approx(4.0)  # through pixel centres: 2 x 2


def test_two_blobs_give_two_polygons_largest_first():
    mask = _disc((80, 120), (40, 30), 10) | _disc((80, 120), (40, 90), 20)
    polys = mask_to_polygons(mask)
    assert len(polys) == 2
    assert polys[0][:, 0].min() > 60  # the big disc on the right comes first
    assert polygon_area(polys[0]) > polygon_area(polys[1])
    assert mask_to_polygons(mask, min_area_px=500)[0][:, 0].min() > 60
    assert len(mask_to_polygons(mask, min_area_px=500)) == 1


def test_holes_are_not_returned():
    ring = _disc() & ~_disc(radius=10)
    polys = mask_to_polygons(ring, tolerance_px=0)
    assert len(polys) == 1
    np.testing.assert_array_equal(polygons_to_mask(polys, ring.shape), _disc())


def test_empty_mask_and_empty_list():
    assert mask_to_polygons(np.zeros((5, 6), dtype=bool)) == []
    out = polygons_to_mask([], (5, 6))
    assert out.shape == (5, 6)
    assert out.dtype == bool
    assert not out.any()


@pytest.mark.parametrize("shape", [(37, 53), (53, 37), (1, 9)])
def test_odd_sizes_and_lesions_touching_the_border(shape):
    mask = np.zeros(shape, dtype=bool)
    mask[: shape[0] // 2 + 1, 2:] = True
    polys = mask_to_polygons(mask, tolerance_px=0)
    np.testing.assert_array_equal(polygons_to_mask(polys, shape), mask)


def test_degenerate_and_out_of_image_polygons():
    shape = (10, 12)
    degenerate = [np.array([[1.0, 1.0], [5.0, 5.0]]), np.zeros((0, 2))]
    assert not polygons_to_mask(degenerate, shape).any()
    big = np.array([[-5.0, -5.0], [4.0, -5.0], [4.0, 3.0], [-5.0, 3.0]])
    expected = np.zeros(shape, dtype=bool)
    expected[0:4, 0:5] = True
    np.testing.assert_array_equal(polygons_to_mask([big], shape), expected)
    far = np.array([[-1e9, -1e9], [1e9, -1e9], [1e9, 1e9], [-1e9, 1e9]])
    assert polygons_to_mask([far], shape).all()
    with pytest.raises(ValueError):
        polygons_to_mask([np.array([1.0, 2.0, 3.0])], shape)


def test_overlapping_polygons_union():
    a = np.array([[0.0, 0.0], [6.0, 0.0], [6.0, 6.0], [0.0, 6.0]])
    b = a + 3.0
    out = polygons_to_mask([a, b], (12, 12))
    assert out[4, 4]  # in both: must not cancel out
    assert out.sum() == 49 + 49 - 16


def test_area_and_perimeter_of_rectangle():
    rect = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 3.0], [0.0, 3.0]])
    assert polygon_area(rect) == pytest.approx(12.0)
    assert polygon_area(rect[::-1]) == pytest.approx(12.0)
    assert polygon_perimeter(rect) == pytest.approx(14.0)
    assert polygon_area(rect[:2]) == 0.0
