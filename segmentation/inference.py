"""The predictor: a weights file and a device in, lesion probability maps at the image's own size out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from segmentation.backends import Backend, build_backend
from segmentation.lesion import DEFAULT_THRESHOLD, LesionSegmentation
from segmentation.preprocessing import prepare_input
from segmentation.provenance import ModelIdentity
from segmentation.weights import file_sha256, load_weights

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def select_device(requested: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU for ``auto``; an explicit choice that is not available is an error."""
    requested = requested.lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available (this torch build or this machine)")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("MPS was requested but is not available on this machine")
    if requested != "cpu" and not requested.startswith(("cuda", "mps")):
        raise ValueError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(requested)


def describe_device(device: torch.device, backend: str = "") -> str:
    """Human name for the status bar and provenance: 'CUDA GPU (NVIDIA H100 ...)' or 'CPU (2 threads, ...)'."""
    if device.type == "cuda":
        return f"CUDA GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads{', ' + backend if backend else ''})"


class Predictor:
    """Runs the network on RGB uint8 images of any size; one object serves the CLI, the GUI and evaluation."""

    def __init__(
        self,
        weights: str | os.PathLike,
        device: str = "auto",
        *,
        expected_sha256: str | None = None,
        backend: str | None = None,
    ) -> None:
        """``backend``: ``auto`` (default; ``$LESIONLENS_BACKEND`` overrides it), ``torch`` or ``onnxruntime``."""
        self.weights_path = Path(weights)
        model, self.info = load_weights(self.weights_path, expected_sha256=expected_sha256)
        #: What ``sha256sum`` prints for the weights file: the model's identity shown to users and in exports (the
        #: tensor hash in ``info.sha256`` stays in the file's metadata, where the loader checks it).
        self.weights_sha256 = file_sha256(self.weights_path)
        self.device = select_device(device)
        self.backend: Backend = build_backend(model, self.device, self.info.preprocessing.input_size, backend)
        self.model = model.to(self.device).eval()  # the PyTorch network (hooks, export); may not be what runs

    @property
    def device_description(self) -> str:
        return describe_device(self.device, self.backend.name)

    @property
    def identity(self) -> ModelIdentity:
        """The model and where it runs, as every result's provenance records it."""
        return ModelIdentity(
            name=self.info.name,
            sha256=self.weights_sha256,
            created=self.info.created,
            device=self.device_description,
            backend=self.backend.name,
        )

    def predict_probability(self, image: np.ndarray) -> np.ndarray:
        """Lesion probability (float32 HxW, 0-1) at the image's own size."""
        return self.predict_probabilities([image])[0]

    def predict(self, image: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> LesionSegmentation:
        """Probability map and binary mask for ``threshold``, with the model's provenance and quality estimator."""
        probabilities, summaries = self.model_outputs([image])
        small = probabilities[0]  # the model's own resolution: the estimated Dice, the no-lesion rule
        return LesionSegmentation(
            probability=upsample_probability(small, image.shape[:2]),
            threshold=threshold,
            model=self.identity,
            model_probability=small,
            quality_model=self.info.quality,
            plain_skin=self.is_plain_skin(summaries[0]),
        )

    def is_plain_skin(self, summary: np.ndarray) -> bool:
        """The weights' plain-skin check (``segmentation.skin_check``) on one image's summary; False without one."""
        quality = self.info.quality
        probe = quality.plain_skin if quality is not None else None
        return probe is not None and probe.is_plain_skin(summary)

    def predict_probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Batched prediction: one forward pass for all ``images`` (each of any size)."""
        probabilities = self.model_probabilities(images)
        return [upsample_probability(p, image.shape[:2]) for p, image in zip(probabilities, images, strict=True)]

    def model_probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Lesion probabilities at the model's own input size (float32, one forward pass for all ``images``)."""
        return self.model_outputs(images)[0]

    def model_outputs(self, images: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """One forward pass for all ``images``: their probabilities at the model's input size (float32) and the
        summaries of the network's stages (N x S float32, ``segmentation.network.summarise``)."""
        if not images:
            return [], np.zeros((0, 0), np.float32)
        batch = np.stack([prepare_input(image, self.info.preprocessing) for image in images])
        logits, summaries = self.backend.outputs(batch)
        return list(torch.sigmoid(torch.from_numpy(logits))[:, 0].numpy()), summaries


def upsample_probability(probability: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a model-resolution probability map to the image's (height, width)."""
    height, width = size
    if probability.shape == (height, width):
        return probability.astype(np.float32, copy=False)
    return cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
