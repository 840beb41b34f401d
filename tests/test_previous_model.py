"""The model card's comparison with the model it replaces: paired on the same images, from the per-image files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from trainer.previous import comparison_table, paired, read_previous, worst_revisited


def write_model_dir(folder: Path, per_image: dict[str, dict[str, float]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validation.json").write_text(json.dumps({"model": "v1", "sha256": "abc", "n_images": 3}))
    for name, dice in per_image.items():
        with (folder / f"{name}_per_image.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "accuracy", "dice"])
            writer.writerows([image, 0.9, value] for image, value in dice.items())
    return folder


def rows(dice: dict[str, float]) -> list[dict]:
    return [{"image": image, "dice": value, "jaccard": value / (2 - value)} for image, value in dice.items()]


def test_nothing_published_before_is_no_comparison(tmp_path: Path) -> None:
    assert read_previous(tmp_path / "docs" / "model") is None


def test_the_previous_model_is_compared_image_by_image(tmp_path: Path) -> None:
    before = {"a.jpg": 0.2, "b.jpg": 0.9, "c.jpg": 0.6, "d.jpg": 0.8}
    previous = read_previous(write_model_dir(tmp_path, {"validation": before, "ham_holdout": {"h.jpg": 0.5}}))
    assert previous is not None and (previous.name, previous.sha256) == ("v1", "abc")
    assert previous.dice["validation"] == before
    # Every image 0.05 better, and one image the new model was never scored on (left out of the pairing).
    after = {image: value + 0.05 for image, value in before.items()} | {"new.jpg": 0.1}
    result = paired(previous.dice["validation"], rows(after))
    assert result["n"] == 4
    assert result["previous"] == pytest.approx(0.625) and result["now"] == pytest.approx(0.675)
    assert result["difference"] == pytest.approx(0.05) and result["ci95"] == pytest.approx([0.05, 0.05])
    table = comparison_table(previous, {"validation": rows(after), "fullres": rows(after)}, {"validation": "ISIC"})
    assert "| ISIC | 4 | 0.6250 | 0.6750 | +0.0500 (+0.0500 to +0.0500) |" in table
    assert "fullres" not in table  # the previous model has no per-image file for it: no row, not a made-up one


def test_the_previous_worst_images_are_revisited_worst_first(tmp_path: Path) -> None:
    before = {"a.jpg": 0.2, "b.jpg": 0.9, "c.jpg": 0.6, "d.jpg": 0.8}
    after = {"a.jpg": 0.7, "b.jpg": 0.9, "c.jpg": 0.5, "d.jpg": 0.85}
    table = worst_revisited(before, rows(after), count=2)
    body = table.splitlines()[2:]
    assert body == ["| a | 0.200 | 0.700 | +0.500 |", "| c | 0.600 | 0.500 | -0.100 |"]


def test_no_common_images_is_an_error_not_a_zero(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none of these images"):
        paired({"a.jpg": 0.5}, rows({"b.jpg": 0.5}))
