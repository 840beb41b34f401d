"""Which features should the plain-skin check read? The comparison behind ``segmentation/skin_check.py``.

Each variant is fitted and scored exactly as the shipped check is (``trainer/skin_check.py``): ridge logistic
regression on training images (``--ham-images``, ``--isic-images``; the page in ``docs/training`` was made with 1,200
and 700) and their plain-skin crops plus the HAM10000 hold-out, its operating point chosen out of fold on the
hold-out (5 folds by ``lesion_id``, real lesions emptied costing at most 0.0015 of their mean Dice), then scored on
the hold-out out of fold and on ISIC 2017 validation (images and crops that neither
the network nor the probe saw). Only what the probe reads changes:

- ``two stages, mean and max``: the bridge and the last decoder stage (the 2026-12-03 probe's 288 numbers);
- ``output and colour``: the estimator's features of the probability map, CIE Lab means inside and outside the mask,
  the image's Lab spread and lightness percentiles;
- ``seven stages, inside minus outside``: each stage's channel means inside the mask minus outside it;
- ``seven stages, mean and max`` and ``seven stages, mean, max and spread`` (the shipped summary).

    .venv/bin/python scripts/skin_check_variants.py [--ham-images N --isic-images N] [--cache runs/variants.npz]

Writes ``docs/training/skin_check_variants.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from segmentation.imageio import atomic_write_bytes  # noqa: E402
from segmentation.inference import Predictor, upsample_probability  # noqa: E402
from segmentation.metrics import ConfusionCounts, dice  # noqa: E402
from segmentation.preprocessing import prepare_input  # noqa: E402
from segmentation.quality import quality_features, transform_feature  # noqa: E402
from trainer.plain_skin import pictures  # noqa: E402
from trainer.quality import dataset_items, machine  # noqa: E402
from trainer.skin_check import DICE_BUDGET, TRAINING_LESIONS, fit_probe, training_items  # noqa: E402
from trainer.splits import read_lesion_ids  # noqa: E402

OUTPUT_FEATURES = (
    "soft_dice",
    "near_threshold",
    "band_uncertainty",
    "lesion_share",
    "border_contact",
    "components",
    "mean_inside",
    "soft_area",
)


def describe(model: torch.nn.Module, preprocessing, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per image: each stage's channel mean, max, spread, mean inside and outside the model's mask; the output
    features; the colour features."""
    batch = torch.from_numpy(np.stack([prepare_input(image, preprocessing) for image in images]))
    with torch.inference_mode():
        logits, stages = model.forward_stages(batch)
    probability = torch.sigmoid(logits)
    mask = (probability >= 0.5).float()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("mean", "max", "std", "inside", "outside")}
    for stage in stages:
        share = torch.nn.functional.interpolate(mask, size=stage.shape[2:], mode="area")
        inside = (stage * share).sum((2, 3)) / share.sum((2, 3)).clamp(min=1e-3)
        outside = (stage * (1 - share)).sum((2, 3)) / (1 - share).sum((2, 3)).clamp(min=1e-3)
        values = (stage.mean((2, 3)), stage.amax((2, 3)), stage.std((2, 3)), inside, outside)
        for key, value in zip(parts, values, strict=True):
            parts[key].append(value)
    record = {key: torch.cat(values, 1).numpy() for key, values in parts.items()}
    output, colour = [], []
    for image, p in zip(images, probability[:, 0].numpy(), strict=True):
        q = quality_features(p, p >= 0.5)
        output.append([transform_feature(n, q[n]) for n in OUTPUT_FEATURES])
        small = cv2.resize(image, (p.shape[1], p.shape[0]), interpolation=cv2.INTER_AREA)
        lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32).reshape(-1, 3)
        m = (p >= 0.5).reshape(-1)
        inside = lab[m].mean(0) if m.any() else lab.mean(0)
        outside = lab[~m].mean(0) if (~m).any() else lab.mean(0)
        colour.append(np.r_[inside, outside, lab.std(0), np.percentile(lab[:, 0], [5, 50, 95])])
    record["output"], record["colour"] = np.array(output), np.array(colour)
    record["prob"] = probability[:, 0].numpy()
    return record


def collect(predictor: Predictor, items: list[tuple[str, str, Path, Path]]) -> dict:
    """Every image of ``items`` and its plain-skin crop (``trainer.quality.pictures``), described 16 at a time; with
    the Dice of the app's mask where the expert's mask is known."""
    model = predictor.model.eval()
    chunks, entries = [], pictures(items)
    while chunk := list(itertools.islice(entries, 16)):
        record = describe(model, predictor.info.preprocessing, [e[3] for e in chunk])
        scores, outlined = [], []
        for entry, p in zip(chunk, record.pop("prob"), strict=True):
            truth = entry[4]
            mask = upsample_probability(p, entry[3].shape[:2]) >= 0.5
            scores.append(np.nan if truth is None else dice(ConfusionCounts.from_masks(mask, truth)))
            outlined.append(bool(mask.any()))
        record["dice"], record["outlined"] = np.array(scores), np.array(outlined)
        for index, key in enumerate(("set", "id", "kind")):
            record[key] = np.array([e[index] for e in chunk])
        chunks.append(record)
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


VARIANTS = {
    "two stages (bridge, last decoder stage), mean and max": lambda d: np.c_[
        d["mean"][:, STAGES["bridge"]],
        d["mean"][:, STAGES["last"]],
        d["max"][:, STAGES["bridge"]],
        d["max"][:, STAGES["last"]],
    ],
    "output and colour features": lambda d: np.c_[d["output"], d["colour"]],
    "seven stages, mean inside minus outside the mask": lambda d: d["inside"] - d["outside"],
    "seven stages, mean and max": lambda d: np.c_[d["mean"], d["max"]],
    "seven stages, mean, max and spread (shipped)": lambda d: summary_order(d),
}
STAGES: dict[str, slice] = {}


def summary_order(d: dict) -> np.ndarray:
    """The shipped summary's order (``segmentation.network.summarise``): per stage, mean, max, spread."""
    blocks, start = [], 0
    for width in WIDTHS:
        part = slice(start, start + width)
        blocks += [d["mean"][:, part], d["max"][:, part], d["std"][:, part]]
        start += width
    return np.concatenate(blocks, 1)


WIDTHS: list[int] = []


def score(name: str, train: dict, test: dict, groups: np.ndarray) -> dict:
    x_train, x_test = VARIANTS[name](train), VARIANTS[name](test)
    probe, out_of_fold = fit_probe(
        {"summary": x_train, "kind": train["kind"]},
        {"summary": x_test, "kind": test["kind"], "set": test["set"], "dice": test["dice"]},
        groups,
        test["outlined"],
    )
    final = np.array([probe.logit(x) for x in x_test])
    result = {"features": int(x_test.shape[1]), "above": probe.above}
    for label, subset, logit in (("ham_out_of_fold", "ham", out_of_fold), ("isic", "isic", final)):
        rows = test["set"] == subset
        lesion, skin = rows & (test["kind"] == "lesion"), rows & (test["kind"] == "skin")
        emptied = test["outlined"] & (logit > probe.above)
        gone = lesion & emptied
        result[label] = {
            "crops_no_lesion_share": float((emptied | ~test["outlined"])[skin].mean()),
            "lesions_emptied": int(gone.sum()),
            "dice_of_emptied": [round(float(v), 2) for v in test["dice"][gone]],
            "dice_change": float(-test["dice"][gone].sum() / lesion.sum()) + 0.0,
        }
    return result


def markdown(report: dict) -> str:
    rows = [
        "| the probe reads | numbers | HAM crops no lesion (out of fold) | HAM lesions emptied | HAM Dice change | "
        "ISIC crops no lesion | ISIC lesions emptied (their Dice) | ISIC Dice change |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in report["variants"].items():
        h, i = r["ham_out_of_fold"], r["isic"]
        rows.append(
            f"| {name} | {r['features']} | {100 * h['crops_no_lesion_share']:.1f} % | {h['lesions_emptied']} | "
            f"{h['dice_change']:+.4f} | {100 * i['crops_no_lesion_share']:.1f} % | {i['lesions_emptied']}"
            f"{' (' + ', '.join(f'{d:.2f}' for d in i['dice_of_emptied']) + ')' if i['dice_of_emptied'] else ''} | "
            f"{i['dice_change']:+.4f} |"
        )
    return f"""# What the plain-skin check reads: the comparison

Generated by `scripts/skin_check_variants.py` for `{report["model"]}` on {report["machine"]}, {report["date"]}
({report["seconds"]:.0f} s). Every variant is fitted and scored as the shipped check is (`trainer/skin_check.py`):
ridge logistic regression on {report["training"]} plus the HAM10000 hold-out; operating point out of fold on the
hold-out (5 folds by `lesion_id`; real lesions emptied cost at most {DICE_BUDGET} of the mean Dice); scored out of
fold on the hold-out ({report["ham"]}) and on ISIC 2017 validation ({report["isic"]}). Target (quality issue): at
least 90 % of the crops "no lesion found", mean Dice on real lesion images changing by less than 0.002.

{chr(10).join(rows)}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--weights", type=Path, default=REPO / "resources/models/lesionlens.safetensors")
    parser.add_argument("--cache", type=Path, help="keep the network's outputs here (reused for the same tensors)")
    parser.add_argument("--out", type=Path, default=REPO / "docs/training/skin_check_variants")
    parser.add_argument("--ham-images", type=int, default=TRAINING_LESIONS["ham"], help="HAM10000 training images")
    parser.add_argument("--isic-images", type=int, default=TRAINING_LESIONS["isic"], help="ISIC 2017 training images")
    args = parser.parse_args(argv)
    started = time.time()
    predictor = Predictor(args.weights, "cpu", backend="torch")
    network = predictor.model
    with torch.inference_mode():
        _logits, stages = network.forward_stages(torch.zeros(1, 3, *predictor.info.preprocessing.input_size))
    widths = [s.shape[1] for s in stages]
    WIDTHS[:] = widths
    STAGES["bridge"] = slice(sum(widths[:3]), sum(widths[:4]))
    STAGES["last"] = slice(sum(widths[:6]), sum(widths))
    ham, isic = args.shared / "ham10000", args.shared / "isic2017"
    cached = None
    if args.cache is not None and args.cache.exists():
        cached = dict(np.load(args.cache, allow_pickle=False))
        if str(cached.get("weights_sha256", "")) != predictor.info.sha256:
            cached = None
    if cached is None:
        counts = {"ham": args.ham_images, "isic": args.isic_images}
        pairs = [("train", p.stem, p, m) for p, m in training_items(ham, isic, counts)]
        validation = (isic / "ISIC-2017_Validation_Data", isic / "ISIC-2017_Validation_Part1_GroundTruth")
        train = collect(predictor, pairs)
        test = collect(predictor, dataset_items(ham, validation))
        if args.cache is not None:
            flat = {f"train_{k}": v for k, v in train.items()} | {f"test_{k}": v for k, v in test.items()}
            np.savez_compressed(args.cache, weights_sha256=predictor.info.sha256, **flat)
    else:
        train = {k[6:]: v for k, v in cached.items() if k.startswith("train_")}
        test = {k[5:]: v for k, v in cached.items() if k.startswith("test_")}
    lesion_of = read_lesion_ids(ham / "HAM10000_metadata.csv")
    groups = np.array([lesion_of.get(str(i), str(i)) for i in test["id"]])
    report = {
        "model": predictor.info.name,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "training": (
            f"{int((train['kind'] == 'lesion').sum())} training images and "
            f"{int((train['kind'] == 'skin').sum())} crops of them"
        ),
        "ham": f"{int(((test['set'] == 'ham') & (test['kind'] == 'lesion')).sum())} images, "
        f"{int(((test['set'] == 'ham') & (test['kind'] == 'skin')).sum())} crops",
        "isic": f"{int(((test['set'] == 'isic') & (test['kind'] == 'lesion')).sum())} images, "
        f"{int(((test['set'] == 'isic') & (test['kind'] == 'skin')).sum())} crops",
        "variants": {name: score(name, train, test, groups) for name in VARIANTS},
    }
    report["seconds"] = time.time() - started
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(args.out.with_suffix(".md"), markdown(report).encode())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
