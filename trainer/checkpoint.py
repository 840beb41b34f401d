"""Checkpoints that carry everything needed to resume, written atomically (timm's checkpoint saver)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def save(path: str | os.PathLike, state: dict) -> None:
    """Write to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, no code runs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }


def restore_rng(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
