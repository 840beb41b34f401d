"""Plain-skin negatives for training (``python -m trainer plain-skin``): crops clear of the lesion, empty masks, and
never a crop of a HAM10000 hold-out image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segmentation.imageio import read_image, read_mask, write_image, write_mask
from trainer.cli import main
from trainer.data import find_samples
from trainer.plain_skin import CROP_MARGIN, plain_skin_crop
from trainer.splits import held_out_image_ids


def _photo(folder: Path, name: str, lesion: tuple[slice, slice], size: tuple[int, int] = (150, 200)) -> None:
    """A skin-coloured photo with a dark lesion where ``lesion`` says, and its expert mask."""
    rng = np.random.default_rng(len(name))
    image = np.clip(rng.normal((200, 150, 130), 8, (*size, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros(size, bool)
    mask[lesion] = True
    image[mask] = (90, 50, 40)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_image(folder / "images" / f"{name}.jpg", image)
    write_mask(folder / "masks" / f"{name}_segmentation.png", mask)


def test_the_crop_keeps_clear_of_the_lesion() -> None:
    image = np.full((150, 200, 3), 180, np.uint8)
    truth = np.zeros((150, 200), bool)
    truth[:, :100] = True  # the left half is lesion
    crop = plain_skin_crop(image, truth)
    assert crop is not None and crop.shape[0] >= 40
    assert crop.shape[1] <= 200 - 100 - CROP_MARGIN  # fits in the clear right half, margin kept
    assert plain_skin_crop(image, np.ones((150, 200), bool)) is None  # no skin at all: no crop


def test_the_command_writes_negatives_the_trainer_reads_and_leaves_the_hold_out_alone(tmp_path: Path, capsys) -> None:
    source, out = tmp_path / "source", tmp_path / "plain"
    held_out = sorted(held_out_image_ids())[0]
    _photo(source, "ISIC_9000001", (slice(0, 150), slice(0, 60)))  # lesion on the left: skin on the right
    _photo(source, "ISIC_9000002", (slice(0, 150), slice(0, 190)))  # lesion nearly everywhere: no clear rectangle
    _photo(source, held_out, (slice(0, 60), slice(0, 60)))  # a hold-out image: never cut
    assert main(["plain-skin", "--from", str(source / "images"), str(source / "masks"), "--out", str(out)]) == 0
    assert "1 plain-skin crops" in capsys.readouterr().out
    samples = find_samples(out / "images", out / "masks")
    assert [s.image.name for s in samples] == ["ISIC_9000001_skin.png"]
    crop, mask = read_image(samples[0].image), read_mask(samples[0].mask)
    assert mask.shape == crop.shape[:2] and not mask.any()
    assert (np.abs(crop.astype(int) - (200, 150, 130)).mean(axis=2) < 40).all()  # skin, none of the dark lesion
    assert main(["plain-skin", "--from", str(source / "images"), str(source / "masks"), "--out", str(out)]) == 0
    assert len(find_samples(out / "images", out / "masks")) == 1  # rerunnable
