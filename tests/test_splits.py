"""The committed HAM10000 hold-out: grouped by lesion, reproducible from its rule, never trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.splits import HAM10000_HOLDOUT, HoldoutSplit, ham10000_holdout, held_out_image_ids, read_lesion_ids

HAM = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "ham10000"
METADATA = HAM / "HAM10000_metadata.csv"


def test_committed_split_is_about_a_tenth_of_the_lesions() -> None:
    split = HoldoutSplit.load(HAM10000_HOLDOUT)
    assert split.dataset == "HAM10000"
    assert len(set(split.lesion_ids)) == len(split.lesion_ids) == 747  # round(0.1 * 7,470 lesions)
    assert 900 <= len(split.image_ids) <= 1100
    assert held_out_image_ids() >= set(split.image_ids)


@pytest.fixture()
def metadata() -> Path:
    if not METADATA.is_file():
        pytest.skip(f"HAM10000 metadata not found at {METADATA} (it lives in ../shared)")
    return METADATA


def test_committed_split_is_what_the_rule_gives(metadata: Path) -> None:
    """Nobody moved an image across after seeing results: the file equals the seeded rule's output."""
    assert ham10000_holdout(metadata) == HoldoutSplit.load(HAM10000_HOLDOUT)


def test_no_lesion_has_images_on_both_sides(metadata: Path) -> None:
    lesion_of = read_lesion_ids(metadata)
    split = HoldoutSplit.load(HAM10000_HOLDOUT)
    held_lesions = set(split.lesion_ids)
    held_images = set(split.image_ids)
    for image, lesion in lesion_of.items():
        assert (image in held_images) == (lesion in held_lesions), image
