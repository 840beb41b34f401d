"""Export of one image's lesion result: mask, overlay, boundary (GeoJSON) and measurements (no Qt).

An export is all-or-nothing: everything is computed and written to temp files beside the targets first (a full
disk fails there, with every earlier file untouched); only then are the temp files renamed into place, the earlier
export's files kept aside until all renames succeeded and put back if one fails. So a folder holds either the
whole new export or the whole old one. Earlier exports are never overwritten unless the caller says so; files
LesionLens did not write (the folder's ownership record, ``segmentation.ownership``, proves which it did) are never
overwritten at all; the source image is never written: a clinician's original is evidence, an export is derived
from it.

Provenance (model and its weights file's SHA-256, threshold, edits, calibration and where it came from, which regions
were measured, app version, time, and the SHA-256 of the source file) goes into the boundary GeoJSON's properties and
the measurements CSV, so an exported result can be traced to the exact image and model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from segmentation import __version__, software_versions
from segmentation.boxes import lesion_box
from segmentation.calibration import Calibration, calibration_record
from segmentation.geojson import mask_to_geojson
from segmentation.imageio import (
    OutputWriteError,
    encode_image,
    encode_mask,
    sync_folder,
    write_reason,
    write_temp_file,
)
from segmentation.measurements import REGION_CHOICES, LesionMeasurements, measure_lesion
from segmentation.naming import EXPORT_SUFFIXES, output_name
from segmentation.ownership import ABSENT, OURS, OutputRecord, describe, sha256_of
from segmentation.tables import csv_bytes

__all__ = [
    "EXPORT_KINDS",
    "ExportExistsError",
    "OverlayStyle",
    "export_lesion",
    "export_paths",
    "render_overlay",
]

EXPORT_KINDS: tuple[str, ...] = ("mask", "overlay", "boundary", "measurements")
_OVERLAY_BAND_ROWS = 512


@dataclass(frozen=True)
class OverlayStyle:
    """How the lesion is drawn over the image: ``colour`` is RGB, ``opacity`` (0-1) applies to the fill only."""

    colour: tuple[int, int, int] = (0, 255, 0)
    opacity: float = 0.35
    fill: bool = True
    boundary: bool = True

    def __post_init__(self) -> None:
        # Checked here so a bad style fails where it is made (a settings file, a slider), not at export time.
        if len(self.colour) != 3 or not all(isinstance(c, int | np.integer) and 0 <= c <= 255 for c in self.colour):
            raise ValueError(f"colour must be three integers 0-255 (R, G, B), got {self.colour!r}")
        if not (math.isfinite(self.opacity) and 0.0 <= self.opacity <= 1.0):
            raise ValueError(f"opacity must be within 0..1, got {self.opacity}")


class ExportExistsError(Exception):
    """Files of an earlier export are in the way and ``overwrite`` was not given; ``paths`` lists them."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        super().__init__(self.paths)  # args kept so the error pickles across worker processes

    def __str__(self) -> str:
        names = ", ".join(p.name for p in self.paths)
        return f"{len(self.paths)} file(s) of an earlier export already exist: {names}"


def _check_image_and_mask(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"image must be an RGB uint8 HxWx3 array, got {image.dtype} {image.shape}")
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {image.shape[:2]}")
    return image, mask if mask.dtype == np.bool_ else mask != 0


def render_overlay(image: np.ndarray, mask: np.ndarray, style: OverlayStyle, *, in_place: bool = False) -> np.ndarray:
    """The image with the lesion filled (alpha-blended ``colour`` at ``opacity``) and outlined, as a new array
    (``in_place``: drawn into ``image`` itself, for a caller done with it: no copy of a 120-megapixel photo).

    The outline follows every edge of the mask (holes included), so what is drawn is exactly what the exported
    mask contains; its width is about 1/300 of the shorter image side so it stays visible on large photos.
    """
    checked, mask = _check_image_and_mask(image, mask)
    out = checked if in_place and checked is image and image.flags.writeable else checked.copy()
    if not mask.any():
        return out
    box = lesion_box(mask, 1)
    top, left = box[0].start, box[1].start
    colour = np.asarray(style.colour, dtype=np.float32)
    if style.fill and style.opacity > 0:
        # In bands of rows over the lesion's box: the same arithmetic, with temporary arrays of a band, not of a
        # 120-megapixel lesion.
        for row in range(box[0].start, box[0].stop, _OVERLAY_BAND_ROWS):
            rows = slice(row, min(row + _OVERLAY_BAND_ROWS, box[0].stop))
            region, lesion = out[rows, box[1]], mask[rows, box[1]]
            blended = region[lesion].astype(np.float32) * (1.0 - style.opacity) + colour * style.opacity
            region[lesion] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if style.boundary:
        thickness = max(1, round(min(mask.shape) / 300))
        crop = np.ascontiguousarray(mask[box], dtype=np.uint8)
        contours, _ = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(left, top))
        rgb = tuple(int(c) for c in style.colour)  # the array is RGB, so the colour goes in RGB order
        cv2.drawContours(out, contours, -1, rgb, thickness, lineType=cv2.LINE_8)  # crisp: no blur past the edge
    return out


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    requested = tuple(kinds)
    unknown = [k for k in requested if k not in EXPORT_KINDS]
    if unknown:
        raise ValueError(f"unknown export kind(s) {unknown}; valid: {list(EXPORT_KINDS)}")
    return tuple(k for k in EXPORT_KINDS if k in requested)  # fixed order: mask first, measurements last


def export_paths(image_path: Path, out_dir: Path, kinds: Iterable[str] = EXPORT_KINDS) -> dict[str, Path]:
    """Where each kind is written: ``<stem>_segmentation.png`` (ISIC naming), ``<stem>_overlay.png``,
    ``<stem>_boundary.geojson``, ``<stem>_measurements.csv``, in ``out_dir``."""
    stem = Path(image_path).stem
    return {kind: Path(out_dir) / output_name(stem, EXPORT_SUFFIXES[kind]) for kind in _check_kinds(kinds)}


def _is_same_file(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` name one file: same resolved path, or (hard links, case-folding) same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)  # Path and the like: a readable record beats a failed export


def _measurement_columns(measurements: LesionMeasurements | None, unit: str) -> dict[str, object]:
    """The ``to_dict`` columns; for an empty mask the same column names with empty values."""
    if measurements is not None:
        return dict(measurements.to_dict())
    names = [f.name for f in dataclasses.fields(LesionMeasurements) if f.name != "unit"]
    template = LesionMeasurements(**dict.fromkeys(names, 0), unit=unit)  # only its key names are used
    return dict.fromkeys(template.to_dict(), None)


def _boundary_geojson(name: str, mask: np.ndarray, provenance: dict) -> bytes:
    """The boundary with its holes as GeoJSON (``segmentation.geojson``), the provenance in its properties."""
    document = mask_to_geojson(mask, properties={"image": name, **provenance})
    return (json.dumps(document, indent=1, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


def _measurements_csv(name: str, columns: dict[str, object], provenance: dict) -> bytes:
    row = {"image": name, **columns, **provenance}
    return csv_bytes([row], list(row))  # formula-like cells (a file named "=cmd|...") neutralised


def _swap_in(temps: dict[Path, Path]) -> None:
    """Rename each temp file onto its target; if one rename fails, put every earlier file back as it was."""
    backups: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for target, temp in temps.items():
            if target.exists() or target.is_symlink():
                backup = target.with_name(f".{target.name[:100]}.{uuid.uuid4().hex[:12]}.bak")
                try:
                    os.link(target, backup, follow_symlinks=False)  # the old file stays in place meanwhile
                except (OSError, NotImplementedError):  # no hard links there (FAT, some shares; Windows options)
                    os.replace(target, backup)
                backups[target] = backup
            os.replace(temp, target)
            placed.append(target)
    except OSError as error:
        failed = target
        for target, backup in backups.items():
            with contextlib.suppress(OSError):
                if target in placed or not os.path.lexists(target):
                    os.replace(backup, target)  # the earlier file back in place
                else:
                    backup.unlink()  # a link to the earlier file, which never left
        for target in placed:
            if target not in backups:
                with contextlib.suppress(OSError):
                    target.unlink()
        raise OutputWriteError(failed, write_reason(error)) from error
    for backup in backups.values():
        with contextlib.suppress(OSError):
            backup.unlink()
    sync_folder(next(iter(temps)).parent)


def export_lesion(
    image_path: Path,
    image: np.ndarray,
    mask: np.ndarray,
    out_dir: Path,
    *,
    provenance: dict,
    mm_per_pixel: float | None = None,
    calibration: Calibration | None = None,
    regions: str = "largest",
    kinds: Iterable[str] = EXPORT_KINDS,
    style: OverlayStyle = OverlayStyle(),  # frozen, so one shared default is safe
    overwrite: bool = False,
    app_version: str = "",
) -> dict[str, Path]:
    """Write the chosen ``kinds`` for one image into ``out_dir``; returns kind -> path written.

    ``image`` is the RGB image as shown and ``mask`` its lesion mask (bool HxW); ``image_path`` is the source file,
    only read (for its name and SHA-256). ``provenance`` is the caller's record (model, model_sha256, threshold,
    cleanup, edited...); the calibration (``calibration``, or a bare ``mm_per_pixel``, recorded as typed in) with its
    source, the ``measured_regions`` (``regions`` of ``measure_lesion``: the largest region or all),
    ``app_version`` (default: the package version), ``exported_at`` (UTC), ``source_image`` and ``source_sha256`` are
    added to it. An empty mask still exports (no polygons, empty measurement values).

    Every file written is recorded in the folder's ownership record (``segmentation.ownership``, kinds
    ``export:mask``...) before it is put in place.

    Raises ValueError (bad arguments, a planned output that is the source image itself, or a file in the way that
    LesionLens did not write), ExportExistsError (outputs of an earlier export exist and ``overwrite`` is False;
    nothing is written) and OutputWriteError (a write failed; the folder is as it was before the call).
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    image, mask = _check_image_and_mask(image, mask)
    if regions not in REGION_CHOICES:
        raise ValueError(f"regions must be one of {list(REGION_CHOICES)}, got {regions!r}")
    paths = export_paths(image_path, out_dir, kinds)
    for path in paths.values():
        if _is_same_file(path, image_path):
            raise ValueError(f"refusing to export over the source image {image_path} (planned output {path})")
    record = OutputRecord(out_dir)
    states = {path: record.state(path) for path in paths.values()}
    if foreign := next((path for path, state in states.items() if state not in (ABSENT, OURS)), None):
        raise ValueError(describe(foreign, states[foreign]))
    existing = [path for path, state in states.items() if state == OURS]
    if existing and not overwrite:
        raise ExportExistsError(existing)

    if calibration is None and mm_per_pixel is not None:
        calibration = Calibration(mm_per_pixel, "typed")
    mm_per_pixel = None if calibration is None else calibration.mm_per_pixel
    provenance_record = {
        **provenance,
        **calibration_record(calibration),  # the value the measurements used, whatever the caller's dict said
        "measured_regions": regions,
        "app_version": app_version or __version__,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_image": image_path.name,
        "source_sha256": sha256_of(image_path),
        **{key: value for key, value in software_versions().items() if key != "lesionlens_version"},
    }
    # Everything is computed first, so a bad input or a failing computation leaves no file behind.
    contents: dict[str, bytes] = {}
    if "mask" in paths:
        contents["mask"] = encode_mask(mask)
    if "overlay" in paths:
        contents["overlay"] = encode_image(paths["overlay"], render_overlay(image, mask, style))
    if "boundary" in paths:
        contents["boundary"] = _boundary_geojson(image_path.name, mask, provenance_record)
    if "measurements" in paths:
        measured = measure_lesion(mask, image, mm_per_pixel=mm_per_pixel, regions=regions)
        columns = _measurement_columns(measured, "px" if mm_per_pixel is None else "mm")
        contents["measurements"] = _measurements_csv(image_path.name, columns, provenance_record)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputWriteError(out_dir, e.strerror or str(e)) from e
    temps: dict[Path, Path] = {}
    try:
        for kind, data in contents.items():  # a full disk fails here, before any earlier file is touched
            temps[paths[kind]] = write_temp_file(paths[kind], data)
        for kind, data in contents.items():
            record.claim(paths[kind], data, kind=f"export:{kind}", source=image_path)
        _swap_in(temps)
    finally:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)  # only those not renamed into place are still there
    return {kind: paths[kind] for kind in contents}


def exported_images(folder: str | os.PathLike[str]) -> set[Path]:
    """The source images whose exported mask in ``folder`` is still exactly what LesionLens wrote there."""
    return OutputRecord(folder).sources("export:mask")
