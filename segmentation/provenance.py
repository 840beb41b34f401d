"""Provenance of a lesion result: which model made it, where it ran, at what threshold, and what was done to it.

One record for every output: the GUI's exports, the batch's ``results.csv`` and GeoJSON, and the CLI. Built here
only, so a mask exported from the editor and one written by ``lesionlens segment`` carry the same keys
(:data:`PROVENANCE_KEYS`) and can be compared column by column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from segmentation import software_versions
from segmentation.calibration import Calibration, calibration_record

#: The keys of :func:`result_provenance`, in the order they are written.
PROVENANCE_KEYS: tuple[str, ...] = (
    "model",
    "model_sha256",
    "model_created",
    "device",
    "backend",
    "threshold",
    "cleanup",
    "edited",
    "mm_per_pixel",
    "calibration_source",
    "calibration_profile",
    "lesionlens_version",
    "pytorch_version",
    "onnxruntime_version",
)


@dataclass(frozen=True)
class ModelIdentity:
    """The model that made a result and where it ran.

    ``sha256`` is the SHA-256 of the weights *file* (what ``sha256sum`` prints), which anyone can check. ``device``
    is the human name ("CPU (2 threads, ONNX Runtime 1.22.0)", "CUDA GPU (...)") and ``backend`` the engine that ran
    the network ("PyTorch channels-last", "ONNX Runtime 1.22.0"); both "" when unknown (a mask read from a file).
    """

    name: str = ""
    sha256: str = ""
    created: str = ""
    device: str = ""
    backend: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> ModelIdentity:
        """The identity written into a provenance record (a ``results.csv`` row); missing keys are ""."""

        def text(key: str) -> str:
            value = record.get(key)
            return "" if value is None else str(value)

        return cls(text("model"), text("model_sha256"), text("model_created"), text("device"), text("backend"))

    def record(self) -> dict[str, str]:
        """The identity's provenance columns (the first five of :data:`PROVENANCE_KEYS`)."""
        return {
            "model": self.name,
            "model_sha256": self.sha256,
            "model_created": self.created,
            "device": self.device,
            "backend": self.backend,
        }


def result_provenance(
    model: ModelIdentity,
    *,
    threshold: float | None,
    cleanup: tuple[str, ...] = (),
    edited: bool = False,
    calibration: Calibration | None = None,
) -> dict[str, object]:
    """The provenance record of one result, with the keys of :data:`PROVENANCE_KEYS` in that order.

    ``threshold`` is None when unknown (a mask read from a file whose record did not say); it is written as "".
    """
    return {
        **model.record(),
        "threshold": "" if threshold is None else float(threshold),
        "cleanup": "+".join(cleanup) or "none",
        "edited": bool(edited),
        **calibration_record(calibration),
        **software_versions(),
    }
