"""Do the faster paths give the reference masks? Dice between each path's masks and PyTorch fp32's.

The issue's bar: a path is kept only if the Dice stays above 0.995 over the validation images. Emulated bf16 takes
seconds per image, so where the CPU lacks native bf16 it is checked on a few images only (and it is not kept
anyway: it is slower).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import VALIDATION_IMAGES, native_bf16, real_images
from benchmarks.forward import cpu_paths
from segmentation.imageio import read_image
from segmentation.inference import Predictor
from segmentation.metrics import ConfusionCounts, dice

BAR = 0.995
EMULATED_BF16_IMAGES = 5


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 if not a.any() and not b.any() else dice(ConfusionCounts.from_masks(a, b))


def run(weights: Path, *, quick: bool = False) -> dict:
    images = real_images(VALIDATION_IMAGES, 10 if quick else None)
    predictor = Predictor(weights, "cpu", backend="torch")
    paths = cpu_paths(weights)
    reference_backend = paths.pop("torch_fp32")
    predictor.backend = reference_backend
    decoded = [read_image(p) for p in images]
    reference = [predictor.predict(image).mask for image in decoded]
    results = {}
    for name, backend in paths.items():
        count = len(decoded) if name != "torch_bf16" or native_bf16() else EMULATED_BF16_IMAGES
        predictor.backend = backend
        values = [
            _dice(predictor.predict(image).mask, truth)
            for image, truth in zip(decoded[:count], reference[:count], strict=True)
        ]
        results[name] = {
            "images": count,
            "mean_dice": round(float(np.mean(values)), 6),
            "min_dice": round(float(np.min(values)), 6),
            "passes": bool(np.min(values) > BAR),
        }
    return results
