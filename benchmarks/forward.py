"""Forward pass of the network alone at its input size, batch 1 and 8, for every CPU path we could run.

Paths: PyTorch fp32 (contiguous, the reference), PyTorch channels-last, PyTorch with bf16 autocast, ONNX Runtime.
bf16 is timed where the CPU computes it natively; elsewhere PyTorch emulates it and one batch-1 run shows how slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.common import native_bf16, time_calls
from segmentation.backends import OnnxRuntimeBackend, TorchBackend, onnxruntime_installed
from segmentation.weights import load_weights

BATCHES = (1, 8)


class Bf16Backend:
    """PyTorch under bf16 autocast (channels-last), the path the issue asks to compare."""

    name = "PyTorch bf16 autocast"

    def __init__(self, model: torch.nn.Module) -> None:
        self.inner = TorchBackend(model, torch.device("cpu"), channels_last=True)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.logits(batch)


def cpu_paths(weights: Path) -> dict[str, object]:
    """Each path as a backend object over its own copy of the model (channels-last converts the model in place)."""
    paths: dict[str, object] = {
        "torch_fp32": TorchBackend(load_weights(weights)[0], torch.device("cpu"), channels_last=False),
        "torch_channels_last": TorchBackend(load_weights(weights)[0], torch.device("cpu"), channels_last=True),
        "torch_bf16": Bf16Backend(load_weights(weights)[0]),
    }
    if onnxruntime_installed():
        model, info = load_weights(weights)
        paths["onnxruntime"] = OnnxRuntimeBackend(model, info.preprocessing.input_size)
    return paths


def run(weights: Path, gmacs: float, input_size: tuple[int, int], *, quick: bool = False) -> dict:
    results: dict[str, dict] = {}
    native = native_bf16()
    for name, backend in cpu_paths(weights).items():
        results[name] = {}
        for batch_size in BATCHES:
            batch = np.random.default_rng(batch_size).standard_normal((batch_size, 3, *input_size)).astype(np.float32)
            if name == "torch_bf16" and not native:
                if batch_size > 1:
                    results[name][f"batch{batch_size}"] = {"skipped": "no native bf16 on this CPU (emulated)"}
                    continue
                timing = time_calls(lambda b=backend, x=batch: b.logits(x), runs=1, warmup=1)
            else:
                runs = (3 if quick else 5) if batch_size > 1 else (5 if quick else 20)
                timing = time_calls(lambda b=backend, x=batch: b.logits(x), runs=runs)
            per_image = timing.median_ms / batch_size
            results[name][f"batch{batch_size}"] = {
                **timing.to_dict(),
                "ms_per_image": round(per_image, 2),
                "gflops": round(2 * gmacs / (per_image / 1000), 1),
            }
    return results
