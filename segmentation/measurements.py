"""Shape and colour measurements of a segmented lesion (see docs/MEASUREMENTS.md).

These describe the mask and the image; they are not a diagnosis.

Conventions:

* The lesion is the mask's largest 8-connected region (``regions="largest"``, the default): a corner speck or a
  fragment left by a low threshold must not change the lesion's diameter. ``regions="all"`` measures every region
  together, for a mask whose pieces the clinician kept on purpose. ``n_regions`` counts all regions, and
  ``other_regions`` those that were not measured.
* The mask is measured as given: holes count (their boundary adds to the perimeter).
* Pixel coordinates are pixel centres; lengths are in pixels, or in mm when ``mm_per_pixel`` is given
  (lengths scale by it, areas by its square, ratios and colour do not change).
* ``image`` is RGB (not OpenCV's BGR) with the mask's height and width.
* A lesion cut by the image frame is measured as far as it is visible.

Speed and memory follow the lesion, not the photo: everything runs on the lesion's bounding box. Area, perimeter
and the diameters are computed at full resolution (area and equivalent diameter are exact counts, the perimeter is
summed in bands of rows, the maximum diameter uses the outline's convex hull); asymmetry and colour variegation, which
are ratios and statistics, run on a reduced copy once the lesion has more than 150 000 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.distance import pdist
from skimage import color

from segmentation.boxes import lesion_box

__all__ = [
    "DIMENSIONS",
    "MEASUREMENT_FIELDS",
    "REGION_CHOICES",
    "LesionMeasurements",
    "lesion_regions",
    "measure_lesion",
    "unit_label",
]

#: Dimension kinds used in :data:`MEASUREMENT_FIELDS`: "length" scales with mm_per_pixel, "area" with
#: its square; "ratio" is unitless, "colour" is in CIELAB units, "count" is a number of regions.
DIMENSIONS: tuple[str, ...] = ("length", "area", "ratio", "colour", "count")

#: What :func:`measure_lesion` measures: the largest region (the lesion) or all regions together.
REGION_CHOICES: tuple[str, ...] = ("largest", "all")

#: Asymmetry and colour run on a copy reduced by a whole factor so that at most this many lesion pixels remain:
#: the lesion is then still some 400 pixels across, where rasterisation changes asymmetry by less than 0.01.
REDUCED_PIXELS = 150_000
#: Rows per band of the perimeter count (bounds the temporary arrays on a 120-megapixel lesion).
_BAND_ROWS = 1024

#: (attribute, human label, dimension) for each measurement, in display order (for GUI panels/CSV).
MEASUREMENT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("area", "Area", "area"),
    ("perimeter", "Perimeter", "length"),
    ("max_diameter", "Maximum diameter (Feret)", "length"),
    ("equivalent_diameter", "Equivalent circle diameter", "length"),
    ("asymmetry", "Asymmetry (mean of both axes)", "ratio"),
    ("asymmetry_major", "Asymmetry about major axis", "ratio"),
    ("asymmetry_minor", "Asymmetry about minor axis", "ratio"),
    ("border_irregularity", "Border irregularity (compactness)", "ratio"),
    ("colour_variegation", "Colour variegation (CIELAB SD)", "colour"),
    ("n_regions", "Regions in the mask", "count"),
    ("other_regions", "Other regions (not measured)", "count"),
)


def unit_label(dimension: str, unit: str) -> str:
    """Display unit of a field: e.g. ("area", "mm") -> "mm²"; "" for unitless fields."""
    if dimension == "length":
        return unit
    if dimension == "area":
        return f"{unit}²"
    if dimension == "colour":
        return "CIELAB"
    if dimension in ("ratio", "count"):
        return ""
    raise ValueError(f"unknown dimension {dimension!r}; valid: {list(DIMENSIONS)}")


@dataclass(frozen=True)
class LesionMeasurements:
    """Measurements of one lesion; lengths in ``unit`` ("px" or "mm"), area in ``unit``²."""

    area: float
    perimeter: float
    max_diameter: float
    equivalent_diameter: float
    asymmetry: float
    asymmetry_major: float
    asymmetry_minor: float
    border_irregularity: float
    colour_variegation: float | None
    unit: str
    n_regions: int
    other_regions: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        """Flat dict whose keys carry the unit (``area_mm2``, ``perimeter_px``...), e.g. for CSV."""
        out: dict[str, float | int | None] = {}
        for attribute, _label, dimension in MEASUREMENT_FIELDS:
            if dimension == "length":
                key = f"{attribute}_{self.unit}"
            elif dimension == "area":
                key = f"{attribute}_{self.unit}2"
            else:
                key = attribute
            out[key] = getattr(self, attribute)
        return out


def _check(mask: np.ndarray, image: np.ndarray | None, mm_per_pixel: float | None, regions: str) -> None:
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if image is not None and (image.ndim != 3 or image.shape[:2] != mask.shape or image.shape[2] != 3):
        raise ValueError(
            f"image shape {image.shape} does not match mask shape {mask.shape}: "
            "expected an RGB image of shape (H, W, 3)"
        )
    if mm_per_pixel is not None and not (math.isfinite(mm_per_pixel) and mm_per_pixel > 0):
        raise ValueError(f"mm_per_pixel must be a finite number > 0, got {mm_per_pixel}")
    if regions not in REGION_CHOICES:
        raise ValueError(f"regions must be one of {list(REGION_CHOICES)}, got {regions!r}")


def lesion_regions(mask: np.ndarray, regions: str = "largest") -> tuple[np.ndarray, tuple[slice, slice], int] | None:
    """The measured lesion as a uint8 0/1 crop with a one-pixel margin, where that crop sits in ``mask``, and the
    number of 8-connected regions in the mask; None for an empty mask.

    ``regions="largest"`` keeps the largest region (ties: the first in raster order), ``"all"`` every region.
    """
    if not mask.any():
        return None
    box = lesion_box(mask, 1)
    crop = np.ascontiguousarray(mask[box], dtype=np.uint8)
    # Outer boundaries (also of islands inside holes) count the 8-connected regions: cheaper than labelling.
    _, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    n_regions = int(np.count_nonzero(hierarchy[0, :, 3] < 0))
    if regions == "all" or n_regions == 1:
        return crop, box, n_regions
    try:  # 16-bit labels halve the memory on a huge lesion; a mask of noise has too many regions for them
        _, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8, ltype=cv2.CV_32S)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    top, left = max(0, y - 1), max(0, x - 1)
    bottom, right = min(crop.shape[0], y + h + 1), min(crop.shape[1], x + w + 1)
    lesion = (labels[top:bottom, left:right] == largest).view(np.uint8)
    inner = (
        slice(box[0].start + top, box[0].start + bottom),
        slice(box[1].start + left, box[1].start + right),
    )
    return lesion, inner, n_regions


def measure_lesion(
    mask: np.ndarray,
    image: np.ndarray | None = None,
    *,
    mm_per_pixel: float | None = None,
    regions: str = "largest",
) -> LesionMeasurements | None:
    """Measure the lesion in ``mask``; None when the mask is empty.

    ``image`` (RGB, same H x W) is only needed for colour variegation, which is None without it. ``regions``:
    ``"largest"`` (default) measures the largest region, ``"all"`` all regions together.
    """
    mask = np.asarray(mask)
    image = None if image is None else np.asarray(image)
    _check(mask, image, mm_per_pixel, regions)
    found = lesion_regions(mask, regions)
    if found is None:
        return None
    lesion, box, n_regions = found
    measured_regions = n_regions if regions == "all" else 1

    area_px = float(cv2.countNonZero(lesion))
    perimeter_px = _crofton_perimeter(lesion)
    factor = reduction_factor(area_px)
    reduced = _reduce(lesion, factor)
    asym_major, asym_minor = _asymmetry(reduced)
    colour = None
    if image is not None:
        colour = _colour_variegation(image[box][::factor, ::factor], lesion[::factor, ::factor].view(bool))

    scale = 1.0 if mm_per_pixel is None else float(mm_per_pixel)
    return LesionMeasurements(
        area=area_px * scale**2,
        perimeter=perimeter_px * scale,
        max_diameter=_max_feret_diameter(lesion) * scale,
        equivalent_diameter=2.0 * math.sqrt(area_px / math.pi) * scale,
        asymmetry=0.5 * (asym_major + asym_minor),
        asymmetry_major=asym_major,
        asymmetry_minor=asym_minor,
        border_irregularity=perimeter_px**2 / (4.0 * math.pi * area_px),
        colour_variegation=colour,
        unit="px" if mm_per_pixel is None else "mm",
        n_regions=n_regions,
        other_regions=n_regions - measured_regions,
    )


def reduction_factor(area_px: float, target: int | None = None) -> int:
    """The whole factor by which asymmetry and colour are computed on a reduced copy (1: full resolution), so that
    at most ``target`` (default :data:`REDUCED_PIXELS`) lesion pixels remain."""
    return max(1, math.ceil(math.sqrt(area_px / (REDUCED_PIXELS if target is None else target))))


def _reduce(lesion: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the 0/1 crop by ``factor`` (padding it to whole blocks) and keep blocks at least half lesion."""
    if factor == 1:
        return lesion.view(bool)
    height, width = lesion.shape
    padded = cv2.copyMakeBorder(lesion, 0, -height % factor, 0, -width % factor, cv2.BORDER_CONSTANT, value=0)
    small = cv2.resize(
        padded * np.uint8(255), (padded.shape[1] // factor, padded.shape[0] // factor), interpolation=cv2.INTER_AREA
    )
    return small >= 128


# Crofton weights of the 16 configurations of a 2x2 window (4 directions), as in skimage.measure.perimeter_crofton.
_CROFTON_WEIGHTS = np.array(
    [
        0,
        np.pi / 4 * (1 + 1 / np.sqrt(2)),
        np.pi / (4 * np.sqrt(2)),
        np.pi / (2 * np.sqrt(2)),
        0,
        np.pi / 4 * (1 + 1 / np.sqrt(2)),
        0,
        np.pi / (4 * np.sqrt(2)),
        np.pi / 4,
        np.pi / 2,
        np.pi / (4 * np.sqrt(2)),
        np.pi / (4 * np.sqrt(2)),
        np.pi / 4,
        np.pi / 2,
        0,
        0,
    ]
)


def _crofton_perimeter(lesion: np.ndarray) -> float:
    """Crofton perimeter (4 directions), the same number as ``skimage.measure.perimeter_crofton``.

    Each 2x2 window of the zero-padded mask gets a code (its pixel at (r, c) counts 1, (r-1, c) 2, (r, c-1) 4 and
    (r-1, c-1) 8); the perimeter is the weighted histogram of the codes. Counted in bands of rows so a huge lesion
    needs no full-size temporary arrays.
    """
    padded = cv2.copyMakeBorder(lesion, 2, 1, 2, 1, cv2.BORDER_CONSTANT, value=0)
    histogram = np.zeros(16, np.int64)
    for top in range(1, padded.shape[0], _BAND_ROWS):
        band = padded[top - 1 : top + _BAND_ROWS]
        here, above = band[1:], band[:-1]
        codes = here[:, 1:] + 2 * above[:, 1:] + 4 * here[:, :-1] + 8 * above[:, :-1]
        histogram += cv2.calcHist([codes], [0], None, [16], [0, 16]).ravel().astype(np.int64)
    return float(_CROFTON_WEIGHTS @ histogram)


def _max_feret_diameter(lesion: np.ndarray) -> float:
    """Largest distance between two points of the lesion outline, the outline running halfway between lesion and
    background pixel centres (so a lesion one pixel wide is one pixel across).

    Only the convex hull of the outer pixel centres matters; each hull pixel contributes its four edge midpoints.
    """
    contours, _ = cv2.findContours(lesion, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    centres = np.vstack([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    hull = cv2.convexHull(centres.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    offsets = np.array([[0.5, 0.0], [-0.5, 0.0], [0.0, 0.5], [0.0, -0.5]])
    points = (hull[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    points = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(points) < 2:
        return 1.0
    return math.sqrt(float(pdist(points, "sqeuclidean").max()))


def _asymmetry(lesion: np.ndarray) -> tuple[float, float]:
    """Reflection asymmetry about the major and the minor principal axis through the centroid."""
    moments = cv2.moments(lesion.view(np.uint8), binaryImage=True)
    centroid = np.array([moments["m01"], moments["m10"]]) / moments["m00"]  # (row, col)
    # skimage's orientation (angle between the row axis and the major axis) from the central moments.
    mu_rr, mu_cc, mu_rc = moments["mu02"], moments["mu20"], moments["mu11"]
    if mu_cc - mu_rr == 0:
        theta = math.pi / 4 if mu_rc > 0 else -math.pi / 4
    else:
        theta = 0.5 * math.atan2(2 * mu_rc, mu_rr - mu_cc)
    major = np.array([math.cos(theta), math.sin(theta)])  # (row, col) direction
    minor = np.array([-major[1], major[0]])
    pixels = np.nonzero(lesion)
    return (
        _reflection_asymmetry(lesion, centroid, major, pixels),
        _reflection_asymmetry(lesion, centroid, minor, pixels),
    )


def _reflection_asymmetry(
    mask: np.ndarray,
    centroid: np.ndarray,
    direction: np.ndarray,
    pixels: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Non-overlapping area of the lesion and its mirror image about the axis line, over lesion area.

    A reflection keeps area, so XOR(M, mirror(M)) = 2 (|M| - |M ∩ mirror(M)|), and the overlap is the
    number of lesion pixels whose mirror point (rounded to the nearest pixel centre) is a lesion pixel.
    Counting over lesion pixels only keeps time and memory proportional to the lesion, not the image.
    """
    rows, cols = np.nonzero(mask) if pixels is None else pixels
    pr = rows - centroid[0]
    pc = cols - centroid[1]
    along = pr * direction[0] + pc * direction[1]
    mirror_r = np.rint(centroid[0] + 2.0 * along * direction[0] - pr).astype(np.intp)
    mirror_c = np.rint(centroid[1] + 2.0 * along * direction[1] - pc).astype(np.intp)
    inside = (mirror_r >= 0) & (mirror_r < mask.shape[0]) & (mirror_c >= 0) & (mirror_c < mask.shape[1])
    overlap = np.count_nonzero(mask[mirror_r[inside], mirror_c[inside]])
    return float(2.0 * (rows.size - overlap) / rows.size)


def _colour_variegation(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean over L*, a*, b* of the standard deviation (ddof=0) of the lesion pixels' CIELAB values.

    CIELAB, because equal distances there are roughly equally visible colour differences, unlike RGB.
    The conversion runs once per distinct colour (a lesion of millions of pixels has some tens of thousands) and the
    statistics are weighted by each colour's pixel count: the same numbers, several times faster on a photo.
    """
    pixels = image[mask]
    if pixels.dtype != np.uint8:
        lab = color.rgb2lab(pixels.reshape(-1, 1, 3)).reshape(-1, 3)
        return float(np.mean(np.std(lab, axis=0)))
    packed = (pixels[:, 0].astype(np.int32) << 16) | (pixels[:, 1].astype(np.int32) << 8) | pixels[:, 2]
    colours, counts = np.unique(packed, return_counts=True)
    rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.uint8)
    lab = color.rgb2lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3)
    weights = counts / counts.sum()
    mean = weights @ lab
    variance = weights @ (lab - mean) ** 2
    return float(np.mean(np.sqrt(variance)))
