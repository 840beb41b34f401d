"""The one place where an RGB image becomes the network's input tensor.

The predictor and the trainer both call :func:`prepare_input`, with the :class:`Preprocessing` read from the
weights file, so training and inference can never drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

INTERPOLATIONS = {
    "bicubic": cv2.INTER_CUBIC,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    """How an image is resized and normalised for the network (stored in the weights' metadata).

    ``input_size`` is (height, width). ``mean``/``std`` are per RGB channel on the 0-1 scale.
    """

    input_size: tuple[int, int] = (224, 224)
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Preprocessing:
        return cls(**values)


def resize_for_model(image: np.ndarray, size: tuple[int, int], interpolation: str = "bicubic") -> np.ndarray:
    """Resize to ``size`` = (height, width) with the named interpolation.

    A large photo is first reduced with area averaging to twice the target size: bicubic on a 20x reduction
    aliases hair and pigment network into noise the network never saw in training (whose 256x192 copies were
    downsampled with antialiasing). For the paper's case (256x192 to 224x224) that first step does nothing, so the
    recipe's bicubic resize holds exactly.
    """
    height, width = size
    if image.shape[0] > 2 * height and image.shape[1] > 2 * width:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[interpolation])


def normalise(image: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 HxWx3 RGB to float32 3xHxW, standardised per channel."""
    mean = np.asarray(preprocessing.mean, dtype=np.float32) * 255.0
    std = np.asarray(preprocessing.std, dtype=np.float32) * 255.0
    chw = (image.astype(np.float32) - mean) / std
    return np.ascontiguousarray(chw.transpose(2, 0, 1))


def prepare_input(image: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """RGB uint8 image of any size to the network's float32 3xHxW input."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape HxWx3, got {image.dtype} {image.shape}")
    resized = resize_for_model(image, preprocessing.input_size, preprocessing.interpolation)
    return normalise(resized, preprocessing)
