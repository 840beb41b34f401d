"""LesionLens segmentation core: network, inference, image IO, post-processing, metrics, measurements (no Qt)."""

from importlib.metadata import PackageNotFoundError, version

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
