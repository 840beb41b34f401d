"""Fit the plain-skin check (``segmentation.skin_check``) for a weights file, and measure "no lesion found".

Fitted with the quality estimator (``trainer.quality.refit``, so the regenerate-all command refits it): a ridge
logistic regression on the summaries of the network's stages (``segmentation.network.summarise``) of
- training images, 4,000 of HAM10000 outside the hold-out (seed 0) and all 2,000 of ISIC 2017 training, and the
  plain-skin crop of each (``trainer.plain_skin``);
- the HAM10000 hold-out's images and their crops, the set the estimator is fitted on.

The operating point is chosen out of fold on the hold-out (5 folds by lesion: each fold's images are scored by a
probe fitted without them): the lowest logit above which the hold-out's real lesion images that would be emptied
cost at most ``DICE_BUDGET`` of their mean Dice. The quality issue allows 0.002; the margin leaves room for the
difference between the fold probes and the one fitted on everything.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from segmentation.inference import Predictor
from segmentation.quality import QualityEstimator
from segmentation.skin_check import PlainSkinProbe
from trainer.data import find_samples
from trainer.plain_skin import pictures
from trainer.splits import held_out_image_ids

TRAINING_LESIONS = {"ham": 4000, "isic": 2000}  # 1,200 + 700 reached 76.6 % of the ISIC crops, this 90.8 %
RIDGE = 10.0  # L2 penalty on the standardised weights (1,056 summary values, ~13,000 examples)
DICE_BUDGET = 0.0015
FOLDS = 5


def training_items(ham: Path, isic: Path, counts: dict[str, int] = TRAINING_LESIONS, seed: int = 0) -> list:
    """(image, expert mask) pairs drawn from the training images: HAM10000 less the hold-out, ISIC 2017 training."""
    rng = np.random.default_rng(seed)
    held_out = held_out_image_ids()
    pools = {
        "ham": [s for s in find_samples(ham / "images", ham / "masks") if s.image.stem not in held_out],
        "isic": find_samples(isic / "ISIC-2017_Training_Data", isic / "ISIC-2017_Training_Part1_GroundTruth"),
    }
    chosen = []
    for name, pool in pools.items():
        count = min(counts[name], len(pool))
        chosen += [(pool[i].image, pool[i].mask) for i in sorted(rng.choice(len(pool), count, replace=False))]
    return chosen


def collect_training(predictor: Predictor, pairs: list[tuple[Path, Path]], batch: int = 16) -> dict[str, np.ndarray]:
    """The stage summaries of each training image (a lesion) and of its plain-skin crop (``kind`` skin)."""
    summaries, kinds = [], []
    entries = pictures([("train", image.stem, image, mask) for image, mask in pairs])
    while chunk := list(itertools.islice(entries, batch)):
        summaries.append(predictor.model_outputs([picture for _s, _i, _k, picture, _m in chunk])[1])
        kinds.extend(kind for _s, _i, kind, _p, _m in chunk)
    return {"summary": np.concatenate(summaries).astype(np.float32), "kind": np.array(kinds)}


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge logistic regression by Newton steps on standardised features: (mean, scale, [intercept, weights])."""
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0  # a constant summary value (a dead channel) carries nothing
    z = np.c_[np.ones(len(x)), (x - mean) / scale]
    w = np.zeros(z.shape[1])
    penalty = ridge * np.eye(len(w))
    penalty[0, 0] = 0.0
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30.0, 30.0)))
        step = np.linalg.solve((z * (p * (1 - p))[:, None]).T @ z + penalty, z.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return mean, scale, w


def logits(fitted: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    mean, scale, w = fitted
    return w[0] + ((x - mean) / scale) @ w[1:]


def choose_above(logit: np.ndarray, outlined: np.ndarray, dice: np.ndarray, budget: float = DICE_BUDGET) -> float:
    """The lowest ``above`` whose emptied real lesions (outlined, logit above it) cost at most ``budget`` of the mean
    Dice of all of them; ``logit``, ``outlined`` and ``dice`` are the real lesion images'."""
    order = np.argsort(-logit)
    cost = np.cumsum(np.where(outlined[order], dice[order], 0.0)) / len(logit)
    over = np.flatnonzero(cost > budget)
    return float(logit[order[over[0]]]) if len(over) else float(logit.min()) - 1.0


def fit_probe(
    training: dict, data: dict, groups: np.ndarray, outlined: np.ndarray, budget: float = DICE_BUDGET
) -> tuple[PlainSkinProbe, np.ndarray]:
    """The probe fitted on the training examples and the whole HAM hold-out, its operating point chosen out of fold;
    also the out-of-fold logits of the hold-out's records (NaN elsewhere), for an honest measurement."""
    ham = data["set"] == "ham"
    x_train, y_train = training["summary"].astype(np.float64), (training["kind"] == "skin").astype(float)
    x, y = data["summary"].astype(np.float64), (data["kind"] == "skin").astype(float)
    unique = np.unique(groups[ham])
    fold_of = dict(zip(unique, np.random.default_rng(1).permutation(len(unique)) % FOLDS, strict=True))
    fold = np.array([fold_of.get(g, -1) if h else -1 for g, h in zip(groups, ham, strict=True)])
    out_of_fold = np.full(len(x), np.nan)
    for k in range(FOLDS):
        fitting = ham & (fold != k)
        fitted = fit_logistic(np.r_[x_train, x[fitting]], np.r_[y_train, y[fitting]])
        out_of_fold[fold == k] = logits(fitted, x[fold == k])
    lesions = ham & (data["kind"] == "lesion")
    above = choose_above(out_of_fold[lesions], outlined[lesions], data["dice"][lesions].astype(float), budget)
    mean, scale, w = fit_logistic(np.r_[x_train, x[ham]], np.r_[y_train, y[ham]])
    probe = PlainSkinProbe(
        mean=tuple(mean),
        scale=tuple(scale),
        weights=tuple(w[1:]),
        intercept=float(w[0]),
        above=above,
        fitted_on={
            "data": (
                f"{int((training['kind'] == 'lesion').sum())} training images and "
                f"{int((training['kind'] == 'skin').sum())} plain-skin crops of them (HAM10000 outside the hold-out, "
                f"ISIC 2017 training), and the HAM10000 hold-out's {int(lesions.sum())} images and "
                f"{int((ham & (data['kind'] == 'skin')).sum())} crops"
            ),
            "ridge": RIDGE,
            "operating_point": (
                f"the lowest logit at which the hold-out's real lesions it would empty cost at most {budget} of "
                f"their mean Dice, out of fold ({FOLDS} folds by lesion_id)"
            ),
        },
    )
    return probe, out_of_fold


def no_lesion_outcome(
    estimator: QualityEstimator, rows: list[dict], data: dict, index: np.ndarray, logit: np.ndarray
) -> dict:
    """What "no lesion found" does on one set (``index``: its records): on its plain-skin crops, and on its real
    lesion images (emptied ones count Dice 0). ``logit``: the plain-skin probe's logits of all records."""
    kinds, dice = data["kind"][index], data["dice"][index].astype(float)
    outlined = np.array([rows[i]["lesion_share"] > 0 for i in index])
    rule = np.array([outlined[j] and estimator.is_no_lesion(rows[i]) for j, i in enumerate(index)])
    above = estimator.plain_skin.above if estimator.plain_skin is not None else np.inf
    emptied = rule | (outlined & (logit[index] > above))
    lesion, skin = kinds == "lesion", kinds == "skin"
    return {
        "lesions": int(lesion.sum()),
        "lesions_emptied": int((emptied & lesion).sum()),
        "dice_of_emptied": [round(float(d), 3) for d in dice[emptied & lesion]],
        "dice_change": float(-dice[emptied & lesion].sum() / max(int(lesion.sum()), 1)) + 0.0,
        "crops": int(skin.sum()),
        "crops_outlined_share": float(outlined[skin].mean()) if skin.any() else float("nan"),
        "crops_no_lesion_rule_share": float((~outlined | rule)[skin].mean()) if skin.any() else float("nan"),
        "crops_no_lesion_share": float((~outlined | emptied)[skin].mean()) if skin.any() else float("nan"),
    }
