"""One helper that seeds everything (MONAI's ``set_determinism``)."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and torch; on the CPU the same seed and data then give the same losses."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
