import math

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from segmentation.measurements import MEASUREMENT_FIELDS, LesionMeasurements, measure_lesion, unit_label


def _disc(shape=(130, 130), centre=(65, 65), radius=50):
    mask = np.zeros(shape, dtype=bool)
    rr, cc = disk(centre, radius, shape=shape)
    mask[rr, cc] = True
    return mask


def _ellipse(rotation=0.0, shape=(200, 200)):
    mask = np.zeros(shape, dtype=bool)
    # semi-axes 80 along x (columns) and 40 along y (rows) before rotation
    rr, cc = ellipse(100, 100, 40, 80, shape=shape, rotation=rotation)
    mask[rr, cc] = True
    return mask


def _l_shape():
    mask = np.zeros((120, 120), dtype=bool)
    mask[10:110, 10:40] = True
    mask[80:110, 10:80] = True
    return mask


def test_disc():
    m = measure_lesion(_disc())
    assert m is not None
    assert m.unit == "px"
    assert m.n_regions == 1
    assert m.area == pytest.approx(math.pi * 50**2, rel=0.01)
    assert m.perimeter == pytest.approx(2 * math.pi * 50, rel=0.03)
    assert m.equivalent_diameter == pytest.approx(100, rel=0.01)
    assert m.max_diameter == pytest.approx(100, rel=0.02)
    assert m.border_irregularity == pytest.approx(1.0, rel=0.05)
    assert m.asymmetry < 0.02
    assert m.colour_variegation is None


def test_axis_aligned_ellipse():
    m = measure_lesion(_ellipse())
    a, b = 80, 40
    ramanujan = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
    assert m.area == pytest.approx(math.pi * a * b, rel=0.01)
    assert m.max_diameter == pytest.approx(160, rel=0.02)
    assert m.perimeter == pytest.approx(ramanujan, rel=0.03)
    assert m.border_irregularity > 1.1  # elongated: less compact than a disc
    assert m.asymmetry < 0.02


@pytest.mark.parametrize("rotation", [0.5, 1.1])
def test_rotated_ellipse_is_symmetric(rotation):
    m = measure_lesion(_ellipse(rotation))
    assert m.asymmetry_major < 0.02
    assert m.asymmetry_minor < 0.02


def test_l_shape_is_asymmetric():
    m = measure_lesion(_l_shape())
    assert m.asymmetry > 0.2
    assert m.asymmetry == pytest.approx((m.asymmetry_major + m.asymmetry_minor) / 2)
    assert m.border_irregularity > 1.5


def test_mm_scaling():
    px = measure_lesion(_ellipse())
    mm = measure_lesion(_ellipse(), mm_per_pixel=0.01)
    assert mm.unit == "mm"
    assert mm.area == pytest.approx(px.area * 1e-4)
    for name in ("perimeter", "max_diameter", "equivalent_diameter"):
        assert getattr(mm, name) == pytest.approx(getattr(px, name) * 0.01)
    for name in ("asymmetry", "border_irregularity"):
        assert getattr(mm, name) == pytest.approx(getattr(px, name))
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError):
            measure_lesion(_disc(), mm_per_pixel=bad)


def test_to_dict_keys_carry_units():
    d_mm = measure_lesion(_disc(), mm_per_pixel=0.02).to_dict()
    assert {"area_mm2", "perimeter_mm", "max_diameter_mm", "equivalent_diameter_mm"} <= set(d_mm)
    d_px = measure_lesion(_disc()).to_dict()
    assert {"area_px2", "perimeter_px", "asymmetry", "border_irregularity", "n_regions"} <= set(d_px)
    assert d_px["colour_variegation"] is None
    assert len(d_px) == len(MEASUREMENT_FIELDS)


def test_fields_describe_every_measurement():
    names = {f for f in LesionMeasurements.__dataclass_fields__} - {"unit"}
    assert {attr for attr, _, _ in MEASUREMENT_FIELDS} == names
    assert unit_label("area", "mm") == "mm²"
    assert unit_label("length", "px") == "px"
    assert unit_label("ratio", "mm") == ""


def test_empty_mask_gives_none():
    assert measure_lesion(np.zeros((10, 10), dtype=bool)) is None


def test_the_largest_region_is_measured_and_the_others_counted():
    lesion = _disc((200, 300), (100, 150), 60)
    speck = np.zeros_like(lesion)
    speck[0:3, 0:3] = True  # a corner speck, as a low threshold leaves them
    alone = measure_lesion(lesion)
    m = measure_lesion(lesion | speck)
    assert (m.n_regions, m.other_regions) == (2, 1)
    for name in ("area", "perimeter", "max_diameter", "asymmetry"):
        assert getattr(m, name) == pytest.approx(getattr(alone, name))
    # Most of the lesion erased: the diameter follows what is left, the speck does not hold it up.
    rest = lesion.copy()
    rest[:, :200] = False
    shrunk = measure_lesion(rest | speck)
    assert shrunk.max_diameter < 0.8 * alone.max_diameter
    assert shrunk.max_diameter == pytest.approx(measure_lesion(rest).max_diameter)


def test_all_regions_measured_together_on_request():
    mask = _disc((60, 120), (30, 30), 10) | _disc((60, 120), (30, 90), 10)
    single = measure_lesion(_disc((60, 120), (30, 30), 10))
    m = measure_lesion(mask, regions="all")
    assert (m.n_regions, m.other_regions) == (2, 0)
    assert m.area == pytest.approx(2 * single.area)
    assert m.max_diameter > 70
    largest = measure_lesion(mask)
    assert (largest.n_regions, largest.other_regions) == (2, 1)
    assert largest.area == pytest.approx(single.area)
    with pytest.raises(ValueError, match="regions"):
        measure_lesion(mask, regions="some")


def test_an_island_inside_a_hole_is_its_own_region():
    mask = _disc((100, 100), (50, 50), 40)
    mask[30:70, 30:70] = False
    mask[45:55, 45:55] = True
    m = measure_lesion(mask)
    assert (m.n_regions, m.other_regions) == (2, 1)
    assert m.area == pytest.approx(np.count_nonzero(mask) - 100)


def test_image_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(20, 30, 3\).*\(20, 20\)"):
        measure_lesion(np.ones((20, 20), dtype=bool), np.zeros((20, 30, 3), dtype=np.uint8))


def test_colour_variegation():
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 4:16] = True
    image = np.full((20, 20, 3), (120, 60, 40), dtype=np.uint8)
    image[~mask] = (255, 0, 255)  # background colour must not count
    assert measure_lesion(mask, image).colour_variegation == pytest.approx(0.0, abs=1e-6)
    # Half black (L* = 0), half white (L* = 100, a* = b* = 0): the std of L* is 50, of a*, b* is 0,
    # so the mean of the three channel stds is 50 / 3.
    image[5:15, 4:10] = 0
    image[5:15, 10:16] = 255
    assert measure_lesion(mask, image).colour_variegation == pytest.approx(50 / 3, abs=0.01)
