"""Augmentation: every geometric operation moves the mask with its image; photometric ones leave the mask alone;
``--preset paper`` is exactly the paper's recipe; the sources are mixed by their shares."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.config import preset
from trainer.data import Augmentation, SegmentationDataset, photometric, source_counts

HEIGHT, WIDTH = 128, 160
ONLY = dict.fromkeys(
    ("flip_probability", "sharpen_probability", "rotate_probability", "scale_probability", "photometric_probability"),
    0.0,
)


def lesion(cy: float = 50.0, cx: float = 105.0, radius: float = 26.0) -> tuple[np.ndarray, np.ndarray]:
    """An off-centre dark disc on even skin, and its mask: the image says where the lesion is, pixel for pixel."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(np.uint8)
    image = np.full((HEIGHT, WIDTH, 3), (225, 185, 160), np.uint8)
    image[mask == 1] = (90, 55, 40)
    return image, mask


def lesion_seen_in(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.int16).sum(axis=2) < (225 + 185 + 160 + 90 + 55 + 40) / 2).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def apply(operation: str, seed: int, **ranges) -> tuple[np.ndarray, np.ndarray]:
    augmentation = Augmentation(**{**ONLY, operation: 1.0, **ranges})
    image, mask = lesion()
    return augmentation(image, mask, np.random.default_rng(seed))


def test_flips_move_the_mask_exactly_with_the_image() -> None:
    image, mask = apply("flip_probability", seed=0)
    assert not np.array_equal(mask, lesion()[1])  # it did flip
    np.testing.assert_array_equal(mask, lesion_seen_in(image))
    np.testing.assert_array_equal(mask, lesion()[1][::-1, ::-1])  # both flips at probability 1


@pytest.mark.parametrize("seed", range(6))
def test_rotation_moves_the_mask_with_the_image(seed: int) -> None:
    image, mask = apply("rotate_probability", seed=seed)
    assert iou(mask, lesion()[1]) < 0.9  # the off-centre disc moved
    assert iou(mask, lesion_seen_in(image)) >= 0.98


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scale", [(0.6, 0.8), (1.2, 1.5)], ids=["zoom-out", "zoom-in"])
def test_scale_and_crop_moves_the_mask_with_the_image(seed: int, scale: tuple[float, float]) -> None:
    image, mask = apply("scale_probability", seed=seed, scale_min=scale[0], scale_max=scale[1])
    assert mask.shape == (HEIGHT, WIDTH) and image.shape == (HEIGHT, WIDTH, 3)
    assert iou(mask, lesion_seen_in(image)) >= 0.98
    area_ratio = mask.sum() / lesion()[1].sum()
    if mask.sum() and not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()):
        assert scale[0] ** 2 * 0.9 <= area_ratio <= scale[1] ** 2 * 1.1  # the lesion was scaled, not only moved


def test_zooming_out_fills_the_margin_by_reflection_not_black() -> None:
    image, _ = apply("scale_probability", seed=1, scale_min=0.6, scale_max=0.6)
    assert image.min() > 30  # no black border teaching a false edge


def test_photometric_changes_the_image_only() -> None:
    image, mask = lesion()
    out_image, out_mask = Augmentation(**{**ONLY, "photometric_probability": 1.0})(
        image, mask, np.random.default_rng(3)
    )
    np.testing.assert_array_equal(out_mask, mask)
    assert not np.array_equal(out_image, image)
    unchanged = photometric(image, brightness=1.0, contrast=1.0, saturation=1.0, hue_degrees=0.0, gamma=1.0)
    np.testing.assert_array_equal(unchanged, image)
    darker = photometric(image, brightness=0.7, contrast=1.0, saturation=1.0, hue_degrees=0.0, gamma=1.0)
    assert darker.mean() < image.mean() * 0.75


def test_paper_preset_is_exactly_the_papers_augmentation() -> None:
    assert Augmentation.from_config(preset("paper")) == Augmentation(
        flip_probability=0.5,
        sharpen_probability=0.5,
        rotate_probability=0.5,
        max_rotation_degrees=90.0,
        scale_probability=0.0,
        photometric_probability=0.0,
    )
    cpu = Augmentation.from_config(preset("cpu"))
    assert cpu.scale_probability > 0 and cpu.photometric_probability > 0


def test_source_counts_follow_the_shares() -> None:
    assert source_counts([2000, 9000], [0.0, 0.0], 11000) == [2000, 9000]  # by count
    assert source_counts([2000, 9000], [0.0, 0.5], 1000) == [500, 500]
    assert source_counts([2000, 9000, 100], [0.0, 0.3, 0.0], 1000) == [667, 300, 33]
    with pytest.raises(ValueError, match="shares"):
        source_counts([10, 10], [0.7, 0.6], 100)


class _Split:
    """Stands in for a CachedSplit: ``value`` fills every image, so an item tells which source it came from."""

    def __init__(self, count: int, value: int) -> None:
        from segmentation.preprocessing import Preprocessing

        self.images = np.full((count, 8, 8, 3), value, np.uint8)
        self.masks = np.zeros((count, 8, 8), np.uint8)
        self.preprocessing = Preprocessing(input_size=(8, 8))

    def __len__(self) -> int:
        return len(self.images)


def test_an_epoch_draws_each_source_by_its_share_and_replays_on_resume() -> None:
    splits = [_Split(20, 10), _Split(90, 200)]
    dataset = SegmentationDataset(
        splits, augmentation=Augmentation(**ONLY), shares=[0.0, 0.25], epoch_length=400, seed=5
    )
    dataset.set_epoch(3)
    sources = [int(dataset[i][0].mean() > 0) for i in range(len(dataset))]
    assert len(sources) == 400 and sum(sources) == 100  # a quarter from the second source
    small = [int(local) for source, local in dataset.schedule if source == 0]
    assert sorted(set(small)) == list(range(20))  # whole shuffled passes over the small source
    replay = SegmentationDataset(
        splits, augmentation=Augmentation(**ONLY), shares=[0.0, 0.25], epoch_length=400, seed=5
    )
    replay.set_epoch(3)
    np.testing.assert_array_equal(replay.schedule, dataset.schedule)
