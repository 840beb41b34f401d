"""The SHA-256 the bundled model must have, so a bundled weights file that was altered is refused.

``BUNDLED_WEIGHTS_SHA256`` is the SHA-256 of the whole bundled file (tensors and metadata; what
``load_weights(..., expected_sha256=...)`` checks), so neither the weights nor the preprocessing beside them can be
changed unnoticed. ``python -m trainer bundle`` writes it when it bundles a model;
None means no model is bundled yet. The pin applies to the bundled file itself (``resources/models/
lesionlens.safetensors``) however it is reached; a file the user chose (``--weights``, File > Choose weights,
``$LESIONLENS_WEIGHTS`` naming another file) is checked against the hash recorded in it only.
"""

from __future__ import annotations

import os
from pathlib import Path

from segmentation.resources import bundled_weights_path

BUNDLED_WEIGHTS_SHA256: str | None = "527c60f896d27c16d5c372ca3f2132b2cdcb3752267e5641d1adcf7e8a7f9d0a"


def pinned_sha256(weights: str | os.PathLike) -> str | None:
    """The SHA-256 ``weights`` must have: the pin when it is the bundled file, else None (no pin)."""
    pin = BUNDLED_WEIGHTS_SHA256
    if pin is None:
        return None
    try:
        bundled = Path(weights).resolve() == bundled_weights_path().resolve()
    except (OSError, RuntimeError):  # a symlink loop: not the bundled file, and loading it fails with a reason
        return None
    return pin if bundled else None
