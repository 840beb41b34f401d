"""The two networks every benchmark compares: the bundled model and the plain U-Net of equal width (baseline).

The baseline is untrained (random weights): its timings are what matter, and a convolution costs the same whatever
its weights. It gets the bundled model's preprocessing, so both run on the same input size.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from segmentation.network import build_model, count_macs, count_parameters
from segmentation.resources import bundled_weights_path
from segmentation.weights import read_model_info, save_weights

BASELINE_NAME = "baseline-unet-untrained"


def benchmark_weights(folder: Path) -> dict[str, Path]:
    """{"full": the bundled weights, "unet": a plain U-Net weights file of the same width, written to ``folder``}."""
    bundled = bundled_weights_path()
    if not bundled.exists():
        raise SystemExit(f"no bundled model at {bundled}: benchmarks time the model the app ships")
    info = read_model_info(bundled)
    torch.manual_seed(0)
    baseline = build_model(replace(info.network, variant="unet"))
    path = folder / f"{BASELINE_NAME}.safetensors"
    save_weights(path, baseline, name=BASELINE_NAME, preprocessing=info.preprocessing)
    return {"full": bundled, "unet": path}


def describe(weights: Path) -> dict:
    info = read_model_info(weights)
    model = build_model(info.network)
    height, width = info.preprocessing.input_size
    return {
        "name": info.name,
        "variant": info.network.variant,
        "base_width": info.network.base_width,
        "input": [height, width],
        "parameters": count_parameters(model),
        "gmacs": round(count_macs(model, height, width) / 1e9, 3),
    }
