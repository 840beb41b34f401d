"""Shape and colour measurements of a segmented lesion (see docs/MEASUREMENTS.md).

These describe the mask and the image; they are not a diagnosis.

Conventions:

* All lesion pixels are measured as ONE lesion: the bool mask is labelled as the single label 1, so
  several fragments contribute jointly to area, perimeter, diameter, asymmetry and colour.
  ``n_regions`` reports how many 8-connected fragments there are; run
  ``segmentation.postprocess.clean_up`` first to measure only the main lesion.
* The mask is measured as given: holes count (their boundary adds to the perimeter).
* Pixel coordinates are pixel centres; lengths are in pixels, or in mm when ``mm_per_pixel`` is given
  (lengths scale by it, areas by its square, ratios and colour do not change).
* ``image`` is RGB (not OpenCV's BGR) with the mask's height and width.
* A lesion cut by the image frame is measured as far as it is visible.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist
from skimage import color, measure

from segmentation.lesion import lesion_box

__all__ = [
    "DIMENSIONS",
    "MEASUREMENT_FIELDS",
    "LesionMeasurements",
    "measure_lesion",
    "unit_label",
]

#: Dimension kinds used in :data:`MEASUREMENT_FIELDS`: "length" scales with mm_per_pixel, "area" with
#: its square; "ratio" is unitless, "colour" is in CIELAB units, "count" is a number of regions.
DIMENSIONS: tuple[str, ...] = ("length", "area", "ratio", "colour", "count")

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
    ("n_regions", "Regions", "count"),
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


def measure_lesion(
    mask: np.ndarray, image: np.ndarray | None = None, *, mm_per_pixel: float | None = None
) -> LesionMeasurements | None:
    """Measure the lesion in ``mask``; None when the mask is empty.

    ``image`` (RGB, same H x W) is only needed for colour variegation, which is None without it.
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[:2] != mask.shape or image.shape[2] != 3:
            raise ValueError(
                f"image shape {image.shape} does not match mask shape {mask.shape}: "
                "expected an RGB image of shape (H, W, 3)"
            )
    if mm_per_pixel is not None and not (math.isfinite(mm_per_pixel) and mm_per_pixel > 0):
        raise ValueError(f"mm_per_pixel must be a finite number > 0, got {mm_per_pixel}")
    if not mask.any():
        return None

    # Everything below is measured on the lesion's bounding box (one pixel of margin): the same numbers as on the
    # whole image, at a cost that follows the lesion's size, not the photo's.
    box = lesion_box(mask, 1)
    mask, image = mask[box], None if image is None else image[box]
    # One label for all fragments: the lesion is measured as a whole (see module docstring).
    props = measure.regionprops(mask.astype(np.uint8))[0]
    area_px = float(props.area)
    # Crofton perimeter: within ~0.5% of the true length on discs/ellipses, where the default
    # 4-connected boundary-pixel perimeter reads ~5% long.
    perimeter_px = float(props.perimeter_crofton)
    n_regions = cv2.connectedComponents(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8)[0] - 1

    centroid = np.asarray(props.centroid, dtype=np.float64)
    theta = float(props.orientation)  # angle between the row axis and the major axis
    major = np.array([math.cos(theta), math.sin(theta)])  # (row, col) direction
    minor = np.array([-major[1], major[0]])
    pixels = np.nonzero(mask)
    asym_major = _reflection_asymmetry(mask, centroid, major, pixels)
    asym_minor = _reflection_asymmetry(mask, centroid, minor, pixels)

    scale = 1.0 if mm_per_pixel is None else float(mm_per_pixel)
    return LesionMeasurements(
        area=area_px * scale**2,
        perimeter=perimeter_px * scale,
        max_diameter=_max_feret_diameter(props.image) * scale,
        equivalent_diameter=float(props.equivalent_diameter_area) * scale,
        asymmetry=0.5 * (asym_major + asym_minor),
        asymmetry_major=asym_major,
        asymmetry_minor=asym_minor,
        border_irregularity=perimeter_px**2 / (4.0 * math.pi * area_px),
        colour_variegation=None if image is None else _colour_variegation(image, mask),
        unit="px" if mm_per_pixel is None else "mm",
        n_regions=n_regions,
    )


def _max_feret_diameter(region: np.ndarray) -> float:
    """Largest distance between two points of the lesion outline (the 0.5 iso-contour).

    Agrees with regionprops' ``feret_diameter_max`` within about a pixel (that one traces the rasterised
    convex hull, slightly larger), but searches pairs only among the outline's convex-hull vertices:
    regionprops compares all outline points pairwise, which takes seconds and hundreds of MB on a
    full-resolution dermoscopy image.
    """
    padded = np.pad(region, 1)
    points = np.vstack(measure.find_contours(padded.astype(np.uint8), 0.5, fully_connected="high"))
    with contextlib.suppress(QhullError):  # all points collinear: search them all (there are few)
        points = points[ConvexHull(points).vertices]
    return math.sqrt(float(pdist(points, "sqeuclidean").max()))


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
