"""The plain-data result of segmenting one image, shared by the CLI, the GUI and the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

DEFAULT_THRESHOLD = 0.5
# A pixel counts as uncertain when its probability is within this margin of the threshold.
UNCERTAIN_MARGIN = 0.25
# Low confidence when more than this share of the boundary band is uncertain. A confident model's probabilities
# switch from ~0 to ~1 within a pixel or two of the boundary, so only a small share of a band of a few pixels
# either side is uncertain; a hesitant one leaves a wide grey zone.
LOW_CONFIDENCE_SHARE = 0.5


@dataclass(frozen=True)
class ConfidenceFlags:
    """Why a clinician should look at this result first."""

    empty: bool
    touches_border: bool
    low_confidence: bool
    uncertain_share: float

    @property
    def any(self) -> bool:
        return self.empty or self.touches_border or self.low_confidence

    def labels(self) -> list[str]:
        names = {
            "empty": "no lesion found",
            "touches_border": "lesion at image border",
            "low_confidence": "low confidence",
        }
        return [label for key, label in names.items() if getattr(self, key)]

    def to_dict(self) -> dict[str, bool | float]:
        return {
            "flag_empty": self.empty,
            "flag_border": self.touches_border,
            "flag_low_confidence": self.low_confidence,
            "uncertain_share": round(self.uncertain_share, 4),
        }


def binarise(probability: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Lesion where the probability reaches the threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within 0..1, got {threshold}")
    return probability >= threshold


def lesion_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of a non-empty mask, widened by ``margin`` pixels where the image has them."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (
        slice(max(0, rows[0] - margin), min(mask.shape[0], rows[-1] + margin + 1)),
        slice(max(0, cols[0] - margin), min(mask.shape[1], cols[-1] + margin + 1)),
    )


def assess_confidence(
    probability: np.ndarray, mask: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> ConfidenceFlags:
    """Flags for an empty mask, a lesion touching the image border, and an uncertain boundary.

    The boundary band is the mask's morphological gradient widened to about 1 % of the shorter image side, so the
    measure does not depend on the image's resolution.
    """
    if not mask.any():
        return ConfidenceFlags(empty=True, touches_border=False, low_confidence=False, uncertain_share=0.0)
    touches_border = bool(mask[0, :].any() or mask[-1, :].any() or mask[:, 0].any() or mask[:, -1].any())
    radius = max(2, round(min(mask.shape) / 100))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # The band lies within ``radius`` of the lesion: work on its bounding box widened by that much, not the photo.
    box = lesion_box(mask, radius + 1)
    band = cv2.morphologyEx(np.ascontiguousarray(mask[box], dtype=np.uint8), cv2.MORPH_GRADIENT, kernel).astype(bool)
    uncertain = np.abs(probability[box][band] - threshold) < UNCERTAIN_MARGIN
    share = float(uncertain.mean()) if uncertain.size else 0.0
    return ConfidenceFlags(
        empty=False,
        touches_border=touches_border,
        low_confidence=share > LOW_CONFIDENCE_SHARE,
        uncertain_share=share,
    )


@dataclass
class LesionSegmentation:
    """A lesion mask with its probability map, threshold and provenance; no Qt, no torch.

    ``model_sha256`` is the SHA-256 of the weights *file* (what ``sha256sum`` prints), which anyone can check.

    ``probability`` is float32 HxW at the image's own size. ``mask`` is the bool mask for ``threshold`` unless a
    clinician edited it (then ``edited`` is True and the threshold no longer defines it).
    """

    probability: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    model_name: str = ""
    model_sha256: str = ""
    device: str = ""
    mask: np.ndarray = field(default=None)  # type: ignore[assignment]
    edited: bool = False
    cleanup: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mask is None:
            self.mask = binarise(self.probability, self.threshold)

    @property
    def shape(self) -> tuple[int, int]:
        return self.probability.shape  # type: ignore[return-value]

    def with_threshold(self, threshold: float) -> LesionSegmentation:
        """The model's mask at another threshold (what the GUI slider shows)."""
        return LesionSegmentation(
            probability=self.probability,
            threshold=threshold,
            model_name=self.model_name,
            model_sha256=self.model_sha256,
            device=self.device,
        )

    def confidence(self) -> ConfidenceFlags:
        return assess_confidence(self.probability, self.mask, self.threshold)

    def provenance(self) -> dict[str, str | float | bool]:
        return {
            "model": self.model_name,
            "model_sha256": self.model_sha256,
            "threshold": self.threshold,
            "cleanup": "+".join(self.cleanup) or "none",
            "edited": self.edited,
            "device": self.device,
        }
