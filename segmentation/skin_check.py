"""Is this photo plain skin? An image-level check on the network's own features, separate from the mask.

On a crop of plain skin the network still outlines a "lesion" whose probability map looks like a real one's, so
no rule on the map can tell them apart without emptying faint real lesions (``docs/QUALITY.md``). What the network
saw on its way to that map can: every stage of the encoder, the bridge and the decoder is summarised per channel
by its mean, maximum and spread over the image (1,056 numbers for the bundled width-16 network), and a linear
probe (logistic regression, fitted by ``trainer.skin_check`` on training lesions, the HAM10000 hold-out and
plain-skin crops of both) reads "plain skin" from them (the summary: ``segmentation.network.summarise``). Its
weights and its operating point are stored in the weights file's metadata with the quality estimator, so a
retrained network brings its own. The network runs once, for the mask and the summary together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PlainSkinProbe:
    """logit = intercept + weights . ((summary - mean) / scale); "plain skin" when the logit is above ``above``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    above: float
    fitted_on: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.weights)
        if n == 0 or len(self.mean) != n or len(self.scale) != n:
            raise ValueError(
                f"plain-skin probe: {len(self.mean)} means, {len(self.scale)} scales, {n} weights (must agree)"
            )
        for name in ("mean", "scale", "weights"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "intercept", float(self.intercept))
        object.__setattr__(self, "above", float(self.above))
        values = (*self.mean, *self.scale, *self.weights, self.intercept, self.above)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("plain-skin probe has a value that is not a finite number")
        if any(s <= 0 for s in self.scale):
            raise ValueError("plain-skin probe scales must be positive")

    def logit(self, summary: np.ndarray) -> float:
        """The probe's logit for one image's summary (higher: more like plain skin)."""
        summary = np.asarray(summary, dtype=np.float64).reshape(-1)
        if summary.size != len(self.weights):
            raise ValueError(
                f"plain-skin probe expects {len(self.weights)} summary values, the network gave {summary.size}"
            )
        z = (summary - np.asarray(self.mean)) / np.asarray(self.scale)
        return self.intercept + float(np.dot(self.weights, z))

    def is_plain_skin(self, summary: np.ndarray) -> bool:
        return self.logit(summary) > self.above

    def to_dict(self) -> dict:
        return {
            "probe": "logistic regression on the standardised summary of the network's stages",
            "statistics": ["mean", "max", "std"],
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "above": self.above,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, values: dict) -> PlainSkinProbe:
        """Raises ValueError (naming the problem) for a missing or malformed entry."""
        if not isinstance(values, dict):
            raise ValueError("plain-skin probe must be a JSON object")
        try:
            return cls(
                mean=tuple(values["mean"]),
                scale=tuple(values["scale"]),
                weights=tuple(values["weights"]),
                intercept=float(values["intercept"]),
                above=float(values["above"]),
                fitted_on=dict(values.get("fitted_on", {})),
            )
        except KeyError as error:
            raise ValueError(f"plain-skin probe lacks {error.args[0]!r}") from error
        except TypeError as error:
            raise ValueError(f"plain-skin probe is malformed ({error})") from error
