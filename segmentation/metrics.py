"""Segmentation metrics shared by the trainer, the CLI and the GUI.

Every score is derived from a :class:`ConfusionCounts` (SMP/MONAI style) so that the three callers
cannot drift apart: per-image scores, pooled scores (summed counts) and their summaries all go through
the same few functions below.

Degenerate cases (a zero denominator) are defined, never NaN, so means over a test set are always
defined. The convention is "nothing to get wrong scores 1.0":

* both prediction and truth empty: ``dice = jaccard = thresholded_jaccard = recall = 1.0``;
* truth empty but prediction not: ``recall = 1.0`` (no lesion pixel to miss) while
  ``dice = jaccard = 0.0`` (every predicted pixel is a false positive);
* no negative pixels in the truth: ``specificity = 1.0``;
* no pixels at all: ``accuracy = 1.0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "METRIC_ABBREVIATIONS",
    "METRIC_NAMES",
    "THRESHOLDED_JACCARD_CUTOFF",
    "ConfusionCounts",
    "MetricSummary",
    "accuracy",
    "bootstrap_ci",
    "dice",
    "jaccard",
    "recall",
    "scores",
    "specificity",
    "summarize",
    "thresholded_jaccard",
]

#: ISIC 2017 challenge: an image whose Jaccard index is below this cut-off scores 0.
THRESHOLDED_JACCARD_CUTOFF = 0.65


@dataclass(frozen=True)
class ConfusionCounts:
    """Pixel confusion counts of one image (or of several, pooled by ``+``)."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"ConfusionCounts.{name} must be >= 0, got {value}")
            # Python ints: pooling thousands of megapixel images must not overflow a numpy int.
            object.__setattr__(self, name, int(value))

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        if not isinstance(other, ConfusionCounts):
            return NotImplemented
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @classmethod
    def from_masks(cls, prediction: np.ndarray, truth: np.ndarray) -> ConfusionCounts:
        """Count pixels; both masks must be bool arrays of one shape (no silent thresholding)."""
        prediction = np.asarray(prediction)
        truth = np.asarray(truth)
        if prediction.shape != truth.shape:
            raise ValueError(f"prediction shape {prediction.shape} does not match truth shape {truth.shape}")
        for name, arr in (("prediction", prediction), ("truth", truth)):
            if arr.dtype != np.bool_:
                raise TypeError(f"{name} must be a bool mask, got dtype {arr.dtype}")
        tp = int(np.count_nonzero(prediction & truth))
        fp = int(np.count_nonzero(prediction & ~truth))
        fn = int(np.count_nonzero(~prediction & truth))
        tn = prediction.size - tp - fp - fn
        return cls(tp=tp, fp=fp, fn=fn, tn=tn)


def _ratio(numerator: int, denominator: int) -> float:
    # 0/0 means "nothing to get wrong" for every score here (see the module docstring).
    return 1.0 if denominator == 0 else numerator / denominator


def accuracy(c: ConfusionCounts) -> float:
    """AC = (tp + tn) / all pixels; dominated by background on small lesions, so report it with DC/JSI."""
    return _ratio(c.tp + c.tn, c.total)


def specificity(c: ConfusionCounts) -> float:
    """SP = tn / (tn + fp); 1.0 when the truth has no negative pixel."""
    return _ratio(c.tn, c.tn + c.fp)


def recall(c: ConfusionCounts) -> float:
    """REC (sensitivity) = tp / (tp + fn); 1.0 when the truth has no lesion pixel.

    Note: the paper's Eq. 13 prints this formula wrongly; use this standard definition, not the
    printed one.
    """
    return _ratio(c.tp, c.tp + c.fn)


def dice(c: ConfusionCounts) -> float:
    """DC = 2tp / (2tp + fp + fn); 1.0 when prediction and truth are both empty."""
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)


def jaccard(c: ConfusionCounts) -> float:
    """JSI = tp / (tp + fp + fn); 1.0 when prediction and truth are both empty."""
    return _ratio(c.tp, c.tp + c.fp + c.fn)


def thresholded_jaccard(c: ConfusionCounts) -> float:
    """ISIC 2017 challenge score: the Jaccard index, or 0 when it is below 0.65 (a failed image)."""
    j = jaccard(c)
    return j if j >= THRESHOLDED_JACCARD_CUTOFF else 0.0


METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "specificity",
    "recall",
    "dice",
    "jaccard",
    "thresholded_jaccard",
)

#: The abbreviations used in the paper's tables, for labels.
METRIC_ABBREVIATIONS: dict[str, str] = {
    "accuracy": "AC",
    "specificity": "SP",
    "recall": "REC",
    "dice": "DC",
    "jaccard": "JSI",
    "thresholded_jaccard": "TJI",
}

_METRIC_FUNCTIONS: dict[str, Callable[[ConfusionCounts], float]] = {
    "accuracy": accuracy,
    "specificity": specificity,
    "recall": recall,
    "dice": dice,
    "jaccard": jaccard,
    "thresholded_jaccard": thresholded_jaccard,
}


def scores(counts: ConfusionCounts) -> dict[str, float]:
    """All metrics of one count, keyed and ordered by :data:`METRIC_NAMES` (fractions in [0, 1])."""
    return {name: _METRIC_FUNCTIONS[name](counts) for name in METRIC_NAMES}


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    Resampling images (not pixels) is what tells whether a difference between two models on a test
    set of a few hundred images is more than noise. Deterministic for a given ``seed``.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci values must be finite")
    if data.size == 1:
        v = float(data[0])
        return v, v

    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    # Chunk so the index matrix stays around 32 MB however large the test set is.
    chunk = max(1, (1 << 22) // data.size)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass
class MetricSummary:
    """Per-metric mean over images with its bootstrap CI, and the pooled (summed-count) value.

    The mean weighs every image equally (how the ISIC challenges and most papers report); the pooled
    value weighs every pixel equally, so large lesions dominate it. They differ; report which.
    """

    n_images: int
    mean: dict[str, float]
    ci: dict[str, tuple[float, float]]
    pooled: dict[str, float]
    confidence: float = 0.95
    total: ConfusionCounts = field(default_factory=lambda: ConfusionCounts(0, 0, 0, 0))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: plain floats/ints, metrics as fractions in [0, 1]."""
        return {
            "n_images": self.n_images,
            "confidence": self.confidence,
            "pooled_counts": {
                "tp": self.total.tp,
                "fp": self.total.fp,
                "fn": self.total.fn,
                "tn": self.total.tn,
            },
            "metrics": {
                name: {
                    "mean": self.mean[name],
                    "ci_low": self.ci[name][0],
                    "ci_high": self.ci[name][1],
                    "pooled": self.pooled[name],
                }
                for name in METRIC_NAMES
            },
        }

    def format_table(self, paper_row: dict[str, float] | None = None) -> str:
        """Markdown table in percent with 2 decimals.

        ``paper_row`` holds the paper's reported values as fractions in [0, 1] (like every other
        value here), keyed by :data:`METRIC_NAMES`; metrics it lacks show "—". Values above 1 are
        rejected because they are almost surely percentages typed in by hand.
        """
        paper_row = dict(paper_row or {})
        unknown = sorted(set(paper_row) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(f"unknown metric(s) in paper_row: {unknown}; valid: {list(METRIC_NAMES)}")
        for name, value in paper_row.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"paper_row[{name!r}] = {value} is not a fraction in [0, 1] (give 0.9071, not 90.71)")

        def pct(x: float) -> str:
            return f"{100.0 * x:.2f}"

        ci_label = f"{round(100 * self.confidence):d}% CI"
        lines = [
            f"| metric | mean | {ci_label} | pooled | paper |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in METRIC_NAMES:
            low, high = self.ci[name]
            paper = pct(paper_row[name]) if name in paper_row else "—"
            label = f"{name} ({METRIC_ABBREVIATIONS[name]})"
            lines.append(
                f"| {label} | {pct(self.mean[name])} | {pct(low)}–{pct(high)} | {pct(self.pooled[name])} | {paper} |"
            )
        lines.append("")
        lines.append(f"n = {self.n_images} images; values in %.")
        return "\n".join(lines)


def summarize(per_image: Sequence[ConfusionCounts], *, seed: int = 0, confidence: float = 0.95) -> MetricSummary:
    """Summarise a test set: mean of per-image scores with bootstrap CI, and pooled scores."""
    per_image = list(per_image)
    if not per_image:
        raise ValueError("summarize needs at least one image")
    per_image_scores = [scores(c) for c in per_image]
    total = sum(per_image[1:], start=per_image[0])
    mean: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    for name in METRIC_NAMES:
        values = [s[name] for s in per_image_scores]
        mean[name] = math.fsum(values) / len(values)
        ci[name] = bootstrap_ci(values, confidence=confidence, seed=seed)
    return MetricSummary(
        n_images=len(per_image),
        mean=mean,
        ci=ci,
        pooled=scores(total),
        confidence=confidence,
        total=total,
    )
