"""End-to-end tests of ``lesionlens segment`` (segmentation.cli) with the tiny *untrained* weights.

The masks of a random network mean nothing; these tests check files, names, formats, exit codes, the CSV and that
inputs are never touched. Most runs call ``segmentation.cli.main`` in-process; one goes through the installed
``lesionlens`` console script to prove the entry point.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segmentation.cli
from segmentation.batch import ResultsTable
from segmentation.imageio import read_image
from segmentation.inference import Predictor
from segmentation.provenance import PROVENANCE_KEYS
from segmentation.resources import WEIGHTS_ENV

UNTRAINED_NAME = "untrained-test-model"
ACCENTED_NAME = "Mélanome à vérifier n°2 (côté).jpg"
CSV_COLUMNS = {
    "file",
    "status",
    "error",
    "mask",
    "seconds",
    "estimated_dice",
    "needs_review",
    "no_lesion",
    "at_border",
    "reasons",
    "area_px2",
    "model",
    "model_sha256",
    "threshold",
}


# ------------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def cli(segment: Callable[..., tuple[int, str]]) -> Callable[..., tuple[int, str]]:
    return segment


def _write_jpeg(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=92)
    return path


def _good_images(folder: Path, isic_sample_dir: Path, rgb_image) -> list[Path]:
    """Three good JPEGs: two real ISIC validation images when the shared data is there, and one whose name has
    spaces and accents."""
    folder.mkdir(parents=True, exist_ok=True)
    validation = isic_sample_dir / "ISIC-2017_Validation_Data"
    real = sorted(validation.glob("ISIC_*.jpg"))[:2] if validation.is_dir() else []
    good = [Path(shutil.copy2(source, folder / source.name)) for source in real]
    good += [_write_jpeg(folder / f"ISIC_900000{i}.jpg", rgb_image(150, 200, seed=i)) for i in range(2 - len(good))]
    good.append(_write_jpeg(folder / ACCENTED_NAME, rgb_image(97, 131, seed=7)))
    return good


def _mixed_folder(folder: Path, isic_sample_dir: Path, rgb_image) -> tuple[list[Path], list[Path]]:
    """Good JPEGs plus a truncated JPEG and a text file named .jpg; returns (good, bad)."""
    good = _good_images(folder, isic_sample_dir, rgb_image)
    truncated = folder / "truncated.jpg"
    data = _write_jpeg(folder / "whole.tmpjpeg", rgb_image(120, 160, seed=9)).read_bytes()
    (folder / "whole.tmpjpeg").unlink()
    truncated.write_bytes(data[: len(data) // 2])
    notes = folder / "notes.jpg"
    notes.write_text("Patient 12: re-check the lesion on the left shoulder in 3 months.\n", encoding="utf-8")
    return good, [truncated, notes]


def _mask_for(image: Path, out: Path) -> Path:
    return out / f"{image.stem}_segmentation.png"


def _check_mask(mask_path: Path, image_path: Path) -> np.ndarray:
    assert mask_path.is_file(), f"no mask for {image_path.name}"
    with Image.open(mask_path) as mask:
        assert mask.format == "PNG"
        assert mask.mode == "L", "single-channel 8-bit"
        with Image.open(image_path) as image:
            assert mask.size == image.size
        values = np.asarray(mask)
    assert set(np.unique(values).tolist()) <= {0, 255}
    return values


def _read_results(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _leftover_temp_files(folder: Path) -> list[str]:
    return [name for _root, _dirs, files in os.walk(folder) for name in files if name.endswith(".tmp")]


def _console_script() -> Path:
    script = Path(sys.executable).parent / ("lesionlens.exe" if os.name == "nt" else "lesionlens")
    assert script.is_file(), f"the lesionlens console script is not installed beside {sys.executable}"
    return script


def _run_console_script(*argv: str | os.PathLike, cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_ENV}
    completed = subprocess.run(
        [str(_console_script()), *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    return completed.returncode, completed.stderr


# ------------------------------------------------------------------------------------------------ mixed folder
@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("runner", ["in-process", "console-script"])
def test_mixed_folder(runner: str, cli, tmp_path: Path, tiny_weights: Path, isic_sample_dir: Path, rgb_image) -> None:
    images, out = tmp_path / "images", tmp_path / "masks out"
    good, bad = _mixed_folder(images, isic_sample_dir, rgb_image)
    before = _hashes(images)
    argv = ("segment", images, "--out", out, "--weights", tiny_weights)
    status, stderr = _run_console_script(*argv, cwd=tmp_path) if runner == "console-script" else cli(*argv[1:])

    assert status == 1, stderr  # some images failed
    for image in good:
        _check_mask(_mask_for(image, out), image)
    for image in bad:
        assert not _mask_for(image, out).exists()
    assert sorted(p.name for p in out.glob("*_segmentation.png")) == sorted(_mask_for(p, out).name for p in good)

    columns, rows = _read_results(out)
    assert set(columns) >= CSV_COLUMNS
    assert columns[-len(ResultsTable.TRAILING) :] == list(ResultsTable.TRAILING) == list(PROVENANCE_KEYS)
    by_name = {Path(row["file"]).name: row for row in rows}
    assert len(rows) == len(good) + len(bad) == len(by_name)
    assert set(by_name) == {p.name for p in good + bad}
    sha = hashlib.sha256(tiny_weights.read_bytes()).hexdigest()  # what sha256sum prints for the weights file
    for image in good:
        row = by_name[image.name]
        assert (row["status"], row["error"]) == ("ok", "")
        assert Path(row["mask"]) == _mask_for(image, out)
        assert row["no_lesion"] in {"True", "False"}
        assert int(float(row["area_px2"])) >= 0
        assert float(row["seconds"]) >= 0
        assert (row["model"], row["model_sha256"], float(row["threshold"])) == (UNTRAINED_NAME, sha, 0.5)
    for image in bad:
        row = by_name[image.name]
        assert row["status"] == "error"
        assert image.name in row["error"]
        assert row["mask"] == ""
        assert image.name in stderr
    assert "truncated or corrupt JPEG" in by_name["truncated.jpg"]["error"]
    assert "not an image" in by_name["notes.jpg"]["error"]

    assert "3 of 5 images succeeded (3 segmented, 0 already done), 2 failed" in stderr
    assert _hashes(images) == before, "inputs are byte-identical and nothing was added beside them"
    assert _leftover_temp_files(out) == []
    assert _leftover_temp_files(images) == []


def test_all_good_folder_exits_zero(cli, tmp_path: Path, tiny_weights: Path, isic_sample_dir: Path, rgb_image) -> None:
    good = _good_images(tmp_path / "images", isic_sample_dir, rgb_image)
    status, log = cli(tmp_path / "images", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 0, log
    assert "3 of 3 images succeeded" in log
    for image in good:
        _check_mask(_mask_for(image, tmp_path / "out"), image)
    _, rows = _read_results(tmp_path / "out")
    assert [row["status"] for row in rows] == ["ok"] * 3


def test_single_file_inputs(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    images = [_write_jpeg(tmp_path / "in" / f"{name}.jpg", rgb_image(60, 80)) for name in ("one", "two")]
    status, _ = cli(*images, "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 0
    for image in images:
        _check_mask(_mask_for(image, tmp_path / "out"), image)
    assert len(_read_results(tmp_path / "out")[1]) == 2


@pytest.mark.parametrize("missing", ["absent.jpg", "absent folder"])
def test_a_missing_input_is_found_before_the_model_loads(
    cli, tmp_path: Path, tiny_weights: Path, rgb_image, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """Issue 15 item 12: exit 2 at once, naming the input; --out is not created, the model never loads."""
    image = _write_jpeg(tmp_path / "in" / "one.jpg", rgb_image(60, 80))
    loaded: list[object] = []
    monkeypatch.setattr(segmentation.cli, "Predictor", lambda *a, **k: loaded.append(a))
    status, log = cli(image, tmp_path / missing, "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 2
    assert f"{tmp_path / missing}: no such file or folder" in log
    assert not (tmp_path / "out").exists()
    assert loaded == []


# ------------------------------------------------------------------------------------------------ options
def test_resume_skips_existing_masks_and_finishes_a_missing_one(
    cli, tmp_path: Path, tiny_weights: Path, isic_sample_dir: Path, rgb_image
) -> None:
    images, out = tmp_path / "images", tmp_path / "out"
    good = _good_images(images, isic_sample_dir, rgb_image)
    assert cli(images, "--out", out, "--weights", tiny_weights)[0] == 0
    masks = [_mask_for(image, out) for image in good]
    masks[1].unlink()
    stamps = {mask: mask.stat().st_mtime_ns for mask in (masks[0], masks[2])}
    contents = {mask: mask.read_bytes() for mask in stamps}

    status, log = cli(images, "--out", out, "--weights", tiny_weights, "--resume")
    assert status == 0, log
    assert "(1 segmented, 2 already done), 0 failed" in log
    for mask, stamp in stamps.items():
        assert mask.stat().st_mtime_ns == stamp, f"{mask.name} was rewritten"
        assert mask.read_bytes() == contents[mask]
    _check_mask(masks[1], good[1])
    _, rows = _read_results(out)
    assert sorted(Path(row["file"]).name for row in rows) == sorted(p.name for p in good)
    assert {row["status"] for row in rows} == {"ok"}, "rows of the first run are kept"


def test_recursive_mirrors_subfolders(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    first = _write_jpeg(tree / "left arm" / "lesion.jpg", rgb_image(60, 80, seed=1))
    second = _write_jpeg(tree / "back" / "2024" / "lesion.jpg", rgb_image(70, 90, seed=2))
    top = _write_jpeg(tree / "top.jpg", rgb_image(50, 50, seed=3))
    status, log = cli(tree, "--out", out, "--weights", tiny_weights, "--recursive")
    assert status == 0, log
    _check_mask(out / "left arm" / "lesion_segmentation.png", first)
    _check_mask(out / "back" / "2024" / "lesion_segmentation.png", second)
    _check_mask(out / "top_segmentation.png", top)
    assert len(list(out.rglob("*_segmentation.png"))) == 3


def test_same_name_in_two_input_folders_is_a_collision(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    first = _write_jpeg(tmp_path / "a" / "lesion.jpg", rgb_image(60, 80, seed=1))
    second = _write_jpeg(tmp_path / "b" / "lesion.jpg", rgb_image(90, 70, seed=2))
    out = tmp_path / "out"
    status, log = cli(tmp_path / "a", tmp_path / "b", "--out", out, "--weights", tiny_weights)
    assert status == 1
    mask = _check_mask(out / "lesion_segmentation.png", first)  # the first image's size, not the second's
    expected = Predictor(tiny_weights, device="cpu").predict(read_image(first)).mask
    np.testing.assert_array_equal(mask, expected.astype(np.uint8) * 255)
    _, rows = _read_results(out)
    by_file = {Path(row["file"]): row for row in rows}
    assert by_file[first]["status"] == "ok"
    assert by_file[second]["status"] == "error"
    assert "collides" in by_file[second]["error"]
    assert str(second) in by_file[second]["error"]
    assert "collides" in log


def test_output_folder_equal_to_input_folder_is_refused(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    image = _write_jpeg(tmp_path / "images" / "lesion.jpg", rgb_image(60, 80))
    before = _hashes(tmp_path / "images")
    status, log = cli(tmp_path / "images", "--out", tmp_path / "images", "--weights", tiny_weights)
    assert status == 2
    assert "is the input folder" in log
    assert "--allow-input-folder" in log
    assert _hashes(tmp_path / "images") == before

    # A file input whose folder is the output folder is refused as well.
    assert cli(image, "--out", tmp_path / "images" / ".", "--weights", tiny_weights)[0] == 2

    status, log = cli(
        tmp_path / "images", "--out", tmp_path / "images", "--weights", tiny_weights, "--allow-input-folder"
    )
    assert status == 0, log
    _check_mask(tmp_path / "images" / "lesion_segmentation.png", image)
    assert image.read_bytes() == (tmp_path / "images" / "lesion.jpg").read_bytes()


def test_overlay_is_written_at_the_image_size(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    image = _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(97, 131))
    out = tmp_path / "out"
    status, log = cli(tmp_path / "in", "--out", out, "--weights", tiny_weights, "--overlay")
    assert status == 0, log
    with Image.open(out / "lesion_overlay.jpg") as overlay:
        assert overlay.format == "JPEG"
        assert overlay.mode == "RGB"
        assert overlay.size == (131, 97)
    _check_mask(out / "lesion_segmentation.png", image)


def test_threshold_is_used_and_recorded(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    image = _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(60, 80))
    status, _ = cli(image, "--out", tmp_path / "out", "--weights", tiny_weights, "--threshold", "1e-6")
    assert status == 0
    assert (_check_mask(_mask_for(image, tmp_path / "out"), image) == 255).all(), "threshold ~0: every pixel"
    _, rows = _read_results(tmp_path / "out")
    assert float(rows[0]["threshold"]) == 1e-6


@pytest.mark.parametrize("threshold", ["0", "1", "1.5", "-0.1", "nan", "inf"])
def test_threshold_outside_zero_one_is_refused(cli, tmp_path: Path, tiny_weights: Path, threshold: str) -> None:
    status, log = cli(tmp_path, "--out", tmp_path / "out", "--weights", tiny_weights, "--threshold", threshold)
    assert status == 2
    assert "--threshold must be between 0 and 1" in log


# ------------------------------------------------------------------------------------------------ weights
def test_missing_weights_without_a_bundled_model(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rgb_image
) -> None:
    _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(40, 40))
    monkeypatch.setattr(segmentation.cli, "default_weights_path", lambda: tmp_path / "models" / "absent.safetensors")
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out")
    assert status == 2
    assert "--weights" in log
    assert "no bundled model" in log
    assert not (tmp_path / "out").exists()


def test_weights_from_the_environment(
    cli, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, rgb_image
) -> None:
    image = _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(40, 40))
    monkeypatch.setenv(WEIGHTS_ENV, str(tiny_weights))
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out")
    assert status == 0, log
    assert UNTRAINED_NAME in log
    _check_mask(_mask_for(image, tmp_path / "out"), image)


def test_environment_pointing_to_a_missing_file_names_it(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rgb_image
) -> None:
    _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(40, 40))
    missing = tmp_path / "typo.safetensors"
    monkeypatch.setenv(WEIGHTS_ENV, str(missing))
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out")
    assert status == 2
    assert str(missing) in log
    assert "no bundled model" not in log


def test_weights_option_pointing_to_a_missing_file(cli, tmp_path: Path, rgb_image) -> None:
    _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(40, 40))
    missing = tmp_path / "nowhere.safetensors"
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out", "--weights", missing)
    assert status == 2
    assert f"{missing}: weights file not found" in log


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not a safetensors file " * 40], ids=["empty", "garbage"])
def test_corrupt_weights_file(cli, tmp_path: Path, rgb_image, content: bytes) -> None:
    _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(40, 40))
    weights = tmp_path / "broken model.safetensors"
    weights.write_bytes(content)
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out", "--weights", weights)
    assert status == 2
    assert str(weights) in log
    assert not (tmp_path / "out").exists()


def test_empty_folder(cli, tmp_path: Path, tiny_weights: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("not an image")
    status, log = cli(tmp_path / "empty", "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 2
    assert "no images found" in log


# ------------------------------------------------------------------------------------------------ bugs
def test_overlay_never_overwrites_an_input(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    folder = tmp_path / "images"
    _write_jpeg(folder / "lesion.jpg", rgb_image(60, 80, seed=1))
    clinician_file = _write_jpeg(folder / "lesion_overlay.jpg", rgb_image(60, 80, seed=2))
    original = clinician_file.read_bytes()
    cli(folder, "--out", folder, "--weights", tiny_weights, "--allow-input-folder", "--overlay")
    assert clinician_file.read_bytes() == original


def test_rerun_does_not_segment_its_own_overlays(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    folder = tmp_path / "images"
    _write_jpeg(folder / "lesion.jpg", rgb_image(60, 80, seed=1))
    argv = (folder, "--out", folder, "--weights", tiny_weights, "--allow-input-folder", "--overlay", "--resume")
    assert cli(*argv)[0] == 0
    status, log = cli(*argv)
    assert status == 0
    assert not (folder / "lesion_overlay_segmentation.png").exists()
    assert "1 of 1 images succeeded" in log


def test_calibration_reports_measurements_in_millimetres(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    _write_jpeg(tmp_path / "in" / "lesion.jpg", rgb_image(60, 80, seed=4))
    status, _ = cli(
        tmp_path / "in",
        "--out",
        tmp_path / "out",
        "--weights",
        tiny_weights,
        "--mm-per-pixel",
        "0.02",
        "--threshold",
        "1e-6",
    )
    assert status == 0
    row = _read_results(tmp_path / "out")[1][0]
    # Threshold ~0 marks every pixel as lesion: the area is the whole 80x60 image, in mm².
    assert float(row["area_mm2"]) == pytest.approx(80 * 60 * 0.02**2, rel=1e-6)
    assert float(row["mm_per_pixel"]) == 0.02


def test_images_over_the_pixel_limit_are_refused(cli, tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    _write_jpeg(tmp_path / "in" / "big.jpg", rgb_image(600, 800, seed=5))
    status, log = cli(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights, "--max-megapixels", "0.1")
    assert status == 1
    assert "over the limit of 0.1 megapixels" in log
