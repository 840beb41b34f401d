"""GeoJSON boundaries: polygons with holes, pixel coordinates, provenance, and an exact round trip to the mask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk

from segmentation.geojson import GeoJSONError, geojson_to_mask, mask_to_geojson
from segmentation.imageio import read_mask

FULLRES_MASKS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "isic2017-fullres-samples"


def _real_mask(stem: str) -> np.ndarray:
    path = FULLRES_MASKS / "masks" / f"{stem}_segmentation.png"
    if not path.is_file():
        pytest.skip(f"full-resolution ISIC masks not found at {path.parent}")
    return read_mask(path)


def _with_holes(mask: np.ndarray, seed: int) -> np.ndarray:
    """Holes erased inside the lesion as a clinician's eraser would, an island in one hole, specks of 1-2 pixels."""
    mask = mask.copy()
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(mask)
    centre = int(rows.mean()), int(cols.mean())
    rr, cc = disk(centre, 60, shape=mask.shape)
    mask[rr, cc] = False
    rr, cc = disk(centre, 15, shape=mask.shape)
    mask[rr, cc] = True  # an island inside the hole: its own region
    for i in rng.choice(rows.size, 25, replace=False):
        rr, cc = disk((rows[i], cols[i]), int(rng.integers(1, 12)), shape=mask.shape)
        mask[rr, cc] = False
    r, c = rows[rows.size // 3], cols[rows.size // 3]
    mask[r - 1 : r + 2, c - 1 : c + 2] = True
    mask[r, c] = mask[r + 1, c + 1] = False  # two one-pixel holes touching at a corner
    mask[0, 0] = True  # a one-pixel speck at the image corner
    mask[5, 10:12] = True  # a two-pixel speck
    return mask


@pytest.mark.parametrize("stem", ["ISIC_0012660", "ISIC_0014572"])
def test_round_trip_reproduces_real_masks_with_holes(stem: str) -> None:
    mask = _with_holes(_real_mask(stem), seed=len(stem))
    document = json.loads(json.dumps(mask_to_geojson(mask)))  # through text, as a file would go
    polygons = document["features"][0]["geometry"]["coordinates"]
    assert sum(len(p) - 1 for p in polygons) >= 20, "the holes must be in the GeoJSON as interior rings"
    assert np.array_equal(geojson_to_mask(document), mask)
    assert np.array_equal(geojson_to_mask(document, mask.shape), mask)


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_of_noise_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 50)) < (0.3 + 0.1 * seed)
    assert np.array_equal(geojson_to_mask(mask_to_geojson(mask)), mask)


def test_structure_orientation_and_provenance() -> None:
    mask = np.zeros((60, 80), bool)
    mask[10:50, 10:70] = True
    mask[20:30, 20:30] = False
    document = mask_to_geojson(mask, properties={"model": "m", "model_sha256": "ab" * 32, "threshold": 0.5})
    assert document["type"] == "FeatureCollection"
    (feature,) = document["features"]
    assert feature["geometry"]["type"] == "MultiPolygon"
    props = feature["properties"]
    assert props["model_sha256"] == "ab" * 32 and props["image_size"] == [80, 60] and props["regions"] == 1
    (polygon,) = feature["geometry"]["coordinates"]
    exterior, hole = polygon
    for ring in polygon:
        assert ring[0] == ring[-1] and len(ring) >= 4

    def signed_area(ring: list) -> float:
        x, y = np.asarray(ring, float)[:-1].T
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    assert signed_area(exterior) > 0 > signed_area(hole)  # RFC 7946: exterior counter-clockwise, holes clockwise
    # Halfway between lesion and background pixel centres (corners cut by an eighth of a pixel²): the rectangle of
    # 60 x 40 pixels and the hole of 10 x 10 pixels.
    assert abs(signed_area(exterior)) == pytest.approx(60 * 40 - 4 / 8)
    assert abs(signed_area(hole)) == pytest.approx(10 * 10 - 4 / 8)
    assert len(exterior) == 9 and [9.5, 10] in exterior and [10, 9.5] in exterior  # only the turns are kept


def test_empty_mask_and_bad_documents() -> None:
    empty = mask_to_geojson(np.zeros((5, 7), bool))
    assert empty["features"][0]["geometry"]["coordinates"] == []
    assert not geojson_to_mask(empty).any() and geojson_to_mask(empty).shape == (5, 7)
    for bad in (
        "not json",
        {"type": "Point", "coordinates": [1, 2]},
        [1, 2],
        {"type": "Polygon", "coordinates": [[["a"]]]},
    ):
        with pytest.raises(GeoJSONError):
            geojson_to_mask(bad, (5, 5))
    with pytest.raises(GeoJSONError, match="image_size"):
        geojson_to_mask({"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 0]]]})
    nan = {"type": "Polygon", "coordinates": [[[0, 0], [float("nan"), 0], [2, 2], [0, 0]]]}
    with pytest.raises(GeoJSONError, match="non-finite"):
        geojson_to_mask(nan, (5, 5))
