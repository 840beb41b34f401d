"""Export of one image's result: files, contents, provenance, and the rules that protect earlier work and the source."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segmentation.export as export_module
from segmentation.calibration import Calibration
from segmentation.export import (
    EXPORT_KINDS,
    ExportExistsError,
    OverlayStyle,
    export_lesion,
    export_paths,
    render_overlay,
)
from segmentation.geojson import geojson_to_mask
from segmentation.imageio import OutputWriteError, read_image, read_mask
from segmentation.ownership import RECORD_NAME

PROVENANCE = {
    "model": "test-model",
    "model_sha256": "ab" * 32,
    "threshold": 0.5,
    "cleanup": "fill_holes",
    "edited": True,
    "mm_per_pixel": None,
}
H, W = 90, 120


def disc(shape: tuple[int, int] = (H, W), centre: tuple[float, float] = (44.0, 58.0), radius: float = 30.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.fixture
def source(tmp_path: Path, rgb_image: Callable[..., np.ndarray]) -> tuple[Path, np.ndarray]:
    """A JPEG carrying EXIF with a GPS position (what a camera writes), and the image as the app reads it."""
    path = tmp_path / "images" / "ISIC_0000001.jpg"
    path.parent.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "DermaCam"  # Make
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    Image.fromarray(rgb_image(H, W, seed=3)).save(path, quality=95, exif=exif)
    return path, read_image(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(folder: Path) -> set[str]:
    """The files in ``folder`` other than its ownership record (which says what LesionLens wrote there)."""
    return {p.name for p in folder.iterdir()} - {RECORD_NAME}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder``, hidden ones (temp files) included."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_writes_all_four_files_with_correct_content(tmp_path: Path, source) -> None:
    path, image = source
    mask = disc()
    out = tmp_path / "out"
    before = sha(path)

    written = export_lesion(path, image, mask, out, provenance=PROVENANCE, app_version="9.9.9")

    assert written == export_paths(path, out)
    assert names(out) == {
        "ISIC_0000001_segmentation.png",
        "ISIC_0000001_overlay.png",
        "ISIC_0000001_boundary.geojson",
        "ISIC_0000001_measurements.csv",
    }
    # Mask: 8-bit single channel 0/255 at the image's size, reads back equal.
    with Image.open(written["mask"]) as im:
        assert (im.mode, im.size) == ("L", (W, H))
        assert set(np.unique(np.array(im))) == {0, 255}
    np.testing.assert_array_equal(read_mask(written["mask"]), mask)
    # Overlay: the rendered overlay, losslessly.
    np.testing.assert_array_equal(read_image(written["overlay"]), render_overlay(image, mask, OverlayStyle()))
    # Boundary: GeoJSON whose polygons fill back to exactly the mask.
    doc = json.loads(written["boundary"].read_text(encoding="utf-8"))
    prov = doc["features"][0]["properties"]
    assert prov["image"] == "ISIC_0000001.jpg"
    assert prov["image_size"] == [W, H]
    assert len(doc["features"][0]["geometry"]["coordinates"]) == 1
    np.testing.assert_array_equal(geojson_to_mask(doc), mask)
    # Provenance: the caller's record plus what the export adds.
    assert {k: prov[k] for k in PROVENANCE} == PROVENANCE
    assert prov["app_version"] == "9.9.9"
    assert prov["source_image"] == "ISIC_0000001.jpg"
    assert prov["source_sha256"] == before
    exported_at = datetime.fromisoformat(prov["exported_at"])
    assert exported_at.utcoffset() == timedelta(0)
    # Measurements: one row; area in px² is the mask's pixel count; provenance columns last.
    rows = read_csv(written["measurements"])
    assert len(rows) == 1
    row = rows[0]
    assert row["image"] == "ISIC_0000001.jpg"
    assert float(row["area_px2"]) == mask.sum()
    assert int(row["n_regions"]) == 1
    assert row["source_sha256"] == before and row["model"] == "test-model" and row["edited"] == "True"
    assert row["mm_per_pixel"] == "" and row["calibration_source"] == "none" and row["measured_regions"] == "largest"
    columns = list(row)
    assert columns[0] == "image" and columns[-6:] == [
        "app_version",
        "exported_at",
        "source_image",
        "source_sha256",
        "pytorch_version",
        "onnxruntime_version",
    ]
    assert row["pytorch_version"] == prov["pytorch_version"] == version("torch")  # what a result depends on
    # The source is only read.
    assert sha(path) == before


def test_calibrated_export_reports_mm(tmp_path: Path, source) -> None:
    path, image = source
    mask = disc()
    written = export_lesion(path, image, mask, tmp_path, provenance=PROVENANCE, mm_per_pixel=0.05)
    row = read_csv(written["measurements"])[0]
    assert "area_px2" not in row
    assert float(row["area_mm2"]) == pytest.approx(mask.sum() * 0.05**2)
    assert float(row["mm_per_pixel"]) == 0.05
    assert row["calibration_source"] == "typed"
    properties = json.loads(written["boundary"].read_text())["features"][0]["properties"]
    assert properties["mm_per_pixel"] == 0.05 and properties["calibration_source"] == "typed"


def test_export_records_where_the_calibration_came_from(tmp_path: Path, source) -> None:
    path, image = source
    calibration = Calibration(0.0534, "profile", "Dermlite DL4")
    written = export_lesion(path, image, disc(), tmp_path, provenance=PROVENANCE, calibration=calibration)
    row = read_csv(written["measurements"])[0]
    assert float(row["mm_per_pixel"]) == 0.0534 and float(row["area_mm2"]) == pytest.approx(disc().sum() * 0.0534**2)
    assert (row["calibration_source"], row["calibration_profile"]) == ("profile", "Dermlite DL4")
    properties = json.loads(written["boundary"].read_text())["features"][0]["properties"]
    assert (properties["calibration_source"], properties["calibration_profile"]) == ("profile", "Dermlite DL4")


def test_exported_boundary_keeps_the_holes(tmp_path: Path, source) -> None:
    """The old JSON had outer polygons only: filling them differed from the mask by exactly the hole."""
    path, image = source
    mask = disc()
    rows, cols = np.nonzero(mask)
    centre = int(rows.mean()), int(cols.mean())
    mask[centre[0] - 4 : centre[0] + 4, centre[1] - 3 : centre[1] + 5] = False
    written = export_lesion(path, image, mask, tmp_path, provenance=PROVENANCE, kinds=("boundary",))
    document = json.loads(written["boundary"].read_text())
    (polygon,) = document["features"][0]["geometry"]["coordinates"]
    assert len(polygon) == 2  # exterior and one interior ring
    np.testing.assert_array_equal(geojson_to_mask(document), mask)


def test_no_metadata_is_carried_into_the_outputs(tmp_path: Path, source) -> None:
    path, image = source
    with Image.open(path) as original:
        assert original.getexif()  # the source really has EXIF (with GPS) to leak
    written = export_lesion(path, image, disc(), tmp_path / "out", provenance=PROVENANCE)
    for kind in ("overlay", "mask"):
        with Image.open(written[kind]) as im:
            assert not im.getexif()
            assert "exif" not in im.info
            assert not getattr(im, "text", {})


def test_empty_mask_still_exports(tmp_path: Path, source) -> None:
    path, image = source
    mask = np.zeros((H, W), bool)
    written = export_lesion(path, image, mask, tmp_path / "out", provenance=PROVENANCE)
    assert set(written) == set(EXPORT_KINDS)
    with Image.open(written["mask"]) as im:
        assert im.size == (W, H) and not np.array(im).any()
    np.testing.assert_array_equal(read_image(written["overlay"]), image)
    assert json.loads(written["boundary"].read_text())["features"][0]["geometry"]["coordinates"] == []
    row = read_csv(written["measurements"])[0]
    assert row["area_px2"] == "" and row["n_regions"] == "" and row["colour_variegation"] == ""
    assert row["image"] == "ISIC_0000001.jpg" and row["source_sha256"] == sha(path)


def test_only_the_chosen_kinds_are_written(tmp_path: Path, source) -> None:
    path, image = source
    written = export_lesion(path, image, disc(), tmp_path / "out", provenance=PROVENANCE, kinds=("boundary", "mask"))
    assert list(written) == ["mask", "boundary"]
    assert names(tmp_path / "out") == {p.name for p in written.values()}
    with pytest.raises(ValueError, match="unknown export kind"):
        export_paths(path, tmp_path, kinds=("mask", "pdf"))


def test_existing_exports_are_refused_unless_overwrite(tmp_path: Path, source) -> None:
    path, image = source
    out = tmp_path / "out"
    first = export_lesion(path, image, disc(), out, provenance=PROVENANCE)
    earlier = snapshot(out)

    with pytest.raises(ExportExistsError) as info:
        export_lesion(path, image, disc(radius=20), out, provenance=PROVENANCE)
    assert sorted(info.value.paths) == sorted(first.values())
    assert "ISIC_0000001_overlay.png" in str(info.value)
    assert snapshot(out) == earlier  # byte-identical, nothing added

    # One leftover file is enough to refuse, and the others are then not written either.
    for kind in ("overlay", "boundary", "measurements"):
        first[kind].unlink()
    with pytest.raises(ExportExistsError) as info:
        export_lesion(path, image, disc(radius=20), out, provenance=PROVENANCE)
    assert info.value.paths == [first["mask"]]
    assert names(out) == {first["mask"].name}

    export_lesion(path, image, disc(radius=20), out, provenance=PROVENANCE, overwrite=True)
    np.testing.assert_array_equal(read_mask(first["mask"]), disc(radius=20))


def test_export_never_writes_over_the_source(tmp_path: Path, source) -> None:
    path, image = source
    before = sha(path)
    # Exporting beside the source is fine and leaves it untouched.
    export_lesion(path, image, disc(), path.parent, provenance=PROVENANCE)
    assert sha(path) == before
    # A planned output that is (a link to) the source is refused, even with overwrite.
    out = tmp_path / "linked"
    out.mkdir()
    try:
        (out / "ISIC_0000001_overlay.png").symlink_to(path)
    except OSError:
        pytest.skip("symbolic links are not available here")
    with pytest.raises(ValueError, match="source image"):
        export_lesion(path, image, disc(), out, provenance=PROVENANCE, overwrite=True)
    assert sha(path) == before
    assert [p.name for p in out.iterdir()] == ["ISIC_0000001_overlay.png"]


@pytest.mark.parametrize("fail_at", [1, 3, 4])
def test_a_failed_write_leaves_no_partial_export(
    tmp_path: Path, source, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    path, image = source
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the clinician's own file")
    before = snapshot(out)
    calls: list[Path] = []

    def failing(real):
        def write(p, *args, **kwargs):
            calls.append(Path(p))
            if len(calls) == fail_at:
                raise OutputWriteError(p, os.strerror(errno.ENOSPC))
            return real(p, *args, **kwargs)

        return write

    monkeypatch.setattr(export_module, "write_temp_file", failing(export_module.write_temp_file))

    with pytest.raises(OutputWriteError):
        export_lesion(path, image, disc(), out, provenance=PROVENANCE)
    assert len(calls) == fail_at
    assert snapshot(out) == before  # no new files, no *.tmp, the user's file untouched


def test_a_disk_full_inside_the_atomic_write_leaves_nothing(
    tmp_path: Path, source, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same, with the failure where a full disk really shows up: after the temp file was written."""
    path, image = source
    out = tmp_path / "out"
    out.mkdir()
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputWriteError, match="disk full"):
        export_lesion(path, image, disc(), out, provenance=PROVENANCE)
    assert names(out) == set()  # no export file, no temp file


def test_bad_inputs_write_nothing(tmp_path: Path, source) -> None:
    path, image = source
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="does not match"):
        export_lesion(path, image, np.zeros((H, W + 1), bool), out, provenance=PROVENANCE)
    assert not out.exists() or not any(out.iterdir())


def test_render_overlay_blends_fill_and_draws_the_boundary() -> None:
    image = np.full((40, 60, 3), 100, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 20:50] = True
    original = image.copy()

    fill_only = render_overlay(image, mask, OverlayStyle(colour=(255, 0, 0), opacity=0.5, boundary=False))
    assert tuple(fill_only[20, 30]) == (178, 50, 50)  # 0.5 * 100 + 0.5 * (255, 0, 0), rounded
    np.testing.assert_array_equal(fill_only[~mask], image[~mask])

    line_only = render_overlay(image, mask, OverlayStyle(colour=(255, 0, 0), fill=False))
    edge = mask & ~np.pad(mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:], 1)
    assert (line_only[edge] == (255, 0, 0)).all()  # one pixel wide on a small image, exactly on the edge
    np.testing.assert_array_equal(line_only[~edge], image[~edge])

    np.testing.assert_array_equal(render_overlay(image, mask, OverlayStyle(fill=False, boundary=False)), image)
    np.testing.assert_array_equal(image, original)  # drawn on a copy


def test_boundary_width_scales_with_the_image() -> None:
    def line_pixels(size: int) -> int:
        mask = disc((size, size), (size / 2, size / 2), size / 4)
        drawn = render_overlay(np.zeros((size, size, 3), np.uint8), mask, OverlayStyle(fill=False))
        return int(drawn.any(axis=2).sum())

    # The outline is 4x longer on the 4x image, and about 4x thicker (1 px -> 4 px): ~16x the pixels.
    assert line_pixels(1200) > 10 * line_pixels(300)


def test_overlay_style_is_checked() -> None:
    with pytest.raises(ValueError, match="opacity"):
        OverlayStyle(opacity=1.5)
    with pytest.raises(ValueError, match="colour"):
        OverlayStyle(colour=(0, 300, 0))


def test_an_overlay_drawn_and_encoded_in_place_is_the_same_picture(tmp_path: Path) -> None:
    """The batch draws a 120-megapixel overlay into the decoded photo and encodes it in place (no copies): the
    picture is the one a copy would give, the PNG identical, the JPEG within encoder rounding."""
    from segmentation.imageio import encode_image

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = disc((120, 160), (60, 80), 30)
    style = OverlayStyle(colour=(255, 0, 0), opacity=0.4)
    copied = render_overlay(image, mask, style)
    for suffix in (".png", ".jpg"):
        photo = image.copy()
        drawn = render_overlay(photo, mask, style, in_place=True)
        assert drawn is photo
        np.testing.assert_array_equal(drawn, copied)
        path = tmp_path / f"overlay{suffix}"
        path.write_bytes(encode_image(path, drawn, quality=95, consume=True))
        expected = tmp_path / f"expected{suffix}"
        expected.write_bytes(encode_image(expected, copied, quality=95))
        decoded, reference = read_image(path).astype(int), read_image(expected).astype(int)
        if suffix == ".png":
            np.testing.assert_array_equal(decoded, copied)
        else:  # two JPEG encoders, the same quality and no chroma subsampling
            assert np.abs(decoded - reference).mean() < 1.5
            assert np.abs(decoded - copied).mean() < 4
