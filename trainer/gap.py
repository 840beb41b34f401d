"""Where the gap to the quality bar is, and how much of it cheap inference-side levers close.

The regenerate-all command (``scripts/publish_model.py``) puts both in the model card, beside the training curve,
so "what would close the gap" rests on numbers rather than hopes. :func:`where_the_gap_is` splits the mean Dice's
shortfall between failed images and the rest; :func:`measure_variants` scores the same images through the app's
own predictor in each variant:

- ``as shipped``: the app's default, one forward pass, the raw mask at threshold 0.5 (the card's main table);
- ``clean-up``: the app's optional clean-up steps that need no parameter (fill holes, keep the largest lesion);
- ``flip averaging``: the mean probability over the image and its horizontal, vertical and double flips (four
  forward passes, so four times the network's time);
- ``flip averaging + clean-up``: both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segmentation.imageio import read_image, read_mask
from segmentation.inference import Predictor, upsample_probability
from segmentation.metrics import ConfusionCounts, MetricSummary, summarize
from segmentation.postprocess import clean_up
from segmentation.preprocessing import prepare_input
from trainer.config import QUALITY_BAR_DICE
from trainer.data import find_samples

CLEANUP = ("fill_holes", "keep_largest")
VARIANTS: dict[str, int] = {  # name: forward passes per image
    "as shipped": 1,
    "clean-up (fill holes, largest lesion)": 1,
    "flip averaging": 4,
    "flip averaging + clean-up": 4,
}


def flip_averaged_probability(predictor: Predictor, image: np.ndarray) -> np.ndarray:
    """Lesion probability at the image's size, averaged over the four flips of the network's input."""
    x = prepare_input(image, predictor.info.preprocessing)
    batch = np.ascontiguousarray(np.stack([x, x[:, :, ::-1], x[:, ::-1, :], x[:, ::-1, ::-1]]))
    probability = 1.0 / (1.0 + np.exp(-predictor.backend.logits(batch)[:, 0].astype(np.float64)))
    unflipped = (probability[0], probability[1][:, ::-1], probability[2][::-1, :], probability[3][::-1, ::-1])
    return upsample_probability(np.mean(unflipped, axis=0).astype(np.float32), image.shape[:2])


def measure_variants(
    predictor: Predictor, images: Path, masks: Path, threshold: float = 0.5
) -> dict[str, MetricSummary]:
    """Every variant in :data:`VARIANTS`, scored on the same images against their expert masks."""
    counts: dict[str, list[ConfusionCounts]] = {name: [] for name in VARIANTS}
    for sample in find_samples(images, masks):
        image, truth = read_image(sample.image), read_mask(sample.mask)
        plain = predictor.predict_probability(image) >= threshold
        flipped = flip_averaged_probability(predictor, image) >= threshold
        masks_by_variant = (plain, clean_up(plain, CLEANUP), flipped, clean_up(flipped, CLEANUP))
        for name, mask in zip(VARIANTS, masks_by_variant, strict=True):
            counts[name].append(ConfusionCounts.from_masks(mask, truth))
    return {name: summarize(values) for name, values in counts.items()}


def variants_table(summaries: dict[str, MetricSummary]) -> str:
    """Markdown: Dice and Jaccard (mean over images, 95 % interval) and the change from the shipped model."""
    shipped = summaries["as shipped"].mean["dice"]
    lines = [
        "| inference | forward passes | DC | 95 % CI | JSI | DC change |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, summary in summaries.items():
        low, high = summary.ci["dice"]
        lines.append(
            f"| {name} | {VARIANTS[name]} | {100 * summary.mean['dice']:.2f} | {100 * low:.2f}–{100 * high:.2f} | "
            f"{100 * summary.mean['jaccard']:.2f} | {100 * (summary.mean['dice'] - shipped):+.2f} |"
        )
    return "\n".join(lines)


def where_the_gap_is(dice_per_image: list[float], bar: float = QUALITY_BAR_DICE, failure: float = 0.5) -> dict:
    """How the mean Dice's shortfall from ``bar`` splits between a few failed images and the rest.

    A mean far below the median means a handful of images (missed or wildly over-drawn lesions) carry the gap, not
    the precision of ordinary outlines; that decides whether more training or better data/augmentation would help.
    """
    values = np.sort(np.asarray(dice_per_image, dtype=float))
    failed = values < failure
    shortfall = np.clip(bar - values, 0.0, None)
    return {
        "bar": bar,
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "failure_below": failure,
        "failed_images": int(failed.sum()),
        "mean_without_failed": float(values[~failed].mean()) if (~failed).any() else float("nan"),
        "shortfall_share_of_failed": float(shortfall[failed].sum() / shortfall.sum()) if shortfall.sum() else 0.0,
    }


def gap_sentence(gap: dict, n_images: int) -> str:
    """One sentence for the model card from :func:`where_the_gap_is`."""
    return (
        f"Mean Dice {100 * gap['mean']:.2f} against a median of {100 * gap['median']:.2f}: "
        f"{gap['failed_images']} of {n_images} images score below {gap['failure_below']} Dice and carry "
        f"{100 * gap['shortfall_share_of_failed']:.0f} % of the images' total shortfall from the {gap['bar']} bar; "
        f"the mean over the other {n_images - gap['failed_images']} is {100 * gap['mean_without_failed']:.2f}."
    )
