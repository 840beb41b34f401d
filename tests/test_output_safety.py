"""Nothing the user made is lost, and every output is proven LesionLens's own (issue 18 items 1-6, 11, 16; issue 15
items 12-13): the ownership record, the output-folder lock, all-or-nothing export, safe CSV cells, odd names, the
probability map and GeoJSON outputs, Ctrl+C. The tiny *untrained* model: its masks mean nothing, files do.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segmentation.cli
import segmentation.export as export_module
from segmentation.backends import BACKEND_ENV
from segmentation.batch import BatchItem, BatchResult, ResultsTable
from segmentation.export import export_lesion, exported_images
from segmentation.folderlock import LOCK_NAME, output_folder_lock
from segmentation.geojson import geojson_to_mask, mask_to_geojson
from segmentation.imageio import OutputWriteError, read_image, read_mask
from segmentation.inference import Predictor
from segmentation.ownership import RECORD_NAME, OutputRecord
from segmentation.resources import WEIGHTS_ENV

MASK = "_segmentation.png"
PROVENANCE = {"model": "test-model", "model_sha256": "ab" * 32, "threshold": 0.5}


def jpeg(path: Path, rgb_image, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb_image(*size, seed=seed)).save(path, format="JPEG", quality=92)
    return path


def table(out: Path) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def disc(shape: tuple[int, int] = (48, 64), radius: float = 15.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 <= radius**2


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != RECORD_NAME}


# ---------------------------------------------------------------------------------------- 18.1 ownership
def test_resume_never_adopts_or_overwrites_the_users_own_mask(segment, tmp_path: Path, tiny_weights, rgb_image) -> None:
    folder = tmp_path / "study"
    image = jpeg(folder / "IMD002.jpg", rgb_image)
    jpeg(folder / "IMD003.jpg", rgb_image, seed=1)
    truth = folder / f"IMD002{MASK}"
    Image.fromarray(disc().astype(np.uint8) * 255).save(truth)  # the clinician's ground truth
    before = truth.read_bytes()
    for extra in (["--resume"], []):  # neither adopted by --resume nor overwritten by the next plain run
        status, said = segment(folder, "--out", folder, "--allow-input-folder", "--weights", tiny_weights, *extra)
        assert status == 1, said
        row = table(folder)["IMD002.jpg"]
        assert row["status"] == "error"
        assert f"{truth} already exists and was not written by LesionLens" in row["error"]
        assert truth.read_bytes() == before
        assert table(folder)["IMD003.jpg"]["status"] == "ok"
    assert image.exists()


@pytest.mark.parametrize("damage", ["emptied", "truncated"])
def test_an_emptied_or_truncated_mask_is_not_already_done(
    segment, tmp_path: Path, tiny_weights, rgb_image, damage: str
) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    out = tmp_path / "out"
    assert segment(tmp_path / "in", "--out", out, "--weights", tiny_weights)[0] == 0
    mask = out / f"a{MASK}"
    data = mask.read_bytes()
    mask.write_bytes(b"" if damage == "emptied" else data[: len(data) // 2])
    status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights, "--resume")
    assert status == 1
    assert "(0 segmented, 0 already done), 1 failed" in said
    assert f"{mask} was changed after LesionLens wrote it" in table(out)["a.jpg"]["error"]


# ---------------------------------------------------------------------------------------- 18.2 export
def _export(tmp_path: Path, rgb_image, mask: np.ndarray, **kwargs) -> dict[str, Path]:
    source = tmp_path / "images" / "ISIC_1.jpg"
    if not source.exists():
        jpeg(source, rgb_image)
    return export_lesion(source, read_image(source), mask, tmp_path / "out", provenance=PROVENANCE, **kwargs)


def test_a_reexport_that_fails_writing_leaves_the_whole_earlier_export(
    tmp_path: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(tmp_path, rgb_image, disc())
    earlier = snapshot(tmp_path / "out")
    real, calls = export_module.write_temp_file, []

    def disk_fills(path, data):
        calls.append(path)
        if len(calls) == 2:  # the overlay
            raise OutputWriteError(path, "disk full")
        return real(path, data)

    monkeypatch.setattr(export_module, "write_temp_file", disk_fills)
    with pytest.raises(OutputWriteError, match="disk full"):
        _export(tmp_path, rgb_image, disc(radius=8), overwrite=True)
    assert snapshot(tmp_path / "out") == earlier  # all four old files, byte-identical; no temp file left


def test_a_reexport_that_fails_while_swapping_puts_the_earlier_export_back(
    tmp_path: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(tmp_path, rgb_image, disc())
    earlier = snapshot(tmp_path / "out")
    real, calls = os.replace, []

    def fails_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fails_third)
    with pytest.raises(OutputWriteError):
        _export(tmp_path, rgb_image, disc(radius=8), overwrite=True)
    monkeypatch.undo()
    assert snapshot(tmp_path / "out") == earlier  # no .tmp, no .bak, the old set as it was
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / f"ISIC_1{MASK}"), disc())
    _export(tmp_path, rgb_image, disc(radius=8), overwrite=True)  # and the old files are still LesionLens's own


def test_export_never_overwrites_a_file_it_did_not_write(tmp_path: Path, rgb_image) -> None:
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / f"ISIC_1{MASK}"
    theirs.write_bytes(b"the clinician's own mask")
    with pytest.raises(ValueError, match="was not written by LesionLens"):
        _export(tmp_path, rgb_image, disc(), overwrite=True)
    assert theirs.read_bytes() == b"the clinician's own mask"
    assert set(snapshot(out)) == {theirs.name}


def test_the_exported_state_comes_from_the_exports_own_record(tmp_path: Path, rgb_image) -> None:
    """Issue 15 item 7: exporting to a second folder does not make the first forget, and an export whose mask was
    changed or deleted no longer counts."""
    first = _export(tmp_path, rgb_image, disc())
    source = (tmp_path / "images" / "ISIC_1.jpg").absolute()
    second = export_lesion(source, read_image(source), disc(), tmp_path / "elsewhere", provenance=PROVENANCE)
    assert exported_images(tmp_path / "out") == {source} == exported_images(tmp_path / "elsewhere")
    first["mask"].write_bytes(b"edited outside LesionLens")
    second["mask"].unlink()
    assert exported_images(tmp_path / "out") == set() == exported_images(tmp_path / "elsewhere")


# ---------------------------------------------------------------------------------------- 18.3 lock
def test_a_second_run_into_a_locked_folder_exits_2_and_says_who_holds_it(
    segment, tmp_path: Path, tiny_weights, rgb_image
) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    out = tmp_path / "out"
    out.mkdir()
    with output_folder_lock(out):
        status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights)
    assert status == 2
    assert f"another LesionLens run (pid {os.getpid()} on " in said and ", started at 20" in said
    assert "is writing here" in said
    assert not (out / f"a{MASK}").exists() and not (out / "results.csv").exists()


def test_a_stale_lock_is_taken_over_and_rows_of_earlier_runs_are_kept(
    segment, tmp_path: Path, tiny_weights, rgb_image
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "started_at": "2026-01-01T00:00:00"}))
    jpeg(tmp_path / "in1" / "a.jpg", rgb_image)
    jpeg(tmp_path / "in2" / "b.jpg", rgb_image, seed=1)
    status, said = segment(tmp_path / "in1", "--out", out, "--weights", tiny_weights)
    assert status == 0, said
    assert "taking over the lock of an earlier LesionLens run that is no longer running (pid 999999" in said
    assert segment(tmp_path / "in2", "--out", out, "--weights", tiny_weights)[0] == 0
    assert set(table(out)) == {"a.jpg", "b.jpg"}  # no rows lost
    assert not (out / LOCK_NAME).exists()


# ---------------------------------------------------------------------------------------- 18.4 resume --overlay
def test_resume_with_overlays_after_a_lost_row_and_from_another_folder(
    segment, tmp_path: Path, tiny_weights, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        jpeg(tmp_path / "in" / f"img{i}.jpg", rgb_image, seed=i)
    monkeypatch.chdir(tmp_path)
    assert segment("in", "--out", "out", "--weights", tiny_weights, "--overlay")[0] == 0
    lines = (tmp_path / "out" / "results.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "out" / "results.csv").write_text("".join(lines[:-1]), encoding="utf-8")  # as a kill would

    status, said = segment("in", "--out", "out", "--weights", tiny_weights, "--overlay", "--resume")
    assert status == 0, said
    assert "(1 segmented, 2 already done), 0 failed" in said
    assert "not written by LesionLens" not in said

    monkeypatch.chdir(tmp_path / "in")  # the same folders by absolute paths, from elsewhere
    status, said = segment(
        tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights, "--overlay", "--resume"
    )
    assert status == 0, said
    assert "(0 segmented, 3 already done), 0 failed" in said
    rows = table(tmp_path / "out")
    assert {row["status"] for row in rows.values()} == {"ok"} and len(rows) == 3


# ---------------------------------------------------------------------------------------- 18.5, 18.16 names
def test_a_250_byte_file_name_is_one_bad_file(segment, tmp_path: Path, tiny_weights, rgb_image) -> None:
    long_name = "L" * 246 + ".jpg"  # a legal name whose mask name (263 bytes) is over the 255-byte limit
    try:
        jpeg(tmp_path / "in" / long_name, rgb_image)
    except OSError:
        pytest.skip("this file system does not take 250-byte names")
    jpeg(tmp_path / "in" / "good.jpg", rgb_image, seed=1)
    status, said = segment(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 1 and "Traceback" not in said
    rows = table(tmp_path / "out")
    assert rows["good.jpg"]["status"] == "ok"
    assert rows[long_name]["status"] == "error"
    assert "cannot write its outputs (file name too long)" in rows[long_name]["error"]


def test_a_jpg_beside_a_png_of_the_same_name_both_get_masks(segment, tmp_path: Path, tiny_weights, rgb_image) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    Image.fromarray(rgb_image(30, 40, seed=3)).save(tmp_path / "in" / "a.png")
    jpeg(tmp_path / "in" / "b.jpg", rgb_image, seed=2)
    for extra in ([], ["--recursive"]):
        out = tmp_path / f"out{len(extra)}"
        status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights, *extra)
        assert status == 0, said
        assert read_mask(out / f"a.jpg{MASK}").shape == (48, 64)
        assert read_mask(out / f"a.png{MASK}").shape == (30, 40)
        assert (out / f"b{MASK}").exists()  # names that do not collide keep the ISIC naming


def test_a_device_is_not_a_regular_file(segment, tmp_path: Path, tiny_weights) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    status, _ = segment("/dev/zero", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 1
    assert "/dev/zero: not a regular file" in table(tmp_path / "out")["zero"]["error"]


def test_a_truncated_tiff_strip_prints_nothing_but_our_message(tmp_path: Path, capfd, rgb_image) -> None:
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb_image(64, 80)).save(buffer, format="TIFF")  # uncompressed strips: OpenCV decodes it
    (tmp_path / "cut.tif").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    capfd.readouterr()
    with pytest.raises(Exception, match="truncated or corrupt TIFF"):
        read_image(tmp_path / "cut.tif")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_folder_of_overlay_named_photos_says_why_nothing_was_found(segment, tmp_path: Path, tiny_weights, rgb_image):
    for i in range(2):
        jpeg(tmp_path / "in" / f"patient{i}_overlay.jpg", rgb_image, seed=i)
    status, said = segment(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 2
    assert "no images found" in said and "2 file(s) named like LesionLens's own outputs" in said
    assert not (tmp_path / "out").exists()


def test_recursive_output_inside_the_input_is_refused(segment, tmp_path: Path, tiny_weights, rgb_image) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    status, said = segment(tmp_path / "in", "--out", tmp_path / "in" / "sub", "--recursive", "--weights", tiny_weights)
    assert status == 2
    assert "inside the input folder" in said
    assert not (tmp_path / "in" / "sub").exists()


def test_images_in_subfolders_skipped_without_recursive_are_counted(
    segment, tmp_path: Path, tiny_weights, rgb_image
) -> None:
    jpeg(tmp_path / "in" / "top.jpg", rgb_image)
    jpeg(tmp_path / "in" / "left" / "a.jpg", rgb_image, seed=1)
    jpeg(tmp_path / "in" / "left" / "deeper" / "b.jpg", rgb_image, seed=2)
    status, said = segment(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 0
    assert "2 image(s) in subfolders skipped (add --recursive to include them)" in said


# ---------------------------------------------------------------------------------------- 18.6 numbers
@pytest.mark.parametrize("option", ["--max-megapixels", "--mm-per-pixel"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "many"])
def test_numeric_options_are_checked(segment, tmp_path: Path, tiny_weights, rgb_image, option, value) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    argv = [tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights, f"{option}={value}"]
    if value == "many":
        with pytest.raises(SystemExit) as exit_info:  # argparse: not a number at all
            segment(*argv)
        assert exit_info.value.code == 2
        return
    status, said = segment(*argv)
    assert status == 2
    assert f"{option} must be a finite number greater than 0" in said
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------- 18.11 CSV injection
FORMULA_NAMES = ["=cmd|' -C calc'!A0.jpg", "+1+1.jpg", "-2+3.jpg", "@SUM(A1).jpg"]


def test_formula_like_file_names_are_text_in_results_csv(
    segment, tmp_path: Path, tiny_weights, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, name in enumerate(FORMULA_NAMES):
        jpeg(tmp_path / "in" / name, rgb_image, seed=i)
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path / "in")  # the names given as they are, not below a folder
    assert segment("--out", out, "--weights", tiny_weights, "--", *FORMULA_NAMES)[0] == 0
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))]
    # The table reads back as it was: a resume finds every image done.
    status, said = segment("--out", out, "--weights", tiny_weights, "--resume", "--", *FORMULA_NAMES)
    assert status == 0 and f"(0 segmented, {len(FORMULA_NAMES)} already done)" in said


def test_formula_like_cells_of_results_csv_are_neutralised_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    results = ResultsTable(path, {"model": "@SUM(1+1)*cmd|' /C calc'!A0", "threshold": 0.5})
    item = BatchItem(Path("=cmd|' -C calc'!A0.jpg"), Path("=cmd|' -C calc'!A0.jpg"))
    results.add(BatchResult(item, "error", error='=HYPERLINK("http://evil")', seconds=-1.5), save=False)
    results.save()
    row = next(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert row["error"] == '\'=HYPERLINK("http://evil")' and row["model"].startswith("'@SUM")
    assert row["seconds"] == "-1.5"  # a number stays a number
    again = next(iter(ResultsTable(path, {}).rows.values()))
    assert again["error"] == '=HYPERLINK("http://evil")' and again["model"] == "@SUM(1+1)*cmd|' /C calc'!A0"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_formula_like_file_names_are_text_in_the_exported_measurements(tmp_path: Path, rgb_image) -> None:
    source = jpeg(tmp_path / "images" / "=HYPERLINK(x).jpg", rgb_image)
    written = export_lesion(source, read_image(source), disc(), tmp_path / "out", provenance=PROVENANCE)
    with written["measurements"].open(newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["image"] == "'=HYPERLINK(x).jpg" and row["source_image"] == "'=HYPERLINK(x).jpg"


# ---------------------------------------------------------------------------------------- 15.13 outputs, Ctrl+C
def test_probability_geojson_and_versions(segment, tmp_path: Path, tiny_weights, rgb_image) -> None:
    image = jpeg(tmp_path / "in" / "a.jpg", rgb_image)
    out = tmp_path / "out"
    status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights, "--save-probability", "--geojson")
    assert status == 0, said
    expected = Predictor(tiny_weights, device="cpu").predict(read_image(image))
    with Image.open(out / "a_probability.png") as probability:
        assert probability.mode == "L" and probability.size == (64, 48)
        stored = np.asarray(probability).astype(np.float32) / 255.0
    np.testing.assert_allclose(stored, expected.probability, atol=1 / 255 + 1e-3)  # ONNX Runtime vs PyTorch
    document = json.loads((out / "a_boundary.geojson").read_text(encoding="utf-8"))
    feature = document["features"][0]
    assert document["type"] == "FeatureCollection" and feature["geometry"]["type"] == "MultiPolygon"
    np.testing.assert_array_equal(geojson_to_mask(document), read_mask(out / f"a{MASK}"))
    assert feature["properties"]["image"] == "a.jpg" and feature["properties"]["model"] == "untrained-test-model"
    row = table(out)["a.jpg"]
    assert row["lesionlens_version"] == segmentation.__version__
    assert row["pytorch_version"] == version("torch")
    assert row["probability"].endswith("a_probability.png") and row["geojson"].endswith("a_boundary.geojson")
    record = OutputRecord(out)
    assert all(record.owns(out / name) for name in ("a_probability.png", "a_boundary.geojson", f"a{MASK}"))


def test_geojson_has_holes_as_interior_rings_and_round_trips() -> None:
    mask = np.zeros((40, 50), bool)
    mask[5:35, 5:45] = True
    mask[12:28, 15:35] = False  # a hole
    mask[18:22, 22:26] = True  # an island in the hole
    document = mask_to_geojson(mask, properties={"model": "m"})
    polygons = document["features"][0]["geometry"]["coordinates"]
    assert sorted(len(rings) for rings in polygons) == [1, 2]  # the island alone; the lesion with its hole
    assert all(ring[0] == ring[-1] for rings in polygons for ring in rings)
    assert document["features"][0]["properties"]["model"] == "m"
    np.testing.assert_array_equal(geojson_to_mask(document), mask)


def test_ctrl_c_during_model_load_exits_cleanly(segment, tmp_path: Path, tiny_weights, rgb_image, monkeypatch) -> None:
    jpeg(tmp_path / "in" / "a.jpg", rgb_image)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(segmentation.cli, "Predictor", interrupted)
    status, said = segment(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 130
    assert "interrupted" in said and "Traceback" not in said


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_mid_run_reports_the_truth_and_leaves_no_mask_without_its_row(
    tmp_path: Path, tiny_weights: Path, rgb_image
) -> None:
    for i in range(16):
        jpeg(tmp_path / "in" / f"lesion {i:02d}.jpg", rgb_image, seed=i)
    out = tmp_path / "out"
    script = Path(sys.executable).parent / "lesionlens"
    argv = [str(script), "segment", str(tmp_path / "in"), "--out", str(out), "--weights", str(tiny_weights)]
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_ENV} | {"OMP_NUM_THREADS": "1", BACKEND_ENV: "torch"}
    run = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob(f"*{MASK}"))) < 3 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.005)
    assert run.poll() is None, "the batch ended before Ctrl+C"
    run.send_signal(signal.SIGINT)
    _, said = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in said
    rows = table(out)
    masks = sorted(p.name for p in out.glob(f"*{MASK}"))
    assert 3 <= len(masks) < 16
    assert sorted(name.replace(".jpg", MASK) for name, row in rows.items() if row["status"] == "ok") == masks
    assert f"{len(masks)} of 16 images succeeded" in said
    assert f"interrupted: {16 - len(masks)} of 16 images not started" in said

    resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({16 - len(masks)} segmented, {len(masks)} already done), 0 failed" in resumed.stderr
    assert {row["status"] for row in table(out).values()} == {"ok"} and len(table(out)) == 16
