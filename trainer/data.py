"""Training data: ISIC-layout discovery, a decode-once memory-mapped cache, and the paper's augmentation."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import torch
from filelock import FileLock
from torch.utils.data import Dataset

from segmentation.imageio import atomic_write_bytes, read_image, read_mask
from segmentation.naming import mask_name
from segmentation.preprocessing import Preprocessing, normalise, resize_for_model
from segmentation.private_files import PRIVATE_FILE_MODE, private_folder

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 2


class DatasetError(Exception):
    """A training or validation folder that cannot be used; the message names the file or folder."""


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path

    @property
    def image_id(self) -> str:
        return self.image.stem


def isic_split_folders(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """The image and mask folders of one split ("Training", "Validation", "Test") of an official ISIC release.

    Works for the 2016 (``ISBI2016_ISIC_Part1_Training_Data`` / ``..._GroundTruth``), 2017
    (``ISIC-2017_Training_Data`` / ``ISIC-2017_Training_Part1_GroundTruth``) and 2018
    (``ISIC2018_Task1-2_Training_Input`` / ``ISIC2018_Task1_Training_GroundTruth``) names.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and split.lower() in p.name.lower())
    images = [p for p in folders if p.name.endswith(("_Data", "_Input"))]
    masks = [
        p
        for p in folders
        if "GroundTruth" in p.name
        and "Part2" not in p.name
        and "Part3" not in p.name
        and "Task2" not in p.name
        and "Task3" not in p.name
    ]
    if len(images) == 1 and len(masks) == 1:
        return images[0], masks[0]
    raise DatasetError(
        f"{root}: cannot tell which folders hold the {split} images and masks (found "
        f"{', '.join(p.name for p in folders) or 'none'}); pass the image and mask folders explicitly"
    )


def find_samples(images_dir: str | os.PathLike, masks_dir: str | os.PathLike) -> list[Sample]:
    """Pair ``ISIC_<id>.jpg`` with ``ISIC_<id>_segmentation.png``; an image without its mask is an error."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder not found")
    images = sorted(
        p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_superpixels")
    )
    if not images:
        raise DatasetError(f"{images_dir}: no images (.jpg/.png) found")
    # ISIC 2016 spells the suffix "_Segmentation.png": match it case-insensitively (segmentation.naming).
    masks = {p.name.lower(): p for p in masks_dir.iterdir()}
    samples, missing = [], []
    for image in images:
        expected = mask_name(image.stem)
        mask = masks.get(expected.lower(), masks_dir / expected)
        (samples if mask.is_file() else missing).append(Sample(image, mask))
    if missing:
        names = ", ".join(s.mask.name for s in missing[:3])
        raise DatasetError(f"{masks_dir}: {len(missing)} masks missing (e.g. {names})")
    return samples


class CachedSplit:
    """Images and masks resized for the model once, stored as memory-mapped ``.npy`` files.

    The cache key covers the file list, sizes and modification times and the preprocessing, so a changed data set
    or input size builds a new cache instead of silently reusing a stale one.
    """

    def __init__(self, samples: list[Sample], preprocessing: Preprocessing, cache_dir: str | os.PathLike) -> None:
        if not samples:
            raise DatasetError("no samples to cache")
        self.samples = samples
        self.preprocessing = preprocessing
        key = self._key(samples, preprocessing)
        self.folder = Path(cache_dir) / key
        if not (self.folder / "done.json").exists():
            private_folder(cache_dir)
            # Two runs started together (the comparison arms) need the same cache: one builds, the other waits.
            with FileLock(Path(cache_dir) / f".{key}.lock", mode=PRIVATE_FILE_MODE):
                if not (self.folder / "done.json").exists():
                    self._build()
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.masks = np.load(self.folder / "masks.npy", mmap_mode="r")

    @staticmethod
    def _key(samples: list[Sample], preprocessing: Preprocessing) -> str:
        digest = hashlib.sha256(f"v{CACHE_VERSION}|{json.dumps(preprocessing.to_dict(), sort_keys=True)}".encode())
        for sample in samples:
            for path in (sample.image, sample.mask):
                try:
                    stat = path.stat()
                except OSError as error:  # a broken or looping link: named like read_image would name it
                    reason = "no such file" if isinstance(error, FileNotFoundError) else "cannot open file"
                    raise DatasetError(f"{path}: {reason} ({error.strerror or error})") from error
                digest.update(f"{path.name}|{stat.st_size}|{int(stat.st_mtime)}".encode())
        height, width = preprocessing.input_size
        return f"{len(samples)}x{height}x{width}-{digest.hexdigest()[:16]}"

    def _build(self) -> None:
        private_folder(self.folder)  # decoded patient images: 0700 folders, 0600 files
        height, width = self.preprocessing.input_size
        count = len(self.samples)
        tmp_images, tmp_masks = self.folder / ".images.npy.tmp", self.folder / ".masks.npy.tmp"
        images = np.lib.format.open_memmap(tmp_images, mode="w+", dtype=np.uint8, shape=(count, height, width, 3))
        masks = np.lib.format.open_memmap(tmp_masks, mode="w+", dtype=np.uint8, shape=(count, height, width))
        for path in (tmp_images, tmp_masks):
            os.chmod(path, PRIVATE_FILE_MODE)
        try:
            for index, sample in enumerate(self.samples):
                image = read_image(sample.image)
                mask = read_mask(sample.mask)
                if mask.shape != image.shape[:2]:
                    raise DatasetError(
                        f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {sample.image.name} "
                        f"is {image.shape[1]}x{image.shape[0]}"
                    )
                images[index] = resize_for_model(image, (height, width), self.preprocessing.interpolation)
                masks[index] = resize_mask(mask, (height, width))
            images.flush()
            masks.flush()
        except BaseException:  # a bad image or mask: no half-built cache is left behind
            del images, masks
            for path in (tmp_images, tmp_masks):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.folder.rmdir()
            raise
        del images, masks
        os.replace(tmp_images, self.folder / "images.npy")
        os.replace(tmp_masks, self.folder / "masks.npy")
        done = json.dumps({"count": count, "version": CACHE_VERSION}).encode()
        atomic_write_bytes(self.folder / "done.json", done, mode=PRIVATE_FILE_MODE)

    def __len__(self) -> int:
        return len(self.samples)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to (height, width): area-average then threshold at one half, as uint8 0/1."""
    height, width = size
    resized = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return (resized >= 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Augmentation:
    """The paper's augmentation (Sec. III-E) plus the operations aimed at the bundled model's failure modes.

    The paper's part: horizontal and vertical flips, rotation in 0-90°, sharpening. The additions, each off at
    probability 0 (so ``--preset paper`` is exactly the paper's): a random scale and crop (zooming in, or out with a
    reflected margin, so that frame-filling lesions are also seen with context and small ones at other scales) and
    photometric changes (brightness, contrast, saturation, hue, gamma) for faint and pink lesions. Geometric
    operations move the mask with the image (nearest-neighbour for the mask); photometric ones touch the image only.
    """

    flip_probability: float = 0.5
    sharpen_probability: float = 0.5
    rotate_probability: float = 0.5
    max_rotation_degrees: float = 90.0
    scale_probability: float = 0.0
    scale_min: float = 0.7  # < 1: zoom out (the lesion smaller, a reflected margin around the photo)
    scale_max: float = 1.4  # > 1: zoom in (a crop of the photo fills the input)
    photometric_probability: float = 0.0
    brightness: float = 0.2  # multiplicative, 1 ± brightness
    contrast: float = 0.25  # blend towards the mean grey, 1 ± contrast
    saturation: float = 0.3  # blend towards grey, 1 ± saturation
    hue_degrees: float = 10.0  # hue rotation, ± degrees
    gamma: float = 0.25  # exponent exp(± gamma)

    @classmethod
    def from_config(cls, config: object) -> Augmentation:
        """The augmentation a training configuration (``trainer.config.TrainConfig``, which imports this module)
        asks for: its fields of the same names (``*_probability`` and the ranges)."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: getattr(config, name) for name in names})

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.scale_probability:
            image, mask = scale_and_crop(image, mask, rng.uniform(self.scale_min, self.scale_max), rng)
        if rng.random() < self.flip_probability:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if rng.random() < self.flip_probability:
            image, mask = image[::-1], mask[::-1]
        if rng.random() < self.rotate_probability:
            image, mask = rotate(image, mask, rng.uniform(0.0, self.max_rotation_degrees))
        if rng.random() < self.photometric_probability:
            image = self.photometric(image, rng)
        if rng.random() < self.sharpen_probability:
            image = sharpen(image, amount=rng.uniform(0.3, 1.0))
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)

    def photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return photometric(
            image,
            brightness=rng.uniform(1 - self.brightness, 1 + self.brightness),
            contrast=rng.uniform(1 - self.contrast, 1 + self.contrast),
            saturation=rng.uniform(1 - self.saturation, 1 + self.saturation),
            hue_degrees=rng.uniform(-self.hue_degrees, self.hue_degrees),
            gamma=float(np.exp(rng.uniform(-self.gamma, self.gamma))),
        )


def scale_and_crop(
    image: np.ndarray, mask: np.ndarray, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scale by ``scale`` about a random offset, output the same size: a crop when zooming in, a reflected margin
    when zooming out. One affine map for image and mask, so they stay registered."""
    height, width = mask.shape
    offsets = []
    for size in (width, height):
        spare = size - scale * size  # < 0 when zooming in: how far the scaled photo overhangs
        offsets.append(rng.uniform(min(0.0, spare), max(0.0, spare)))
    matrix = np.array([[scale, 0.0, offsets[0]], [0.0, scale, offsets[1]]], dtype=np.float64)
    return _warp(image, mask, matrix)


def rotate(image: np.ndarray, mask: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre; corners are filled by reflection so no black wedges teach a false border."""
    height, width = mask.shape
    matrix = cv2.getRotationMatrix2D((width / 2 - 0.5, height / 2 - 0.5), degrees, 1.0)
    return _warp(image, mask, matrix)


def _warp(image: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = mask.shape
    image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    return image, mask


def photometric(
    image: np.ndarray, *, brightness: float, contrast: float, saturation: float, hue_degrees: float, gamma: float
) -> np.ndarray:
    """Colour jitter on a uint8 RGB image (the mask is untouched); factors of 1 and a hue shift of 0 change nothing.

    All in uint8 with lookup tables (hue rotation in OpenCV's 0-179 hue; one table for brightness, contrast about
    the mean grey, and gamma), so it stays cheap in a loader worker.
    """
    if hue_degrees:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        shift = np.round(hue_degrees / 2.0)
        table = ((np.arange(256) + shift) % 180).astype(np.uint8)
        hsv[..., 0] = cv2.LUT(hsv[..., 0], table)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if saturation != 1.0:
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        image = cv2.addWeighted(image, saturation, grey, 1.0 - saturation, 0.0)
    mean = brightness * float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean())
    values = mean + contrast * (brightness * np.arange(256, dtype=np.float64) - mean)
    table = (np.clip(values / 255.0, 0.0, 1.0) ** gamma * 255.0 + 0.5).astype(np.uint8)
    return cv2.LUT(image, table)


def sharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp masking: ``image + amount * (image - blur(image))``."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)


@dataclass(frozen=True)
class Source:
    """One training source: a folder pair and its sampling share (0: in proportion to its image count)."""

    name: str
    images: str
    masks: str
    share: float = 0.0

    def samples(self) -> list[Sample]:
        """Its image/mask pairs, less every image of a committed hold-out split (never trained on)."""
        from trainer.splits import held_out_image_ids

        held_out = held_out_image_ids()
        return [s for s in find_samples(self.images, self.masks) if s.image_id not in held_out]


def source_counts(sizes: list[int], shares: list[float], total: int) -> list[int]:
    """How many of ``total`` draws each source gets: explicit shares first, the rest in proportion to size."""
    if any(share < 0 for share in shares) or sum(shares) > 1.0 + 1e-9:
        raise ValueError(f"sampling shares must be >= 0 and sum to at most 1, got {shares}")
    unshared = [size if share == 0 else 0 for size, share in zip(sizes, shares, strict=True)]
    rest = 1.0 - sum(shares)
    if sum(unshared) == 0 and rest > 1e-9:
        shares = [share / sum(shares) for share in shares]  # explicit shares only: they fill the epoch
        rest = 0.0
    weights = [
        share + (rest * size / sum(unshared) if share == 0 else 0.0) for size, share in zip(sizes, shares, strict=True)
    ]
    counts = [int(total * weight) for weight in weights]
    counts[int(np.argmax(weights))] += total - sum(counts)
    return counts


class SegmentationDataset(Dataset):
    """Yields (normalised image tensor, mask tensor) drawn from one or more :class:`CachedSplit` sources.

    Each epoch is a fixed schedule of draws: each source gets its share of ``epoch_length`` (by default the sum of
    the sources' sizes times ``repeats``; ``repeats`` visits each image that many times, freshly augmented: the
    paper's "four times the samples"), drawn as shuffled passes over the source. The schedule and every item's
    augmentation derive from (seed, epoch, position), so a resumed run replays the same stream.
    """

    def __init__(
        self,
        splits: CachedSplit | list[CachedSplit],
        *,
        augmentation: Augmentation | None = None,
        repeats: int = 1,
        seed: int = 0,
        shares: list[float] | None = None,
        epoch_length: int = 0,
    ) -> None:
        self.splits = splits if isinstance(splits, list) else [splits]
        self.split = self.splits[0]
        self.augmentation = augmentation
        self.repeats = max(1, repeats)
        self.seed = seed
        self.shares = shares or [0.0] * len(self.splits)
        self.epoch_length = epoch_length or sum(len(split) for split in self.splits) * self.repeats
        self.counts = source_counts([len(split) for split in self.splits], self.shares, self.epoch_length)
        self.epoch = 0
        self.schedule = self._schedule()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.schedule = self._schedule()

    def _schedule(self) -> np.ndarray:
        """(source, index) for every draw of this epoch, in a shuffled order; plain order without augmentation."""
        rng = np.random.default_rng((self.seed, self.epoch, 7919))
        rows = []
        for source, (split, count) in enumerate(zip(self.splits, self.counts, strict=True)):
            passes = -(-count // len(split))
            order = np.concatenate([rng.permutation(len(split)) for _ in range(passes)])[:count]
            if self.augmentation is None:
                order = np.arange(count) % len(split)
            rows.append(np.stack([np.full(count, source), order], axis=1))
        schedule = np.concatenate(rows)
        return schedule if self.augmentation is None else schedule[rng.permutation(len(schedule))]

    def __len__(self) -> int:
        return len(self.schedule)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source, local = self.schedule[index]
        split = self.splits[source]
        image, mask = np.asarray(split.images[local]), np.asarray(split.masks[local])
        if self.augmentation is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image, mask = self.augmentation(image, mask, rng)
        tensor = torch.from_numpy(normalise(image, split.preprocessing))
        return tensor, torch.from_numpy(mask.astype(np.float32))[None]


def worker_init(_worker_id: int) -> None:
    """Keep OpenCV from spawning threads inside loader workers: the two cores belong to the model."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


__all__ = [
    "Augmentation",
    "CachedSplit",
    "DatasetError",
    "Sample",
    "SegmentationDataset",
    "Source",
    "find_samples",
]
