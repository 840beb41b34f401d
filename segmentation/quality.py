"""How good is this mask likely to be? An estimated Dice per image, and the flags a clinician reviews by.

Everything here is measured at the model's own resolution (its input size, 128x160 for the bundled model), on the
probability map the network produced there and on the mask brought down to that size. At the photo's resolution
the probability map is a bilinear upsampling, so every boundary looks uncertain; at the model's resolution a
confident model switches from ~0 to ~1 within a pixel or two.

The estimator is deliberately small: a linear regression on a handful of standardised features, clipped to 0..1.
Its feature names, means, scales, coefficients and the ``needs_review`` operating point are stored in the weights
file's metadata (``quality``), fitted by ``trainer.quality`` (run by ``scripts/publish_model.py``) on the HAM10000
hold-out, so a retrained model brings its own. A model without that entry gets no estimate (and no review flag);
the informational reasons ("no lesion found", "lesion at the image border") work without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from segmentation.skin_check import PlainSkinProbe

#: Probabilities within this margin of the threshold count as "near the threshold" (uncertain).
NEAR_MARGIN = 0.3
#: Components smaller than this share of the model's input are ignored when counting lesions (speckle).
MIN_COMPONENT_SHARE = 0.0005

FEATURE_DESCRIPTIONS = {
    "soft_dice": "Dice between the mask and the probability map (how much the mask agrees with the model's belief)",
    "near_threshold": "pixels whose probability is near the threshold, per pixel of lesion (a wide grey zone)",
    "band_uncertainty": "mean uncertainty (1 - |2p - 1|) in a one-pixel band either side of the mask's boundary",
    "lesion_share": "share of the image the lesion covers",
    "border_contact": "share of the image's edge that the lesion touches",
    "components": "number of separate lesion regions",
    "mean_inside": "mean probability inside the mask",
}
NO_LESION_FEATURES = ("mean_inside", "soft_area")


def model_resolution_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The mask at the model's (height, width): a pixel is lesion when most of the photo's pixels under it are."""
    height, width = size
    if mask.shape == (height, width):
        return mask.astype(bool, copy=False)
    # bool viewed as uint8 (0/1, no copy): area averaging rounds each model pixel to the majority of the photo's
    counts = cv2.resize(np.ascontiguousarray(mask).view(np.uint8), (width, height), interpolation=cv2.INTER_AREA)
    return counts >= 1


def quality_features(probability: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Features of one result; ``probability`` and ``mask`` at the model's resolution (same shape)."""
    if probability.shape != mask.shape:
        raise ValueError(f"probability {probability.shape} and mask {mask.shape} must have one shape")
    p = probability.astype(np.float32, copy=False)
    m = mask.astype(bool, copy=False)
    area = int(m.sum())
    total = float(p.sum()) + area
    soft_dice = 2.0 * float(p[m].sum()) / total if total > 0 else 1.0
    near = int((np.abs(p - threshold) < NEAR_MARGIN).sum())
    m8 = m.astype(np.uint8)
    band = cv2.morphologyEx(m8, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    uncertainty = 1.0 - np.abs(2.0 * p - 1.0)
    edge = np.concatenate([m[0, :], m[-1, :], m[1:-1, 0], m[1:-1, -1]])
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    min_size = MIN_COMPONENT_SHARE * m.size
    components = int((stats[1:, cv2.CC_STAT_AREA] >= min_size).sum()) if count > 1 else 0
    return {
        "soft_dice": soft_dice,
        "near_threshold": near / max(area, 1),
        "band_uncertainty": float(uncertainty[band].mean()) if band.any() else 0.0,
        "lesion_share": area / m.size,
        "border_contact": float(edge.mean()),
        "components": float(components),
        "mean_inside": float(p[m].mean()) if area else 0.0,
        "soft_area": float(p.sum()) / m.size,
    }


def transform_feature(name: str, value: float) -> float:
    """Skewed features on a log scale, so a linear model sees them evenly."""
    if name in {"near_threshold", "lesion_share", "soft_area"}:
        return math.log(value + 1e-3)
    if name == "components":
        return math.log1p(value)
    return value


@dataclass(frozen=True)
class QualityEstimator:
    """Estimated Dice = clip(intercept + sum(coefficient * (feature - mean) / scale), 0, 1); stored in metadata.

    ``review_below``: ``needs_review`` when the estimate is below it (the operating point chosen on the hold-out).
    ``no_lesion``: thresholds under which a non-empty model mask is taken as "no lesion found" (all must hold).
    ``plain_skin``: the image-level plain-skin check on the network's features (``segmentation.skin_check``); when it
    fires, the model's mask is "no lesion found" too.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    review_below: float
    no_lesion: dict[str, float] = field(default_factory=dict)
    fitted_on: dict = field(default_factory=dict)
    plain_skin: PlainSkinProbe | None = None

    def __post_init__(self) -> None:
        n = len(self.features)
        if n == 0:
            raise ValueError("quality estimator has no features")
        unknown = [name for name in self.features if name not in FEATURE_DESCRIPTIONS]
        if unknown:
            raise ValueError(f"quality estimator uses unknown features {unknown}")
        for name in ("mean", "scale", "coefficients"):
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(f"quality estimator: {len(values)} {name} for {n} features")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        numbers = (*self.mean, *self.scale, *self.coefficients, float(self.intercept), float(self.review_below))
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("quality estimator has a value that is not a finite number")
        if any(s <= 0 for s in self.scale):
            raise ValueError("quality estimator scales must be positive")
        if not 0.0 <= float(self.review_below) <= 1.0:
            raise ValueError(f"quality review_below must be within 0..1, got {self.review_below}")
        unknown = [k for k in self.no_lesion if k not in NO_LESION_FEATURES]
        if unknown or not all(math.isfinite(float(v)) for v in self.no_lesion.values()):
            raise ValueError(f"quality no_lesion rule is invalid ({self.no_lesion})")
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "intercept", float(self.intercept))
        object.__setattr__(self, "review_below", float(self.review_below))
        object.__setattr__(self, "no_lesion", {k: float(v) for k, v in self.no_lesion.items()})

    def estimate(self, features: dict[str, float]) -> float:
        z = [
            (transform_feature(name, features[name]) - mean) / scale
            for name, mean, scale in zip(self.features, self.mean, self.scale, strict=True)
        ]
        value = self.intercept + float(np.dot(self.coefficients, z))
        return float(min(1.0, max(0.0, value)))

    def is_no_lesion(self, features: dict[str, float]) -> bool:
        """True when the model's own mask is a faint outline on plain skin (every rule's feature under its limit)."""
        return bool(self.no_lesion) and all(features[name] < limit for name, limit in self.no_lesion.items())

    def to_dict(self) -> dict:
        return {
            "estimator": "linear regression on standardised features, clipped to 0..1",
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "review_below": self.review_below,
            "no_lesion": dict(self.no_lesion),
            "fitted_on": self.fitted_on,
            **({"plain_skin": self.plain_skin.to_dict()} if self.plain_skin is not None else {}),
        }

    @classmethod
    def from_dict(cls, values: dict) -> QualityEstimator:
        """Raises ValueError (naming the problem) for a missing or malformed entry."""
        if not isinstance(values, dict):
            raise ValueError("quality metadata must be a JSON object")
        try:
            return cls(
                features=tuple(values["features"]),
                mean=tuple(values["mean"]),
                scale=tuple(values["scale"]),
                coefficients=tuple(values["coefficients"]),
                intercept=float(values["intercept"]),
                review_below=float(values["review_below"]),
                no_lesion=dict(values.get("no_lesion", {})),
                fitted_on=dict(values.get("fitted_on", {})),
                plain_skin=PlainSkinProbe.from_dict(values["plain_skin"]) if "plain_skin" in values else None,
            )
        except KeyError as error:
            raise ValueError(f"quality metadata lacks {error.args[0]!r}") from error
        except TypeError as error:
            raise ValueError(f"quality metadata is malformed ({error})") from error


NO_LESION = "no lesion found"
AT_BORDER = "lesion at the image border"


@dataclass(frozen=True)
class QualityAssessment:
    """What the clinician sees: the estimated Dice, whether to review, and why (plain language)."""

    estimated_dice: float | None
    needs_review: bool
    no_lesion: bool
    at_border: bool
    review_below: float | None = None
    edited: bool = False  # a clinician's outline: no estimate (it reads the model's output, not the correction)

    @property
    def any(self) -> bool:
        return self.needs_review or self.no_lesion or self.at_border

    def reasons(self) -> list[str]:
        """Plain-language reasons, the review reason first; the last two are informational."""
        reasons = []
        if self.needs_review and self.estimated_dice is not None:
            reasons.append(
                f"needs review: estimated Dice {self.estimated_dice:.2f} is below {self.review_below:.2f} "
                "(the outline may be off)"
            )
        if self.no_lesion:
            reasons.append(NO_LESION)
        if self.at_border:
            reasons.append(AT_BORDER)
        return reasons

    def labels(self) -> list[str]:
        """Short labels for a list row: "needs review", "no lesion found", "lesion at the image border"."""
        return [r.split(":")[0] for r in self.reasons()]

    def estimate_text(self) -> str:
        return "" if self.estimated_dice is None else f"estimated Dice {self.estimated_dice:.2f}"

    def review_key(self) -> tuple:
        """Sort key for a review-first order: flagged first, then the lowest estimate, then no lesion."""
        estimate = 2.0 if self.estimated_dice is None else self.estimated_dice
        return (not self.needs_review, not self.no_lesion, estimate)

    def to_dict(self) -> dict[str, object]:
        return {
            "estimated_dice": "" if self.estimated_dice is None else round(self.estimated_dice, 4),
            "needs_review": self.needs_review,
            "no_lesion": self.no_lesion,
            "at_border": self.at_border,
            "reasons": "; ".join(self.reasons()),
        }


def assess_quality(
    probability: np.ndarray | None,
    mask: np.ndarray,
    estimator: QualityEstimator | None,
    threshold: float = 0.5,
    *,
    no_lesion: bool = False,
) -> QualityAssessment:
    """Assess ``mask`` (any size) against the model-resolution ``probability`` (None: no model result).

    ``no_lesion``: the predictor already decided the image shows no lesion (its mask was emptied). An empty mask is
    "no lesion found" and needs no estimate: there is no outline to check.
    """
    if not mask.any():
        return QualityAssessment(None, False, True, False)
    at_border = bool(mask[0, :].any() or mask[-1, :].any() or mask[:, 0].any() or mask[:, -1].any())
    if probability is None or estimator is None:
        return QualityAssessment(None, False, no_lesion, at_border)
    small = model_resolution_mask(mask, probability.shape)
    estimate = estimator.estimate(quality_features(probability, small, threshold))
    review = estimate < estimator.review_below
    return QualityAssessment(estimate, review, no_lesion, at_border, estimator.review_below)
