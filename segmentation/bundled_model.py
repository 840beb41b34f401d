"""The SHA-256 the bundled model must have, so a bundled weights file that was altered is refused.

The pin is a sidecar file beside the bundled weights, ``resources/models/lesionlens.safetensors.sha256``, in the
format ``sha256sum`` prints and checks (``sha256sum -c lesionlens.safetensors.sha256`` in that folder). It is the
SHA-256 of the whole file (tensors and metadata; what ``load_weights(..., expected_sha256=...)`` checks), so neither
the weights nor the preprocessing and quality estimate beside them can be changed unnoticed. The regenerate-all
command (``scripts/publish_model.py``) writes it; no sidecar means no model is bundled yet. The pin applies to the
bundled file itself however it is reached; a file the user chose (``--weights``, File > Choose weights,
``$LESIONLENS_WEIGHTS`` naming another file) is checked against the hash recorded in it only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from segmentation.imageio import atomic_write_bytes
from segmentation.resources import bundled_weights_path
from segmentation.weights import file_sha256

PIN_SUFFIX = ".sha256"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def pin_path(weights: str | os.PathLike | None = None) -> Path:
    """The sidecar holding the pin of ``weights`` (default: the bundled model)."""
    weights = Path(weights) if weights is not None else bundled_weights_path()
    return weights.with_name(weights.name + PIN_SUFFIX)


def bundled_sha256(weights: str | os.PathLike | None = None) -> str | None:
    """The pinned SHA-256 of ``weights`` (default: the bundled model); None when no sidecar is there.

    A sidecar that does not hold a SHA-256 pins its first word anyway: no file matches it, so the model is refused
    with the mismatch named, never loaded unchecked.
    """
    try:
        text = pin_path(weights).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    words = text.split()
    pin = words[0].lower() if words else "(empty pin file)"
    return pin if _HEX64.fullmatch(pin) else f"{pin[:80]} (not a SHA-256: {pin_path(weights)})"


def write_pin(weights: str | os.PathLike) -> str:
    """Pin ``weights`` as it is now: write its sidecar in ``sha256sum`` format and return the hash."""
    weights = Path(weights)
    sha256 = file_sha256(weights)
    atomic_write_bytes(pin_path(weights), f"{sha256}  {weights.name}\n".encode())
    return sha256


def pinned_sha256(weights: str | os.PathLike) -> str | None:
    """The SHA-256 ``weights`` must have: the pin when it is the bundled file, else None (no pin)."""
    try:
        bundled = Path(weights).resolve() == bundled_weights_path().resolve()
    except (OSError, RuntimeError):  # a symlink loop: not the bundled file, and loading it fails with a reason
        return None
    return bundled_sha256() if bundled else None
