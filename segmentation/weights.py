"""The LesionLens weights file: safetensors tensors plus JSON metadata that rebuilds the model on its own.

One file holds everything: the network's constructor arguments, the preprocessing, where the training data came
from, the validation metrics, the code version and the SHA-256 of the weight tensors. Safetensors never executes
code when loaded (unlike a pickled ``torch.save``), so a weights file from anywhere is safe to open.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors_to_bytes

from segmentation import __version__
from segmentation.imageio import atomic_write_bytes
from segmentation.network import ARCHITECTURE, DualAttentionUNet, NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.quality import QualityEstimator
from segmentation.weights_checks import (
    MetadataProblem,
    check_forward_pass,
    check_header,
    check_metadata,
    check_tensors,
)

FORMAT = "lesionlens-weights"
FORMAT_VERSION = 1
METADATA_KEY = "lesionlens"


class WeightsError(Exception):
    """A weights file that cannot be used: missing, corrupt, tampered with or for another model."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class ModelInfo:
    """What a weights file says about its model. ``name`` is what the GUI and exports show."""

    name: str
    network: NetworkConfig
    preprocessing: Preprocessing
    training: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    code_version: str = __version__
    created: str = ""
    sha256: str = ""
    quality: QualityEstimator | None = None  # optional: the estimated-Dice model fitted for these weights

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "architecture": ARCHITECTURE,
            "name": self.name,
            "network": self.network.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "training": self.training,
            "validation": self.validation,
            "code_version": self.code_version,
            "created": self.created,
            "sha256": self.sha256,
            **({"quality": self.quality.to_dict()} if self.quality is not None else {}),
        }


def tensors_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes in name order: identifies the weights themselves."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(
    path: str | os.PathLike,
    model: DualAttentionUNet,
    *,
    name: str,
    preprocessing: Preprocessing,
    training: dict | None = None,
    validation: dict | None = None,
    half_precision: bool = False,
    quality: QualityEstimator | None = None,
) -> ModelInfo:
    """Write ``model`` and its metadata atomically; returns the metadata as written."""
    dtype = torch.float16 if half_precision else torch.float32
    state = {
        key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
        for key, value in model.state_dict().items()
    }
    info = ModelInfo(
        name=name,
        network=model.config,
        preprocessing=preprocessing,
        training=training or {},
        validation=validation or {},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        sha256=tensors_sha256(state),
        quality=quality,
    )
    payload = save_tensors_to_bytes(state, metadata={METADATA_KEY: json.dumps(info.to_dict())})
    atomic_write_bytes(Path(path), payload)
    return info


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Read and check only the metadata (cheap: the header, not the tensors).

    Every field is checked for its type and range before anything is built from it (see
    :mod:`segmentation.weights_checks`); a problem is a WeightsError naming the file.
    """
    path = Path(path)
    metadata = _open(path, lambda handle: handle.metadata())
    try:
        raw = json.loads((metadata or {})[METADATA_KEY])
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError) as error:
        raise WeightsError(path, "not a LesionLens weights file (no LesionLens metadata)") from error
    try:
        check_header(raw, FORMAT, FORMAT_VERSION, ARCHITECTURE)
        return ModelInfo(**check_metadata(raw))
    except MetadataProblem as error:
        raise WeightsError(path, str(error)) from error
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(path, f"metadata is incomplete or invalid ({error})") from error


def rewrite_metadata(path: str | os.PathLike, info: ModelInfo) -> None:
    """Write ``info`` as the metadata of the weights file at ``path``, its tensors unchanged (atomically).

    The tensors' SHA-256 stays the same; the whole file's SHA-256 changes (a bundled file's pin must follow).
    """
    path = Path(path)
    current = read_model_info(path)
    if info.sha256 != current.sha256:
        raise WeightsError(path, "new metadata names other tensors than the file holds")

    def read_all(handle) -> dict[str, torch.Tensor]:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has no iterator

    state = _open(path, read_all)
    if tensors_sha256(state) != current.sha256:
        raise WeightsError(path, "weights do not match their recorded SHA-256 (file altered or corrupt)")
    payload = save_tensors_to_bytes(state, metadata={METADATA_KEY: json.dumps(info.to_dict())})
    atomic_write_bytes(path, payload)


def load_weights(path: str | os.PathLike, *, expected_sha256: str | None = None) -> tuple[DualAttentionUNet, ModelInfo]:
    """Rebuild the model from a weights file, verifying the tensors against their recorded hash.

    ``expected_sha256`` is a pin of the whole file's SHA-256 (tensors *and* metadata, so a changed preprocessing
    or architecture entry is caught too), as the app pins its bundled model. The metadata is checked before the
    network is built; the tensors must be finite floats where the network has floats; and one forward pass on a
    fixed test image must give finite logits. The returned model is in eval mode, float32, on the CPU.
    """
    path = Path(path)
    if expected_sha256 is not None and _pinned_file_differs(path, expected_sha256):
        raise WeightsError(
            path,
            f"weights SHA-256 {file_sha256(path)[:12]}… does not match the pinned SHA-256 {expected_sha256[:12]}… "
            "(file altered or replaced)",
        )
    info = read_model_info(path)

    def read_all(handle) -> dict[str, torch.Tensor]:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has no iterator

    state = _open(path, read_all)
    actual = tensors_sha256(state)
    if actual != info.sha256:
        raise WeightsError(path, "weights do not match their recorded SHA-256 (file altered or corrupt)")
    model = build_model(info.network)
    try:
        check_tensors(state, model.state_dict())
    except MetadataProblem as error:
        raise WeightsError(path, str(error)) from error
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(
            path, f"tensors do not fit the {info.network.variant} network they claim ({error})"
        ) from error
    model.eval()
    try:
        check_forward_pass(model, info.preprocessing, info.quality)
    except MetadataProblem as error:
        raise WeightsError(path, str(error)) from error
    return model, info


def _pinned_file_differs(path: Path, expected_sha256: str) -> bool:
    try:
        return file_sha256(path) != expected_sha256
    except OSError:
        return False  # missing or unreadable: _open gives the precise reason


def _open(path: Path, read):
    if not path.exists():
        raise WeightsError(path, "weights file not found")
    if path.is_dir():
        raise WeightsError(path, "is a folder, not a weights file")
    if path.stat().st_size == 0:
        raise WeightsError(path, "weights file is empty")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return read(handle)
    except PermissionError as error:
        raise WeightsError(path, "permission denied") from error
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as error:
        raise WeightsError(path, f"truncated or not a safetensors file ({error})") from error
