"""The lesion boundary as GeoJSON (RFC 7946): polygons with their holes, in pixel coordinates, with provenance.

``mask_to_geojson(mask, properties=...)`` gives a FeatureCollection holding one Feature whose geometry is a
MultiPolygon: one polygon per 8-connected region of the mask (largest first), each an exterior ring followed by one
ring per hole. ``geojson_to_mask(document)`` fills it back, and the round trip reproduces the mask exactly.

Coordinates: ``(x, y)`` is the *centre* of the pixel in column ``x``, row ``y`` (``mask[y, x]``), as in
``segmentation.polygon``; y grows downwards, so these are image coordinates, not geographic ones (no CRS). The rings
run halfway between lesion and background pixel centres (the 0.5 iso-line of the mask, lesion 8-connected and
background 4-connected), so their vertices are whole or half pixels and no pixel centre ever lies on a ring: a pixel
is lesion exactly when its centre is inside an exterior ring and not inside one of that polygon's holes. Rings are
closed (the first position is repeated at the end) and oriented as RFC 7946 asks, exterior rings counter-clockwise and
holes clockwise in the (x, y) plane (with y pointing down they look the other way round on screen). Vertices are kept
only where the outline turns, so nothing is lost.

The Feature's ``properties`` hold the caller's provenance (model, threshold, clean-up, edits, calibration, source
file...) plus ``image_size`` ``[width, height]``, ``coordinate_convention`` and ``regions``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

import cv2
import numpy as np
from skimage import measure

from segmentation.boxes import lesion_box

__all__ = ["COORDINATE_CONVENTION", "GeoJSONError", "geojson_to_mask", "mask_to_geojson", "mask_to_rings"]

COORDINATE_CONVENTION = "(x, y) = pixel centre, column x and row y of the image, y down"
# cv2.fillPoly's fixed-point precision for fractional vertices (1/256 px), as in segmentation.polygon.
_SHIFT = 8
_COORD_LIMIT = 1_000_000.0


class GeoJSONError(ValueError):
    """A GeoJSON document that does not describe a lesion boundary (bad structure, numbers or size)."""


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return mask


def _closed(points: np.ndarray, *, counter_clockwise: bool) -> list[list[int | float]]:
    """A closed ring with the wanted orientation (by its signed area in the x/y plane)."""
    x, y = points[:, 0], points[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if (signed < 0) if counter_clockwise else (signed > 0):
        points = points[::-1]
    ring = [[_number(a), _number(b)] for a, b in points.tolist()]
    return [*ring, ring[0]]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _turns_only(ring: np.ndarray) -> np.ndarray:
    """Drop the vertices where the outline goes straight on (lossless: every step is a multiple of half a pixel)."""
    steps = np.diff(np.vstack([ring[-1:], ring]), axis=0)
    following = np.roll(steps, -1, axis=0)
    straight = np.isclose(steps[:, 0] * following[:, 1] - steps[:, 1] * following[:, 0], 0) & (
        (steps * following).sum(axis=1) > 0
    )
    return ring[~straight]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def mask_to_rings(mask: np.ndarray) -> list[list[np.ndarray]]:
    """Per 8-connected region (largest first, ties in raster order): ``[exterior, *holes]`` as open (N, 2) float
    arrays of (x, y) on the 0.5 iso-line between lesion and background pixel centres (see the module doc)."""
    mask = _check_mask(mask)
    if not mask.any():
        return []
    box = lesion_box(mask, 1)
    top, left = box[0].start, box[1].start
    crop = np.ascontiguousarray(mask[box], dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8, ltype=cv2.CV_32S)
    order = sorted(range(1, n), key=lambda label: (-int(stats[label, cv2.CC_STAT_AREA]), label))
    found: list[list[np.ndarray]] = []
    for label in order:
        x, y, w, h = (int(v) for v in stats[label, :4])
        # The region alone (other regions, even islands in its holes, left out), padded so every outline closes.
        region = np.pad(labels[y : y + h, x : x + w] == label, 1).view(np.uint8)
        contours = measure.find_contours(region, 0.5, fully_connected="high")
        offset = np.array([left + x - 1, top + y - 1], np.float64)
        rings = [_turns_only(c[:-1, ::-1] + offset) for c in contours]  # (row, col) -> (x, y); drop the repeat
        rings.sort(key=lambda ring: -abs(_signed_area(ring)))  # the exterior encloses all the holes
        found.append(rings)
    return found


def mask_to_geojson(mask: np.ndarray, *, properties: Mapping[str, object] | None = None) -> dict:
    """A FeatureCollection with one Feature: the mask's boundary as a MultiPolygon with holes (see module doc)."""
    mask = _check_mask(mask)
    polygons = [
        [_closed(rings[0], counter_clockwise=True), *(_closed(h, counter_clockwise=False) for h in rings[1:])]
        for rings in mask_to_rings(mask)
    ]
    feature_properties = {
        **dict(properties or {}),
        "image_size": [int(mask.shape[1]), int(mask.shape[0])],
        "coordinate_convention": COORDINATE_CONVENTION,
        "regions": len(polygons),
    }
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "MultiPolygon", "coordinates": polygons},
                "properties": feature_properties,
            }
        ],
    }


# ----------------------------------------------------------------------------------------------------- reading
def _geometries(document: object) -> Iterable[tuple[dict, dict]]:
    """(geometry, properties) of every Feature (or of a bare geometry) in ``document``."""
    if not isinstance(document, Mapping):
        raise GeoJSONError(f"expected a GeoJSON object, got {type(document).__name__}")
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("FeatureCollection without a 'features' list")
        for feature in features:
            yield from _geometries(feature)
    elif kind == "Feature":
        geometry, properties = document.get("geometry"), document.get("properties") or {}
        if geometry is not None:
            yield geometry, properties if isinstance(properties, Mapping) else {}
    elif kind in ("Polygon", "MultiPolygon"):
        yield dict(document), {}
    else:
        raise GeoJSONError(f"unsupported GeoJSON type {kind!r}: expected Polygon or MultiPolygon features")


def _polygons(geometry: Mapping) -> list[list]:
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeoJSONError(f"unsupported geometry {kind!r}: a lesion boundary is a Polygon or MultiPolygon")
    if not isinstance(coordinates, list):
        raise GeoJSONError(f"{kind} without a coordinates list")
    return [coordinates] if kind == "Polygon" else coordinates


def _fill_polygon(out: np.ndarray, rings: list[np.ndarray]) -> None:
    """Set the pixels of ``out`` whose centre is inside the exterior ring and outside the holes.

    Drawn on a grid of half pixels, over the exterior's bounding box: there, pixel centres are the even points and a
    LesionLens ring (on whole and half pixels) never touches one, so the rasteriser's rounding at the edges cannot
    change the answer for any centre. A hole cuts its own polygon only; polygons union.
    """
    height, width = out.shape
    bx, by, w, h = cv2.boundingRect(rings[0] >> (_SHIFT - 1))
    x0, y0 = max(0, bx // 2 - 1), max(0, by // 2 - 1)
    x1, y1 = min(width, (bx + w) // 2 + 2), min(height, (by + h) // 2 + 2)
    if x1 <= x0 or y1 <= y0:
        return  # wholly outside the image
    patch = np.zeros((2 * (y1 - y0), 2 * (x1 - x0)), np.uint8)
    shift = np.array([2 * x0, 2 * y0], np.int32) << _SHIFT
    cv2.fillPoly(patch, [(rings[0] << 1) - shift], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    for hole in rings[1:]:
        cv2.fillPoly(patch, [(hole << 1) - shift], 0, lineType=cv2.LINE_8, shift=_SHIFT)
    out[y0:y1, x0:x1] |= patch[::2, ::2].view(bool)


def _ring(ring: object) -> np.ndarray:
    try:
        points = np.asarray(ring, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise GeoJSONError(f"a ring is not a list of [x, y] positions ({error})") from error
    if points.ndim != 2 or points.shape[1] < 2 or len(points) == 0:
        raise GeoJSONError(f"a ring must be a list of [x, y] positions, got shape {points.shape}")
    points = points[:, :2]
    if not np.all(np.isfinite(points)):
        raise GeoJSONError("a ring has a non-finite coordinate")
    fixed = np.round(np.clip(points, -_COORD_LIMIT, _COORD_LIMIT) * (1 << _SHIFT)).astype(np.int32)
    return fixed.reshape(-1, 1, 2)


def _image_size(properties: Mapping) -> tuple[int, int] | None:
    size = properties.get("image_size")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[1]), int(size[0])
    return None


def geojson_to_mask(document: Mapping | str | bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Fill a lesion boundary GeoJSON (as written by :func:`mask_to_geojson`, or any Polygon/MultiPolygon in the
    same pixel coordinates) into a bool mask of ``shape`` (H, W); without ``shape``, the ``image_size`` property
    decides. Holes are cut from their own polygon only, so an island inside another region's hole stays lesion."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as error:
            raise GeoJSONError(f"not JSON ({error})") from error
    items = list(_geometries(document))
    if shape is None:
        sizes = {s for _, p in items if (s := _image_size(p)) is not None}
        if len(sizes) != 1:
            raise GeoJSONError("no image_size property to size the mask from: pass shape=(height, width)")
        shape = sizes.pop()
    height, width = (int(s) for s in shape)
    if height <= 0 or width <= 0 or not math.isfinite(height * width):
        raise GeoJSONError(f"mask shape must be positive, got {shape}")
    out = np.zeros((height, width), bool)
    for geometry, _ in items:
        for polygon in _polygons(geometry):
            if not isinstance(polygon, list) or not polygon:
                raise GeoJSONError("a polygon must be a non-empty list of rings")
            _fill_polygon(out, [_ring(r) for r in polygon])
    return out.view(bool)
