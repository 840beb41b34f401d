"""LesionLens segmentation core: network, inference, image IO, post-processing, metrics, measurements (no Qt)."""

import os
from importlib.metadata import PackageNotFoundError, version

# ONNX Runtime's Linux/macOS builds (1.2x and later) keep a device id and queue telemetry events under
# ~/.cache/Microsoft and send them to Microsoft. Set before onnxruntime is first imported (every LesionLens entry
# point imports this package first), this switches all of it off: no uploader, no device id, no event queue.
# segmentation.backends also calls onnxruntime.disable_telemetry_events() before creating a session (Windows).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

try:
    __version__ = version("lesionlens")
except PackageNotFoundError:  # running from a source tree or a frozen bundle without package metadata
    __version__ = "0.1.0"


def software_versions() -> dict[str, str]:
    """The versions a result depends on, for provenance: LesionLens, PyTorch and ONNX Runtime ("" if absent).

    Read from the installed packages' metadata, so nothing heavy is imported."""
    versions = {"lesionlens_version": __version__}
    for column, package in (("pytorch_version", "torch"), ("onnxruntime_version", "onnxruntime")):
        try:
            versions[column] = version(package)
        except PackageNotFoundError:
            versions[column] = ""
    return versions
