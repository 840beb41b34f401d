"""The plain-data result of segmenting one image, shared by the CLI, the GUI and the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from segmentation.calibration import Calibration
from segmentation.measurements import LesionMeasurements, measure_lesion
from segmentation.provenance import ModelIdentity, result_provenance
from segmentation.quality import QualityAssessment, QualityEstimator, assess_quality, quality_features

DEFAULT_THRESHOLD = 0.5


def binarise(probability: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Lesion where the probability reaches the threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within 0..1, got {threshold}")
    return probability >= threshold


@dataclass
class LesionSegmentation:
    """The one lesion result: mask with its probability map, threshold, edits, clean-up and provenance; no Qt, no
    torch. The predictor makes it, the GUI's document holds and edits it, export and autosave write it, the batch
    reads it; its quality flags (:meth:`quality`) and provenance (:meth:`provenance`) are derived from it.

    ``model`` names the model that made it and where it ran (:class:`ModelIdentity`).

    ``probability`` is float32 HxW at the image's own size, or None for a mask without the model's map (an autosave
    restored before the model ran, a batch's mask file). ``mask`` is the bool mask for ``threshold`` unless a
    clinician edited it (then ``edited`` is True and the threshold no longer defines it). ``model_probability`` is
    the map at the model's own resolution and ``quality_model`` the weights' estimator (both optional): with them
    the result carries an estimated Dice, and a faint outline on plain skin becomes "no lesion found" (empty mask).
    ``plain_skin``: the weights' plain-skin check (``segmentation.skin_check``, on the network's features) says the
    photo shows no lesion; the model's mask is then empty at every threshold.
    """

    probability: np.ndarray | None
    threshold: float = DEFAULT_THRESHOLD
    model: ModelIdentity = field(default_factory=ModelIdentity)
    mask: np.ndarray = field(default=None)  # type: ignore[assignment]
    edited: bool = False
    cleanup: tuple[str, ...] = ()
    model_probability: np.ndarray | None = None
    quality_model: QualityEstimator | None = None
    plain_skin: bool = False

    def __post_init__(self) -> None:
        if self.mask is None:
            if self.probability is None:
                raise ValueError("a result without a probability map needs its mask")
            self.mask = self.model_mask(self.threshold)

    def no_lesion_at(self, threshold: float) -> bool:
        """The plain-skin check, or the estimator's no-lesion rule on the model's own mask at ``threshold``."""
        if self.model_probability is None or self.quality_model is None:
            return False
        small = binarise(self.model_probability, threshold)
        if not small.any():
            return False
        if self.plain_skin:
            return True
        return self.quality_model.is_no_lesion(quality_features(self.model_probability, small, threshold))

    def model_mask(self, threshold: float) -> np.ndarray:
        """The model's mask at ``threshold``: empty when the no-lesion rule says the image shows plain skin."""
        if self.probability is None:
            raise ValueError("this mask has no probability map to threshold")
        mask = binarise(self.probability, threshold)
        if self.no_lesion_at(threshold):
            mask[:] = False
        return mask

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]

    def set_threshold(self, threshold: float) -> bool:
        """The model's mask at ``threshold`` (the slider), in place. Refused (False) once the mask is edited: an
        edited mask keeps the threshold it was made from, so the provenance stays true. Without a probability map
        only the threshold is recorded (False: the mask did not change)."""
        if self.edited:
            return False
        if self.probability is None:
            self.threshold = float(threshold)
            return False
        mask = self.model_mask(threshold)  # checks the threshold first
        self.threshold, self.mask = float(threshold), mask
        return True

    def quality(self, mask: np.ndarray | None = None, threshold: float | None = None) -> QualityAssessment:
        """Estimated Dice and review flags of ``mask`` (default: this result's mask).

        This result's mask once a clinician edited it gets no estimate and no review flag: the estimate reads the
        model's output, which knows nothing of the clinician's changes (a corrected outline would read as a poor
        one), and the clinician has looked at it. The informational reasons (no lesion, at the border) stay."""
        assessment = assess_quality(
            self.model_probability,
            self.mask if mask is None else mask,
            self.quality_model,
            self.threshold if threshold is None else threshold,
        )
        if mask is None and self.edited:
            return replace(assessment, estimated_dice=None, needs_review=False, edited=True)
        return assessment

    def measure(
        self, image: np.ndarray | None = None, *, mm_per_pixel: float | None = None, regions: str = "largest"
    ) -> LesionMeasurements | None:
        """The measurements of this result's mask (``segmentation.measurements.measure_lesion``: the lesion's
        bounding box only; colour from ``image``; mm with a calibration); None for an empty mask."""
        return measure_lesion(self.mask, image, mm_per_pixel=mm_per_pixel, regions=regions)

    def provenance(self, calibration: Calibration | None = None) -> dict[str, object]:
        """This result's provenance record (:func:`segmentation.provenance.result_provenance`)."""
        return result_provenance(
            self.model, threshold=self.threshold, cleanup=self.cleanup, edited=self.edited, calibration=calibration
        )
