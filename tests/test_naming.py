"""segmentation.naming: the one place for the names LesionLens gives its outputs and expects of ground truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentation.batch import BatchItem
from segmentation.export import EXPORT_KINDS, export_paths
from segmentation.naming import BATCH_SUFFIXES, EXPORT_SUFFIXES, is_output_name, mask_name, output_name


def test_masks_follow_the_isic_naming() -> None:
    assert mask_name("ISIC_0000001") == "ISIC_0000001_segmentation.png"
    assert output_name("a.jpg", "_overlay.jpg") == "a.jpg_overlay.jpg"
    assert BATCH_SUFFIXES["mask"] == EXPORT_SUFFIXES["mask"]  # the GUI export and the batch write the same mask


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("ISIC_0000001_segmentation.png", True),
        ("a_overlay.jpg", True),  # the batch's overlay
        ("a_overlay.png", True),  # the GUI export's overlay
        ("a_probability.png", True),
        ("a.jpg_segmentation.png", True),
        ("ISIC_0000001.jpg", False),
        ("segmentation.png", False),
        ("a_segmentation.jpg", False),
    ],
)
def test_output_names_are_recognised(name: str, ours: bool) -> None:
    assert is_output_name(name) is ours


def test_batch_and_export_use_the_rules(tmp_path: Path) -> None:
    item = BatchItem(Path("in/ISIC_1.jpg"), Path("sub/ISIC_1.jpg"))
    assert item.mask_path(tmp_path) == tmp_path / "sub" / "ISIC_1_segmentation.png"
    assert item.overlay_path(tmp_path) == tmp_path / "sub" / "ISIC_1_overlay.jpg"
    paths = export_paths(Path("/data/ISIC_0000001.jpg"), tmp_path)
    assert [paths[kind].name for kind in EXPORT_KINDS] == [
        "ISIC_0000001_segmentation.png",
        "ISIC_0000001_overlay.png",
        "ISIC_0000001_boundary.geojson",
        "ISIC_0000001_measurements.csv",
    ]
    assert all(is_output_name(paths[kind].name) for kind in ("mask", "overlay"))
