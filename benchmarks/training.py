"""Training throughput of the CPU preset (images per second), for the full network and the plain U-Net.

The real training loop (cached tensors, augmentation in a loader worker, Dice + focal loss, Adam), timed over a
few optimiser steps after warm-up; validation and checkpoints are left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ISIC, REPO
from trainer.config import TrainConfig, preset
from trainer.data import isic_split_folders
from trainer.engine import Trainer


def run(*, steps: int = 6, warmup: int = 2) -> dict:
    """In a fresh child process: the loader forks worker processes, and a fork of a process whose thread pools
    (OpenMP, ONNX Runtime, the batch engine's threads) have run can deadlock in the child."""
    command = [sys.executable, "-m", "benchmarks.training", str(steps), str(warmup)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"training benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def isic_config(overrides: dict) -> TrainConfig:
    """The cpu preset with ``overrides``, on the shared ISIC 2017 training and validation folders."""
    train_images, train_masks = isic_split_folders(ISIC, "Training")
    val_images, val_masks = isic_split_folders(ISIC, "Validation")
    folders = {"train_images": train_images, "train_masks": train_masks, "val_images": val_images}
    return preset("cpu").override({**{k: str(v) for k, v in folders.items()}, "val_masks": str(val_masks), **overrides})


def seconds_for_steps(config: TrainConfig, *, steps: int, warmup: int) -> tuple[float, Trainer]:
    """Wall seconds of ``steps`` optimiser steps of the real loop after ``warmup`` steps, and the trainer used."""
    with tempfile.TemporaryDirectory(prefix="lesionlens-train-bench-") as run_dir:
        trainer = Trainer(config, Path(run_dir), device="cpu", quiet=True)
        batches = iter(trainer._loader(0))
        trainer.network.train()
        for _ in range(warmup):
            trainer.train_step(*next(batches))
        started = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(*next(batches))
        return time.perf_counter() - started, trainer


def measure(*, variants: tuple[str, ...] = ("full", "unet"), steps: int = 6, warmup: int = 2) -> dict:
    results = {}
    for variant in variants:
        config = isic_config({"variant": variant})
        seconds, _ = seconds_for_steps(config, steps=steps, warmup=warmup)
        images = steps * config.batch_size
        results[variant] = {
            "input": [config.input_height, config.input_width],
            "batch_size": config.batch_size,
            "precision": config.precision,
            "steps": steps,
            "images_per_second": round(images / seconds, 2),
        }
    return results


if __name__ == "__main__":
    print(json.dumps(measure(steps=int(sys.argv[1]), warmup=int(sys.argv[2]))))
