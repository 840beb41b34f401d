"""Can the network's own features tell plain skin from a lesion? A measurement for the quality issue's no-lesion target.

The quality issue asks for at least 90 % of plain-skin crops reported as "no lesion found" while the Dice on real
lesion images changes by less than 0.002. The shipped rule (``segmentation.quality``, on the model's output) and a
logistic rule on output and colour features do not carry over from HAM10000 to ISIC (``docs/QUALITY.md``, notes);
plain-skin negatives in training cost lesion Dice (arm E, ``docs/training/ARMS.md``). This script measures the one
idea left: an image-level "lesion present" output, separate from the mask, as a linear probe (ridge logistic
regression) on the network's pooled features (the bridge's 128 channels and the last decoder stage's 16, each
averaged and max-pooled over the image: 288 numbers), fitted on training images (lesions) against plain-skin crops
of training images, and tested on the HAM10000 hold-out and ISIC 2017 validation images and their crops, never
seen by the network or the probe. A mask is emptied when the probe's logit is above ``t``, alone or together with
the output's own uncertainty (``near_threshold`` above ``u``).

    .venv/bin/python scripts/lesion_present_probe.py [--weights FILE] [--shared ../shared/datasets]

Writes ``docs/training/lesion_present_probe.md`` and ``.json``. Nothing is shipped from it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from segmentation.imageio import atomic_write_bytes, read_image, read_mask  # noqa: E402
from segmentation.inference import Predictor, upsample_probability  # noqa: E402
from segmentation.metrics import ConfusionCounts, dice  # noqa: E402
from segmentation.preprocessing import prepare_input  # noqa: E402
from segmentation.quality import quality_features  # noqa: E402
from trainer.data import find_samples  # noqa: E402
from trainer.plain_skin import plain_skin_crop, write_plain_skin_folder  # noqa: E402
from trainer.quality import dataset_items, machine  # noqa: E402
from trainer.skin_check import fit_logistic  # noqa: E402
from trainer.splits import held_out_image_ids  # noqa: E402

PROBE_THRESHOLDS = (-1.0, 0.0, 1.0, 2.0, 3.0)
NEAR_GATES = (0.0, 1.0)  # 0: the probe alone
RIDGE = 10.0  # L2 penalty on the standardised weights (288 features, ~4,000 images)


class FeatureNetwork:
    """The predictor's PyTorch network with hooks: per image, the probability map and the pooled features."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.model = predictor.model.eval()
        self.taps: dict[str, torch.Tensor] = {}
        self.model.bridge.register_forward_hook(lambda _m, _i, out: self.taps.__setitem__("bridge", out))
        self.model.decoder[-1].register_forward_hook(lambda _m, _i, out: self.taps.__setitem__("decoder", out))

    def __call__(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        batch = np.stack([prepare_input(image, self.predictor.info.preprocessing) for image in images])
        with torch.inference_mode():
            probability = torch.sigmoid(self.model(torch.from_numpy(batch)))[:, 0].numpy()
        pooled = [self.taps[k].float() for k in ("bridge", "decoder")]
        features = torch.cat([f.mean((2, 3)) for f in pooled] + [f.amax((2, 3)) for f in pooled], 1).numpy()
        return features, probability


def run_batches(network: FeatureNetwork, images, batch: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    features, probabilities, pending = [], [], []
    for image in images:
        pending.append(image)
        if len(pending) == batch:
            f, p = network(pending)
            features.append(f)
            probabilities += list(p)
            pending = []
    if pending:
        f, p = network(pending)
        features.append(f)
        probabilities += list(p)
    return np.concatenate(features), probabilities


def training_set(network: FeatureNetwork, shared: Path, lesions: int, crops: int, seed: int) -> tuple:
    """Pooled features of training lesions (HAM10000 less the hold-out, ISIC 2017 training) and of plain-skin crops
    of training images (``data/plain_skin``, written here if missing; hold-out images are never cut)."""
    rng = np.random.default_rng(seed)
    held_out = held_out_image_ids()
    ham = [s.image for s in find_samples(shared / "ham10000/images", shared / "ham10000/masks")]
    ham = [p for p in ham if p.stem not in held_out]
    isic_dir = shared / "isic2017"
    isic = [
        s.image
        for s in find_samples(isic_dir / "ISIC-2017_Training_Data", isic_dir / "ISIC-2017_Training_Part1_GroundTruth")
    ]
    skin = REPO / "data" / "plain_skin"
    if not (skin / "images").is_dir():
        write_plain_skin_folder(
            [
                (isic_dir / "ISIC-2017_Training_Data", isic_dir / "ISIC-2017_Training_Part1_GroundTruth"),
                (shared / "ham10000/images", shared / "ham10000/masks"),
            ],
            skin,
        )
    crop_paths = sorted((skin / "images").glob("*.png"))
    n_isic = round(lesions * len(isic) / (len(isic) + len(ham)))
    chosen = list(rng.choice(ham, lesions - n_isic, replace=False)) + list(rng.choice(isic, n_isic, replace=False))
    chosen_crops = list(rng.choice(crop_paths, crops, replace=False))
    x, _ = run_batches(network, (read_image(p) for p in chosen + chosen_crops))
    y = np.r_[np.zeros(len(chosen)), np.ones(len(chosen_crops))]
    return x, y, {"lesions_ham": lesions - n_isic, "lesions_isic": n_isic, "crops": crops}


def held_out_set(network: FeatureNetwork, shared: Path) -> dict[str, np.ndarray]:
    """The HAM hold-out and ISIC validation images and their plain-skin crops: features, uncertainty, Dice."""
    isic = shared / "isic2017"
    items = dataset_items(
        shared / "ham10000", (isic / "ISIC-2017_Validation_Data", isic / "ISIC-2017_Validation_Part1_GroundTruth")
    )
    records: dict[str, list] = {k: [] for k in ("set", "kind", "features", "near", "outlined", "dice")}
    for subset, _image_id, image_path, mask_path in items:
        image, truth = read_image(image_path), read_mask(mask_path)
        entries = [("lesion", image, truth)]
        crop = plain_skin_crop(image, truth)
        if crop is not None:
            entries.append(("skin", crop, None))
        features, probabilities = network([e[1] for e in entries])
        for (kind, picture, expert), f, p in zip(entries, features, probabilities, strict=True):
            small = p >= 0.5
            score = np.nan
            if expert is not None:
                score = dice(ConfusionCounts.from_masks(upsample_probability(p, picture.shape[:2]) >= 0.5, expert))
            values = (subset, kind, f, quality_features(p, small)["near_threshold"], bool(small.any()), score)
            for key, value in zip(records, values, strict=True):
                records[key].append(value)
    return {k: np.array(v) for k, v in records.items()}


def outcomes(test: dict, logit: np.ndarray, t: float, u: float) -> dict[str, dict]:
    """Per set: share of crops reported "no lesion found" (empty from the network, or emptied), real lesions
    emptied and the mean Dice change that costs."""
    emptied = (logit > t) & (test["near"] > u) & test["outlined"]
    result = {}
    for name in ("ham", "isic"):
        skin = (test["set"] == name) & (test["kind"] == "skin")
        lesion = (test["set"] == name) & (test["kind"] == "lesion")
        gone = lesion & emptied
        result[name] = {
            "crops": int(skin.sum()),
            "no_lesion_share": float((emptied | ~test["outlined"])[skin].mean()),
            "lesions": int(lesion.sum()),
            "lesions_emptied": int(gone.sum()),
            "dice_of_emptied": [round(float(d), 3) for d in test["dice"][gone]],
            "dice_change": -float(test["dice"][gone].sum()) / int(lesion.sum()),
        }
    return result


def reading(report: dict) -> str:
    """What the table says about the target, computed from it."""
    lines = []
    for name, label in (("ham", "HAM hold-out"), ("isic", "ISIC validation")):
        points = [(e["t"], e["u"], e[name]) for e in report["operating_points"]]
        meets = [p for p in points if p[2]["no_lesion_share"] >= 0.9 and abs(p[2]["dice_change"]) < 0.002]
        safe = [p for p in points if abs(p[2]["dice_change"]) < 0.002]
        reach = [p for p in points if p[2]["no_lesion_share"] >= 0.9]
        text = f"- {label}: " + (
            f"{len(meets)} operating point(s) meet both halves." if meets else "no operating point meets both halves."
        )
        if safe:
            best = max(safe, key=lambda p: p[2]["no_lesion_share"])
            text += f" Within the 0.002 Dice limit at most {100 * best[2]['no_lesion_share']:.1f} % of the crops."
        if reach:
            cheapest = max(reach, key=lambda p: p[2]["dice_change"])
            text += (
                f" Reaching 90 % costs at least {-cheapest[2]['dice_change']:.4f} Dice "
                f"({cheapest[2]['lesions_emptied']} real lesions emptied)."
            )
        lines.append(text)
    return "\n".join(lines)


def markdown(report: dict) -> str:
    rows = [
        "| emptied when | HAM crops no lesion | HAM lesions emptied | HAM Dice change | ISIC crops no lesion | "
        "ISIC lesions emptied (their Dice) | ISIC Dice change |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for entry in report["operating_points"]:
        rule = f"probe logit > {entry['t']:+.0f}" + (f" and near_threshold > {entry['u']:.0f}" if entry["u"] else "")
        h, i = entry["ham"], entry["isic"]
        rows.append(
            f"| {rule} | {100 * h['no_lesion_share']:.1f} % | {h['lesions_emptied']} of {h['lesions']} | "
            f"{h['dice_change']:+.4f} | {100 * i['no_lesion_share']:.1f} % | {i['lesions_emptied']} of {i['lesions']} "
            f"({', '.join(f'{d:.2f}' for d in i['dice_of_emptied']) or '—'}) | {i['dice_change']:+.4f} |"
        )
    base = report["without_rule"]
    return f"""# A "lesion present" probe on the network's features (the quality issue's no-lesion target)

Generated by `scripts/lesion_present_probe.py` for `{report["model"]}` on {report["machine"]},
{report["date"]} ({report["seconds"]:.0f} s). Target (quality issue): at least 90 % of plain-skin crops "no lesion
found", Dice on real lesion images changing by less than 0.002.

Probe: ridge logistic regression (λ = {RIDGE}) on the 288 pooled features of the network (bridge and last decoder
stage, mean and max over the image), fitted on {report["training"]["lesions_ham"]} HAM10000 and
{report["training"]["lesions_isic"]} ISIC 2017 training images (lesions) against {report["training"]["crops"]}
plain-skin crops of training images. Tested on images neither the network nor the probe saw: the HAM10000 hold-out
({base["ham"]["lesions"]} images, {base["ham"]["crops"]} crops) and ISIC 2017 validation ({base["isic"]["lesions"]}
images, {base["isic"]["crops"]} crops). Without any rule the network itself leaves
{100 * base["ham"]["no_lesion_share"]:.1f} % (HAM) and {100 * base["isic"]["no_lesion_share"]:.1f} % (ISIC) of the
crops empty.

{chr(10).join(rows)}

{reading(report)}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=REPO / "resources/models/lesionlens.safetensors")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--lesions", type=int, default=1900, help="training lesion images for the probe")
    parser.add_argument("--crops", type=int, default=2000, help="training plain-skin crops for the probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "docs/training/lesion_present_probe")
    parser.add_argument("--page-only", action="store_true", help="rewrite the .md from the .json, measuring nothing")
    args = parser.parse_args(argv)
    if args.page_only:
        report = json.loads(args.out.with_suffix(".json").read_text())
        atomic_write_bytes(args.out.with_suffix(".md"), markdown(report).encode())
        return 0
    started = time.time()
    predictor = Predictor(args.weights, "cpu", backend="torch")
    network = FeatureNetwork(predictor)
    x, y, training = training_set(network, args.shared, args.lesions, args.crops, args.seed)
    mean, scale, w = fit_logistic(x, y, RIDGE)
    test = held_out_set(network, args.shared)
    logit = np.c_[np.ones(len(test["features"])), (test["features"] - mean) / scale] @ w
    report = {
        "model": predictor.info.name,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "training": training,
        "without_rule": outcomes(test, logit, np.inf, 0.0),
        "operating_points": [
            {"t": t, "u": u, **outcomes(test, logit, t, u)} for u in NEAR_GATES for t in PROBE_THRESHOLDS
        ],
    }
    report["seconds"] = time.time() - started
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(args.out.with_suffix(".md"), markdown(report).encode())
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
