"""Property-based fuzzing (hypothesis) of the image loader and the mask <-> polygon conversions.

Any failure other than the documented, typed error is a bug: ImageReadError for read_image, ValueError for a
non-finite polygon vertex. Bounded in count (FUZZ_EXAMPLES per test, 120 by default) and derandomised, so a run is
a few seconds and the same on every machine; set LESIONLENS_FUZZ_EXAMPLES=5000 to search longer locally.
read_image's own seeded byte-mutation loop for JPEG and PNG is in tests/test_imageio.py.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy import ndimage

from segmentation.imageio import ImageReadError, read_image
from segmentation.polygon import mask_to_polygons, polygons_to_mask

FUZZ_EXAMPLES = int(os.environ.get("LESIONLENS_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _valid(fmt: str) -> bytes:
    rgb = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **({"compression": "tiff_deflate"} if fmt == "TIFF" else {}))
    return buffer.getvalue()


VALID = {fmt: _valid(fmt) for fmt in ("JPEG", "PNG", "TIFF", "BMP")}


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    """A valid file of ``fmt`` with bytes overwritten (often in the header), cut short, inserted or deleted."""
    data = bytearray(VALID[fmt])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "header", "truncate", "insert", "delete"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if kind == "overwrite":
            data[position] = draw(st.integers(0, 255))
        elif kind == "header":  # sizes, offsets, chunk lengths and tags live in the first bytes
            data[min(position, 63)] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[position : position + draw(st.integers(1, 16))]
    return bytes(data)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("fmt", list(VALID))
def test_read_image_raises_only_image_read_error(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"fuzzed.{fmt.lower()}"

    @FUZZ
    @given(data=mutated(fmt))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                image = read_image(path, max_megapixels=0.05)  # a mutated header cannot cost much
            except ImageReadError as error:
                assert error.path == path and str(error).startswith(f"{path}: ")
                return
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0
        assert image.flags.c_contiguous

    check()


# ------------------------------------------------------------------------------------------------ polygons
def _documented_round_trip(mask: np.ndarray) -> np.ndarray:
    """What segmentation/polygon.py promises back at tolerance 0: components of one or two pixels dropped (they
    have no polygon), holes filled (only outer boundaries are kept), everything else exactly."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    kept = np.isin(labels, [label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] >= 3])
    return ndimage.binary_fill_holes(kept)


MASKS = st.tuples(st.integers(1, 20), st.integers(1, 20)).flatmap(lambda shape: arrays(np.bool_, shape))


@FUZZ
@given(mask=MASKS)
@example(mask=np.zeros((5, 7), bool))
@example(mask=np.ones((5, 7), bool))
@example(mask=np.ones((1, 9), bool))
@example(mask=np.ones((9, 1), bool))
@example(mask=np.ones((1, 1), bool))
def test_mask_polygon_round_trip(mask: np.ndarray) -> None:
    polygons = mask_to_polygons(mask, tolerance_px=0)
    height, width = mask.shape
    for polygon in polygons:
        assert polygon.dtype == np.float64 and polygon.ndim == 2 and polygon.shape[1] == 2 and len(polygon) >= 3
        assert (polygon >= 0).all() and (polygon[:, 0] <= width - 1).all() and (polygon[:, 1] <= height - 1).all()
    np.testing.assert_array_equal(polygons_to_mask(polygons, mask.shape), _documented_round_trip(mask))


@FUZZ
@given(mask=MASKS, tolerance=st.floats(0, 5), min_area=st.floats(0, 10))
def test_simplified_polygons_never_raise_and_stay_in_the_image(mask: np.ndarray, tolerance: float, min_area: float):
    height, width = mask.shape
    for polygon in mask_to_polygons(mask, tolerance_px=tolerance, min_area_px=min_area):
        assert len(polygon) >= 3 and np.isfinite(polygon).all()
        assert (polygon >= 0).all() and (polygon[:, 0] <= width - 1).all() and (polygon[:, 1] <= height - 1).all()
    assert polygons_to_mask([], mask.shape).shape == mask.shape


COORDINATES = st.one_of(
    st.floats(-40, 40),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN, +-inf, +-1e308 and everything between
    st.sampled_from([0.0, -0.0, 1e6, -1e6, 2.0**31, -(2.0**31), 1e300, 5e-324]),
)
POLYGONS = st.lists(
    st.lists(st.tuples(COORDINATES, COORDINATES), max_size=8).map(lambda pts: np.array(pts, float).reshape(-1, 2)),
    max_size=3,
)


@FUZZ
@given(polygons=POLYGONS, shape=st.tuples(st.integers(0, 24), st.integers(0, 24)))
def test_polygons_to_mask_never_crashes(polygons: list[np.ndarray], shape: tuple[int, int]) -> None:
    try:
        mask = polygons_to_mask(polygons, shape)
    except ValueError as error:  # the documented refusal of a NaN or infinite vertex (only that)
        assert "non-finite" in str(error)
        assert any(len(p) >= 3 and not np.isfinite(p).all() for p in polygons)
        return
    assert mask.dtype == np.bool_ and mask.shape == shape
