"""LesionLens segmentation core: network, inference, image IO, post-processing, metrics, measurements (no Qt)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lesionlens")
except PackageNotFoundError:  # running from a source tree or a frozen bundle without package metadata
    __version__ = "0.1.0"
