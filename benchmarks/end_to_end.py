"""Whole-image cost: one image at a time through every stage (latency), and folders through the batch engine
(throughput), at 256x192, 768x576 and the real 3.5-12 megapixel photos.

The stages are the ones ``lesionlens segment`` runs for each image: decode, resize and normalise, network, sigmoid
and upsample to the image's size, confidence flags, measurements, write the mask.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.common import FULLRES_IMAGES, TRAINING_IMAGES, VALIDATION_IMAGES, peak_rss_mb, real_images
from segmentation.batch import BatchItem, BatchSegmenter
from segmentation.imageio import read_image, read_image_size, write_image, write_mask
from segmentation.inference import Predictor, upsample_probability
from segmentation.lesion import LesionSegmentation
from segmentation.measurements import measure_lesion
from segmentation.naming import mask_name
from segmentation.preprocessing import prepare_input

STAGES = ("decode", "preprocess", "network", "upsample", "flags", "measure", "write")
BATCH_COUNTS = (25, 50, 100, 200)


def image_sets(folder: Path, *, quick: bool = False) -> dict[str, list[Path]]:
    """The three sizes. 768x576 copies are made from the real full-resolution photos (area downsampling)."""
    photos = real_images(FULLRES_IMAGES, 2 if quick else None)
    medium = folder / "768x576"
    medium.mkdir(parents=True, exist_ok=True)
    copies = []
    for photo in photos:
        target = medium / f"{photo.stem}.jpg"
        write_image(target, cv2.resize(read_image(photo), (768, 576), interpolation=cv2.INTER_AREA), quality=95)
        copies.append(target)
    return {
        "256x192": real_images(VALIDATION_IMAGES, 5 if quick else 20),
        "768x576": copies,
        "full resolution": photos,
    }


def one_image(predictor: Predictor, path: Path, out: Path) -> dict[str, float]:
    """Seconds per stage for one image, run one after another as a single image would be."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    image = read_image(path)
    lap("decode")
    batch = prepare_input(image, predictor.info.preprocessing)[None]
    lap("preprocess")
    logits = predictor.backend.logits(batch)
    lap("network")
    small = torch.sigmoid(torch.from_numpy(logits))[0, 0].numpy()
    probability = upsample_probability(small, image.shape[:2])
    lap("upsample")
    segmentation = LesionSegmentation(
        probability=probability, model_probability=small, quality_model=predictor.info.quality
    )
    segmentation.quality()
    lap("flags")
    measure_lesion(segmentation.mask, image)
    lap("measure")
    write_mask(out / mask_name(path.stem), segmentation.mask)
    lap("write")
    return seconds


def latency(predictor: Predictor, paths: list[Path], out: Path) -> dict:
    one_image(predictor, paths[0], out)  # warm-up: first-call allocations, lazy imports
    runs = [one_image(predictor, p, out) for p in paths]
    stages = {s: round(1000 * float(np.median([r[s] for r in runs])), 2) for s in STAGES}
    totals = [1000 * sum(r.values()) for r in runs]
    sizes = [read_image_size(p) for p in paths]
    return {
        "images": len(paths),
        "megapixels": [round(min(w * h for w, h in sizes) / 1e6, 2), round(max(w * h for w, h in sizes) / 1e6, 2)],
        "median_ms": round(float(np.median(totals)), 1),
        "max_ms": round(float(np.max(totals)), 1),
        "stages_median_ms": stages,
    }


def throughput(predictor: Predictor, paths: list[Path], out: Path) -> dict:
    """Images per second through the batch engine (three-stage pipeline), masks and measurements included."""
    items = [BatchItem(p, Path(p.name)) for p in paths]
    segmenter = BatchSegmenter(predictor, out)
    started = time.perf_counter()
    results = list(segmenter.run(items))
    seconds = time.perf_counter() - started
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"batch benchmark: {len(failed)} images failed, first: {failed[0]}")
    return {"images": len(items), "seconds": round(seconds, 2), "images_per_second": round(len(items) / seconds, 2)}


def batch_folder_256(count: int) -> list[Path]:
    """Real 256x192 ISIC files: all 150 validation images, then training images to make up ``count``."""
    validation = real_images(VALIDATION_IMAGES)
    return (validation + real_images(TRAINING_IMAGES, max(0, count - len(validation))))[:count]


def batch_folder_768(folder: Path, count: int) -> list[Path]:
    """``count`` 768x576 JPEGs (real ISIC images upsampled: the decode and write cost of a clinic-sized copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in batch_folder_256(count):
        target = folder / source.name
        if not target.exists():
            image = cv2.resize(read_image(source), (768, 576), interpolation=cv2.INTER_CUBIC)
            write_image(target, image, quality=92)
        paths.append(target)
    return paths


def run(weights: dict[str, Path], part: str, *, quick: bool = False) -> dict:
    """One part: ``latency`` (stages of one image at a time), ``throughput`` (folders through the batch engine) or
    ``peak_memory_mb`` (``lesionlens segment`` in a child process)."""
    with tempfile.TemporaryDirectory(prefix="lesionlens-bench-") as tmp:
        root = Path(tmp)
        counts = (5, 10) if quick else BATCH_COUNTS
        if part == "latency":
            sets = image_sets(root / "sets", quick=quick)
            results: dict = {}
            for variant, path in weights.items():
                predictor = Predictor(path, "cpu")
                results[variant] = {
                    name: latency(predictor, paths, _fresh(root / f"lat-{variant}-{i}"))
                    for i, (name, paths) in enumerate(sets.items())
                }
                results[variant]["backend"] = predictor.backend.name
            return results
        if part == "throughput":
            results = {}
            for variant, path in weights.items():
                predictor = Predictor(path, "cpu")
                scaling = counts if variant == "full" else counts[-1:]
                results[variant] = {
                    "256x192": {
                        str(n): throughput(predictor, batch_folder_256(n), _fresh(root / f"tp-{variant}-{n}"))
                        for n in scaling
                    },
                    "768x576": {
                        str(counts[-1]): throughput(
                            predictor, batch_folder_768(root / "b768", counts[-1]), _fresh(root / f"tp768-{variant}")
                        )
                    },
                }
            return results
        if part == "peak_memory_mb":
            photos = real_images(FULLRES_IMAGES, 2 if quick else None)
            largest = max(photos, key=lambda p: np.prod(read_image_size(p)))
            width, height = read_image_size(largest)
            cli = ["segment", "--weights", str(weights["full"])]
            rss, seconds = peak_rss_mb([*cli, str(largest), "--out", str(_fresh(root / "mem-one"))])
            many = batch_folder_256(counts[-1])
            rss_many, seconds_many = peak_rss_mb([*cli, *map(str, many), "--out", str(_fresh(root / "mem-batch"))])
            return {
                "cli_largest_photo": {
                    "image": largest.name,
                    "megapixels": round(width * height / 1e6, 2),
                    "mb": round(rss),
                    "seconds": round(seconds, 1),
                },
                f"cli_batch_{len(many)}": {"mb": round(rss_many), "seconds": round(seconds_many, 1)},
            }
    raise ValueError(part)


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
