"""Checkpoints that carry everything needed to resume, written atomically (timm's checkpoint saver).

A run folder's checkpoints stay consistent after a kill at any point: each file is written to a temporary name,
synced and renamed (a reader sees the old file or the complete new one), and the engine writes ``best.pt`` *before*
``last.pt`` in an improving epoch, so a ``last.pt`` that records a best Dice always has a ``best.pt`` at least that
good beside it. A checkpoint that cannot be read (truncated, not a checkpoint, incomplete) is a
:class:`CheckpointError` naming the file, never a traceback from the unpickler.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

#: What every checkpoint of this trainer holds (see ``Trainer.state_dict``).
REQUIRED_KEYS = ("model", "epoch", "step", "elapsed", "best_dice", "config")


class CheckpointError(Exception):
    """A checkpoint that is missing, truncated or not one of ours; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def save(path: str | os.PathLike, state: dict) -> None:
    """Write to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):  # persist the rename too, before the next checkpoint is written
        with contextlib.suppress(OSError):
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)


def load(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, no code runs.

    Raises :class:`CheckpointError` (naming the file) when it is missing, unreadable, truncated or incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no checkpoint there (no such file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as error:
        raise CheckpointError(path, "permission denied") from error
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointError(path, f"truncated or not a LesionLens checkpoint ({_first_line(error)})") from error
    if not isinstance(state, dict):
        raise CheckpointError(path, "not a LesionLens checkpoint (no dictionary of training state)")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(path, f"incomplete checkpoint (no {', '.join(missing)})")
    return state


def recorded_best_dice(path: str | os.PathLike) -> float | None:
    """The best Dice a checkpoint records, or None when there is no readable checkpoint at ``path``."""
    try:
        return float(load(path)["best_dice"])
    except (CheckpointError, TypeError, ValueError):
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


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
