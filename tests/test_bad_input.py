"""Bad input through the CLI batch and the trainer's data cache: one clear message per bad file, the rest processed.

The files come from tests/bad_inputs.py (generated, tiny). read_image itself is tested kind by kind in
tests/test_imageio.py; here every kind goes through the entry points at once, and what matters is what the
clinician sees and what is left on disk: one error line and one results.csv row naming each bad file, a valid mask
for every good one, no traceback, no temp or partial file, inputs byte-identical. docs/RELIABILITY.md maps each case
to its test.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import (
    BAD_REASONS,
    LINKS,
    LOCKED,
    bad_files,
    deny_reading,
    file_hashes,
    huge_png_header,
    make_bad_file,
    odd_valid_files,
)

from segmentation import imageio
from segmentation.batch import collect_inputs
from segmentation.imageio import ImageReadError, read_image
from segmentation.ownership import RECORD_NAME
from segmentation.preprocessing import Preprocessing
from trainer.data import CachedSplit, DatasetError, find_samples


def results(out: Path) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_file = {row["file"]: row for row in rows}
    assert len(by_file) == len(rows), "one row per input file"
    return by_file


def check_mask(path: Path, size: tuple[int, int]) -> None:
    """A complete, valid mask: a single-channel 8-bit PNG of 0 and 255 at the image's displayed (height, width)."""
    assert path.is_file(), f"no mask {path.name}"
    with Image.open(path) as mask:
        mask.load()  # decodes every byte: a truncated file fails here
        assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (size[1], size[0]))
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}


# ------------------------------------------------------------------------------------------------ the CLI batch
@pytest.mark.parametrize("layout", ["flat", "recursive"])
def test_cli_batch_over_every_kind_of_bad_input(
    layout: str, segment, tmp_path: Path, tiny_weights: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every bad file, every odd-but-valid file and two plain good ones in one folder (``recursive``: the odd and bad
    ones in a subfolder holding a symlink back to its parent, a directory loop)."""
    tree, out = tmp_path / "clinic export", tmp_path / "masks"
    folder = tree / "follow-up visits" if layout == "recursive" else tree
    good = odd_valid_files(folder, rgb_image)
    for index, name in enumerate(("plain 1.jpg", "plain 2.png")):
        tree.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb_image(48, 64, seed=index)).save(tree / name)
        good[tree / name] = (48, 64)
    bad = bad_files(folder, rgb_image)
    if layout == "recursive":
        (folder / "back up").symlink_to("..", target_is_directory=True)  # a walk that followed it would never end
    deny_reading(monkeypatch, [folder / LOCKED])
    before = file_hashes(tree)

    options = ["--recursive"] if layout == "recursive" else []
    status, said = segment(tree, "--out", out, "--weights", tiny_weights, *options)

    assert status == 1, said
    assert "Traceback" not in said
    rows = results(out)
    assert set(rows) == {str(p) for p in (*good, *bad)}
    for image, reason in bad.items():
        row = rows[str(image)]
        assert row["status"] == "error" and row["mask"] == ""
        assert row["error"].startswith(f"{image}: ") and reason in row["error"], row["error"]
        assert len(re.findall(rf"error: {re.escape(str(image))}: ", said)) == 1, f"one message for {image}"
    expected_masks = set()
    for image, size in good.items():
        mask = out / image.relative_to(tree).parent / f"{image.stem}_segmentation.png"
        assert rows[str(image)]["status"] == "ok", rows[str(image)]["error"]
        assert Path(rows[str(image)]["mask"]) == mask
        check_mask(mask, size)
        expected_masks.add(mask)
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == expected_masks | {out / "results.csv", out / RECORD_NAME}, "no mask for a bad file, no temp file"
    assert f"{len(good)} of {len(good) + len(bad)} images succeeded" in said
    assert file_hashes(tree) == before, "inputs byte-identical, nothing added beside them"


def test_a_folder_that_cannot_be_listed_is_one_error_and_the_others_go_on(
    segment, tmp_path: Path, tiny_weights: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder without read permission (simulated: root lists anything) is named, not a traceback."""
    readable, locked = tmp_path / "readable", tmp_path / "locked"
    for folder in (readable, locked):
        folder.mkdir()
        Image.fromarray(rgb_image(40, 40)).save(folder / "lesion.png")
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    status, said = segment(readable, locked, "--out", tmp_path / "out", "--weights", tiny_weights)
    assert status == 1 and "Traceback" not in said
    assert f"error: {locked}: cannot list the folder (permission denied)" in said
    check_mask(tmp_path / "out" / "lesion_segmentation.png", (40, 40))
    assert results(tmp_path / "out")[str(locked)]["status"] == "error"


def test_recursive_walk_reports_an_unreadable_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tree" / "locked").mkdir(parents=True)
    (tmp_path / "tree" / "a.png").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path=None):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items, problems = collect_inputs([tmp_path / "tree"], recursive=True)
    assert [item.source.name for item in items] == ["a.png"]
    assert [p.error for p in problems] == [
        f"{tmp_path / 'tree' / 'locked'}: cannot list the folder (permission denied)"
    ]


@pytest.mark.timeout(20)
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A FIFO named like an image (found by --recursive, or given as a file) would block a plain open forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path / "pipe.jpg")


# ------------------------------------------------------------------------------------------------ the trainer
@pytest.mark.parametrize("role", ["image", "mask"])
@pytest.mark.parametrize("name", list(BAD_REASONS))
def test_trainer_cache_refuses_a_bad_file_by_name(
    name: str, role: str, tmp_path: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, masks, cache = tmp_path / "images", tmp_path / "masks", tmp_path / "cache"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(rgb_image(30, 40)).save(images / "ISIC_0000001.jpg")
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(masks / "ISIC_0000001_segmentation.png")
    for index in (2, 3):  # the bad pair is the second of three: the cache must not be half built
        Image.fromarray(rgb_image(30, 40, seed=index)).save(images / f"ISIC_000000{index}.jpg")
        Image.fromarray(np.zeros((30, 40), np.uint8)).save(masks / f"ISIC_000000{index}_segmentation.png")
    target = images / "ISIC_0000002.jpg" if role == "image" else masks / "ISIC_0000002_segmentation.png"
    target.unlink()
    make_bad_file(target, name, rgb_image)
    if name == LOCKED:
        deny_reading(monkeypatch, [target])
    with pytest.raises((ImageReadError, DatasetError)) as info:
        CachedSplit(find_samples(images, masks), Preprocessing(input_size=(8, 8)), cache)
    if role == "mask" and name in LINKS:  # find_samples pairs only masks that are files
        assert str(info.value) == f"{masks}: 1 masks missing (e.g. {target.name})"
    else:
        assert str(info.value).startswith(f"{target}: ") and BAD_REASONS[name] in str(info.value)
    left = [p for p in cache.rglob("*") if p.suffix != ".lock"] if cache.exists() else []  # the build lock may stay
    assert left == [], "no half-built cache (no .npy, no temp, no done.json)"


def test_trainer_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "readme.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'images'}: no images (.jpg/.png) found")):
        find_samples(tmp_path / "images", tmp_path / "masks")


# ------------------------------------------------------------------------------------------------ size guard
def _huge_jpeg(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny JPEG whose frame header (SOF0) declares ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_size_guard_refuses_before_any_pixel_is_decoded(kind: str, tmp_path: Path, monkeypatch) -> None:
    """40000x40000 (1.6 gigapixels, 4.8 GB as RGB) is refused from the header: the decoders are never called, so
    nothing is allocated. CLI, GUI and trainer all read through read_image (their tests use the same file)."""
    path = tmp_path / f"huge.{kind}"
    path.write_bytes(huge_png_header() if kind == "png" else _huge_jpeg())

    def decode(*args, **kwargs):
        raise AssertionError("a decoder was called for an image over the limit")

    monkeypatch.setattr(imageio, "_load", decode)
    monkeypatch.setattr(imageio, "_cv2_pixels", decode)
    with pytest.raises(ImageReadError, match=r"40000x40000 = 1600\.0 megapixels, over the limit of 120 megapixels"):
        read_image(path)
