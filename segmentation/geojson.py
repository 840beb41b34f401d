"""The lesion boundary as GeoJSON: polygons with interior rings (holes), in pixel coordinates.

One Feature whose geometry is a MultiPolygon: each lesion piece is a polygon whose first ring is its outer
boundary and whose further rings are the holes in it (RFC 7946 ring order: outer counter-clockwise, holes
clockwise, with y pointing up as GIS tools draw it; in image rows, which point down, that looks the other way). The
coordinates are pixel centres, (x, y) = (column, row), of the boundary pixels of the mask (OpenCV's
``findContours`` with ``RETR_CCOMP``: pieces inside holes come back as pieces of their own). ``geojson_to_mask``
rebuilds the mask exactly from it. ``properties`` carries the caller's provenance.
"""

from __future__ import annotations

import cv2
import numpy as np

COORDINATES = "pixel centres, (x, y) = (column, row), origin at the top-left pixel"


def _ring(contour: np.ndarray) -> list[list[int]]:
    points = [[int(x), int(y)] for x, y in contour.reshape(-1, 2)]
    return [*points, points[0]]  # GeoJSON rings are closed


def mask_to_geojson(mask: np.ndarray, properties: dict | None = None) -> dict:
    """A GeoJSON FeatureCollection with one Feature: the mask's boundary as a MultiPolygon with holes."""
    mask = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    polygons: list[list[list[list[int]]]] = []
    if mask.any():
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        links = hierarchy[0]  # [next, previous, first child, parent]
        for index, contour in enumerate(contours):
            if links[index][3] != -1:
                continue  # a hole: added to its outer boundary below
            rings = [_ring(contour)]
            child = links[index][2]
            while child != -1:
                rings.append(_ring(contours[child]))
                child = links[child][0]
            polygons.append(rings)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "MultiPolygon", "coordinates": polygons},
                "properties": {
                    "image_size": [int(mask.shape[1]), int(mask.shape[0])],
                    "coordinates": COORDINATES,
                    **(properties or {}),
                },
            }
        ],
    }


def geojson_to_mask(document: dict, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The bool mask (``shape`` = (height, width), default the document's ``image_size``) that
    ``mask_to_geojson`` described: each polygon filled, its holes cleared, every ring's own pixels lesion."""
    feature = document["features"][0]
    if shape is None:
        width, height = feature["properties"]["image_size"]
        shape = (int(height), int(width))
    mask = np.zeros(shape, dtype=np.uint8)
    polygons = [
        [np.asarray(ring, dtype=np.int32).reshape(-1, 1, 2) for ring in rings]
        for rings in feature["geometry"]["coordinates"]
        if rings
    ]
    # Largest first: a piece lying in another's hole is smaller than it, so it is drawn after that hole is cleared.
    for arrays in sorted(polygons, key=lambda rings: -abs(cv2.contourArea(rings[0]))):
        cv2.fillPoly(mask, arrays[:1], 1)
        if arrays[1:]:
            cv2.fillPoly(mask, arrays[1:], 0)
        cv2.polylines(mask, arrays, isClosed=True, color=1, thickness=1, lineType=cv2.LINE_8)
    return mask.astype(bool)
