import json
import math

import numpy as np
import pytest

from segmentation.metrics import (
    METRIC_NAMES,
    ConfusionCounts,
    accuracy,
    bootstrap_ci,
    dice,
    jaccard,
    recall,
    scores,
    specificity,
    summarize,
    thresholded_jaccard,
)

PRED = np.array(
    [[1, 1, 0, 0],
     [1, 1, 0, 0],
     [0, 0, 1, 0],
     [0, 0, 0, 0]], dtype=bool)  # fmt: skip
TRUTH = np.array(
    [[1, 1, 0, 0],
     [1, 0, 0, 0],
     [1, 0, 0, 0],
     [0, 0, 0, 0]], dtype=bool)  # fmt: skip


def test_counts_from_tiny_masks():
    assert ConfusionCounts.from_masks(PRED, TRUTH) == ConfusionCounts(tp=3, fp=2, fn=1, tn=10)


def test_scores_match_hand_values():
    c = ConfusionCounts(tp=3, fp=2, fn=1, tn=10)
    assert accuracy(c) == pytest.approx(13 / 16)
    assert specificity(c) == pytest.approx(10 / 12)
    assert recall(c) == pytest.approx(3 / 4)
    assert dice(c) == pytest.approx(6 / 9)
    assert jaccard(c) == pytest.approx(0.5)
    assert thresholded_jaccard(c) == 0.0
    assert list(scores(c)) == list(METRIC_NAMES)


def test_addition_pools_counts():
    assert ConfusionCounts(1, 2, 3, 4) + ConfusionCounts(10, 20, 30, 40) == ConfusionCounts(11, 22, 33, 44)


@pytest.mark.parametrize(("tp", "fp", "expected"), [(64, 36, 0.0), (65, 35, 0.65), (66, 34, 0.66)])
def test_thresholded_jaccard_cutoff(tp, fp, expected):
    assert thresholded_jaccard(ConfusionCounts(tp=tp, fp=fp, fn=0, tn=0)) == pytest.approx(expected)


def test_empty_prediction_and_truth_is_perfect():
    empty = np.zeros((3, 5), dtype=bool)
    s = scores(ConfusionCounts.from_masks(empty, empty))
    assert s == {name: 1.0 for name in METRIC_NAMES}


def test_degenerate_denominators():
    full = np.ones((2, 2), dtype=bool)
    assert specificity(ConfusionCounts.from_masks(full, full)) == 1.0  # no negatives
    fp_only = ConfusionCounts.from_masks(full, np.zeros((2, 2), dtype=bool))
    assert recall(fp_only) == 1.0
    assert dice(fp_only) == 0.0
    assert jaccard(fp_only) == 0.0
    assert accuracy(ConfusionCounts(0, 0, 0, 0)) == 1.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        ConfusionCounts.from_masks(PRED, np.zeros((4, 5), dtype=bool))


def test_non_bool_masks_rejected():
    with pytest.raises(TypeError):
        ConfusionCounts.from_masks(PRED.astype(np.uint8), TRUTH)


def test_negative_counts_rejected():
    with pytest.raises(ValueError):
        ConfusionCounts(-1, 0, 0, 0)


def test_pooled_differs_from_mean():
    big = ConfusionCounts(tp=90, fp=10, fn=0, tn=900)  # dice 180/190
    small = ConfusionCounts(tp=1, fp=0, fn=9, tn=90)  # dice 2/11
    summary = summarize([big, small])
    assert summary.n_images == 2
    assert summary.mean["dice"] == pytest.approx((180 / 190 + 2 / 11) / 2)
    assert summary.pooled["dice"] == pytest.approx(182 / 201)
    assert summary.pooled == scores(big + small)


def test_bootstrap_single_value_and_validation():
    assert bootstrap_ci([0.7]) == (0.7, 0.7)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([0.1, 0.2], confidence=1.0)


def test_bootstrap_contains_mean_narrows_and_is_deterministic():
    rng = np.random.default_rng(42)
    few = rng.uniform(0.5, 1.0, size=20)
    many = rng.uniform(0.5, 1.0, size=500)
    lo_few, hi_few = bootstrap_ci(few, n_resamples=500)
    lo_many, hi_many = bootstrap_ci(many, n_resamples=500)
    assert lo_few <= few.mean() <= hi_few
    assert lo_many <= many.mean() <= hi_many
    assert hi_many - lo_many < 0.5 * (hi_few - lo_few)
    assert bootstrap_ci(few, n_resamples=500, seed=3) == bootstrap_ci(few, n_resamples=500, seed=3)
    assert bootstrap_ci(few, n_resamples=500, seed=3) != bootstrap_ci(few, n_resamples=500, seed=4)


def test_summary_to_dict_and_table():
    per_image = [ConfusionCounts(tp=3, fp=2, fn=1, tn=10), ConfusionCounts(tp=8, fp=1, fn=1, tn=6)]
    summary = summarize(per_image, seed=1)
    d = json.loads(json.dumps(summary.to_dict()))
    assert d["n_images"] == 2
    assert set(d["metrics"]) == set(METRIC_NAMES)
    m = d["metrics"]["dice"]
    assert m["ci_low"] <= m["mean"] <= m["ci_high"]

    table = summary.format_table({"dice": 0.9071})
    lines = table.splitlines()
    assert lines[0] == "| metric | mean | 95% CI | pooled | paper |"
    dice_row = next(line for line in lines if line.startswith("| dice"))
    assert "90.71" in dice_row
    assert f"{100 * summary.mean['dice']:.2f}" in dice_row
    acc_row = next(line for line in lines if line.startswith("| accuracy"))
    assert acc_row.rstrip().endswith("| — |")
    assert not math.isnan(summary.mean["recall"])


def test_table_rejects_percent_and_unknown_paper_values():
    summary = summarize([ConfusionCounts(1, 1, 1, 1)])
    with pytest.raises(ValueError, match="fraction"):
        summary.format_table({"dice": 90.71})
    with pytest.raises(ValueError, match="unknown"):
        summary.format_table({"DC": 0.9})
