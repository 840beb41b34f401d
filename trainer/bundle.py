"""``python -m trainer bundle RUN_DIR``: make a run's best epoch the app's model and regenerate all that depends on it.

One command, so a retrain (on this machine or a lent GPU) updates everything in one step:

1. the weights file ``resources/models/lesionlens.safetensors`` (``trainer export``);
2. the SHA-256 pinned in ``segmentation/bundled_model.py`` (the app refuses a bundled file that does not match);
3. validation and full-resolution metrics (``docs/model/*.json``, per-image CSV) through the app's predictor;
4. ``docs/MODEL_CARD.md`` and the results block of ``README.md`` (hand-written notes between markers are kept);
5. the figures ``docs/figures/validation_examples.png`` and ``docs/figures/worst_validation.png``;
6. the regression floor ``tests/data/regression_floor.json`` (mean Dice on 20 fixed validation images minus 0.02);
7. the bundle self-test reference mask ``resources/selftest/`` (what the Python build predicts for a sample);
8. the run's small records (``config.json``, ``log.csv``) in ``docs/training/``, with ``curves.png`` redrawn;
9. the inference-side levers measured on the validation set (``trainer.gap``: clean-up, flip averaging).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import re
import shutil
from pathlib import Path

import cv2
import numpy as np

from segmentation.imageio import atomic_write_bytes, read_image, read_mask, write_mask
from segmentation.inference import Predictor
from segmentation.metrics import METRIC_ABBREVIATIONS, METRIC_NAMES, ConfusionCounts, MetricSummary, scores
from segmentation.network import build_model, count_macs, count_parameters
from segmentation.resources import DEFAULT_WEIGHTS_NAME, resources_dir
from segmentation.selftest import selftest_files
from segmentation.weights import file_sha256
from trainer.evaluate import PAPER_ROWS, evaluate_folder
from trainer.export import export_run
from trainer.gap import gap_sentence, measure_variants, variants_table, where_the_gap_is
from trainer.plots import plot_curves

REPO = Path(__file__).resolve().parent.parent
VALIDATION = ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth")
FULLRES = ("images", "masks")
REGRESSION_IMAGES = 20
REGRESSION_MARGIN = 0.02
EXAMPLE_IDS = ("ISIC_0001769", "ISIC_0012099", "ISIC_0012417", "ISIC_0013491", "ISIC_0014211", "ISIC_0014809")
PIN_FILE = REPO / "segmentation" / "bundled_model.py"
NOTES = re.compile(r"<!-- notes:start -->.*?<!-- notes:end -->", re.S)
README_BLOCK = re.compile(r"<!-- model-results:start -->.*?<!-- model-results:end -->", re.S)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bundle", help="make a run's best epoch the app's model and regenerate its docs")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "isic2017")
    parser.add_argument(
        "--fullres", type=Path, default=REPO.parent / "shared" / "datasets" / "isic2017-fullres-samples"
    )
    parser.add_argument("--name", help="model name shown in the app (default: lesionlens-<run folder>)")
    parser.add_argument("--hardware", default="", help="what it was trained on, for the model card")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    weights = resources_dir() / "models" / DEFAULT_WEIGHTS_NAME
    weights.parent.mkdir(parents=True, exist_ok=True)
    info = export_run(args.run_dir, weights, name=args.name or f"lesionlens-{args.run_dir.name}")
    pin_hash(file_sha256(weights))
    predictor = Predictor(weights, "cpu")
    validation, rows = evaluate(predictor, args.data / VALIDATION[0], args.data / VALIDATION[1])
    fullres, fullres_rows = evaluate(predictor, args.fullres / FULLRES[0], args.fullres / FULLRES[1])
    variants = measure_variants(predictor, args.data / VALIDATION[0], args.data / VALIDATION[1])
    model_dir = REPO / "docs" / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    _write_json(
        model_dir / "inference_variants.json",
        {"model": info.name, "sha256": info.sha256, **{name: s.to_dict() for name, s in variants.items()}},
    )
    for name, summary, per_image in (("validation", validation, rows), ("fullres", fullres, fullres_rows)):
        _write_json(model_dir / f"{name}.json", {"model": info.name, "sha256": info.sha256, **summary.to_dict()})
        _write_csv(model_dir / f"{name}_per_image.csv", per_image)
    worst = sorted(rows, key=lambda r: r["dice"])[:5]
    figures = REPO / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    draw_examples(
        predictor,
        args.data,
        [i for i in EXAMPLE_IDS if (args.data / VALIDATION[0] / f"{i}.jpg").exists()],
        figures / "validation_examples.png",
    )
    draw_examples(predictor, args.data, [Path(r["image"]).stem for r in worst], figures / "worst_validation.png")
    floor = regression_floor(rows, info.sha256)
    _write_json(REPO / "tests" / "data" / "regression_floor.json", floor)
    write_selftest_reference(predictor)
    copy_training_records(args.run_dir)
    context = card_context(predictor, info, validation, fullres, worst, floor, args.hardware)
    context["variants_table"] = variants_table(variants)
    context["gap"] = gap_sentence(where_the_gap_is([r["dice"] for r in rows]), len(rows))
    write_model_card(context)
    update_readme(context)
    print(
        f"bundled {info.name} ({info.short_hash}): validation Dice {validation.mean['dice']:.4f}, "
        f"full-resolution Dice {fullres.mean['dice']:.4f}; regression floor {floor['floor']:.4f}"
    )
    return 0


def evaluate(predictor: Predictor, images: Path, masks: Path) -> tuple[MetricSummary, list[dict]]:
    """``trainer.evaluate.evaluate_folder`` without its timing column, so regenerated per-image files only change
    when the scores do."""
    summary, rows = evaluate_folder(predictor, images, masks)
    return summary, [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def regression_floor(rows: list[dict], sha256: str) -> dict:
    """The first 20 validation images by name: a fixed set, measured now; the test allows 0.02 less."""
    fixed = sorted(rows, key=lambda r: r["image"])[:REGRESSION_IMAGES]
    mean = float(np.mean([r["dice"] for r in fixed]))
    return {
        "weights_sha256": sha256,
        "images": [r["image"] for r in fixed],
        "mean_dice": round(mean, 5),
        "floor": round(mean - REGRESSION_MARGIN, 5),
    }


def pin_hash(sha256: str) -> None:
    text = PIN_FILE.read_text() if PIN_FILE.exists() else ""
    line = f'BUNDLED_WEIGHTS_SHA256: str | None = "{sha256}"'
    if re.search(r"^BUNDLED_WEIGHTS_SHA256.*$", text, re.M):
        text = re.sub(r"^BUNDLED_WEIGHTS_SHA256.*$", line, text, flags=re.M)
    else:
        text = f'"""SHA-256 of the bundled weights\' tensors; written by ``python -m trainer bundle``."""\n\n{line}\n'
    atomic_write_bytes(PIN_FILE, text.encode())


def write_selftest_reference(predictor: Predictor) -> None:
    """What ``lesionlens --self-test`` compares the bundle's mask with (paths from ``segmentation.selftest``)."""
    files = selftest_files()
    files.reference.parent.mkdir(parents=True, exist_ok=True)
    write_mask(files.reference, predictor.predict(read_image(files.sample)).mask)


def copy_training_records(run_dir: Path) -> None:
    target = REPO / "docs" / "training"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "log.csv"):
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, target / name)
    if (target / "log.csv").exists():  # redrawn, so the figure follows the current plotting code
        batch_size = json.loads((target / "config.json").read_text()).get("batch_size", 16)
        plot_curves(target / "log.csv", target / "curves.png", batch_size=batch_size)


def draw_examples(predictor: Predictor, data: Path, ids: list[str], out: Path) -> None:
    """Validation images with the expert's boundary (green) and the model's (magenta), Dice in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(ids), figsize=(3.2 * len(ids), 2.9))
    for axis, image_id in zip(np.atleast_1d(axes), ids, strict=True):
        image = read_image(data / VALIDATION[0] / f"{image_id}.jpg")
        truth = read_mask(data / VALIDATION[1] / f"{image_id}_segmentation.png")
        prediction = predictor.predict(image).mask
        drawn = image.copy()
        for mask, colour in ((truth, (0, 220, 0)), (prediction, (255, 0, 255))):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(drawn, contours, -1, colour, 2)
        dice = scores(ConfusionCounts.from_masks(prediction, truth))["dice"]
        axis.imshow(drawn)
        axis.set_title(f"{image_id}  Dice {dice:.3f}", fontsize=9)
        axis.axis("off")
    figure.suptitle("green: expert boundary, magenta: LesionLens", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    atomic_write_bytes(out, buffer.getvalue())


def metrics_table(summary: MetricSummary, paper: dict[str, float] | None) -> str:
    lines = ["| metric | mean over images | 95 % CI | pooled over pixels | paper |", "|---|---:|---:|---:|---:|"]
    for name in METRIC_NAMES:
        low, high = summary.ci[name]
        reference = f"{100 * paper[name]:.2f}" if paper and name in paper else "—"
        lines.append(
            f"| {METRIC_ABBREVIATIONS[name]} ({name.replace('_', ' ')}) | {100 * summary.mean[name]:.2f} | "
            f"{100 * low:.2f}–{100 * high:.2f} | {100 * summary.pooled[name]:.2f} | {reference} |"
        )
    return "\n".join(lines)


def card_context(
    predictor: Predictor,
    info,
    validation: MetricSummary,
    fullres: MetricSummary,
    worst: list[dict],
    floor: dict,
    hardware: str,
) -> dict:
    training = info.training
    config = training.get("config", {})
    model = build_model(info.network)
    height, width = info.preprocessing.input_size
    hours = training.get("training_seconds", 0) / 3600
    images = training.get("steps", 0) * config.get("batch_size", 16)
    return {
        "name": info.name,
        "sha256": info.sha256,
        "variant": info.network.variant,
        "width": info.network.base_width,
        "parameters": f"{count_parameters(model):,}",
        "gmacs": f"{count_macs(model, height, width) / 1e9:.2f}",
        "input": f"{height}x{width}",
        "interpolation": info.preprocessing.interpolation,
        "epochs": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "steps": training.get("steps"),
        "hours": f"{hours:.1f}",
        "images_per_second": f"{images / max(1.0, training.get('training_seconds', 1.0)):.1f}",
        "recipe": config,
        "hardware": hardware or platform.processor() or platform.machine(),
        "validation_table": metrics_table(validation, PAPER_ROWS["validation"]),
        "fullres_table": metrics_table(fullres, None),
        "validation_dice": f"{100 * validation.mean['dice']:.2f}",
        "n_validation": validation.n_images,
        "n_fullres": fullres.n_images,
        "worst": "\n".join(f"| {r['image']} | {r['dice']:.3f} | {r['jaccard']:.3f} |" for r in worst),
        "floor": floor,
        "code_version": training.get("code_version", ""),
        "file_sha256": file_sha256(predictor.weights_path),
    }


def write_model_card(context: dict) -> None:
    path = REPO / "docs" / "MODEL_CARD.md"
    notes = (
        NOTES.search(path.read_text()).group(0)
        if path.exists() and NOTES.search(path.read_text())
        else (
            "<!-- notes:start -->\n_Failure modes: to be written after looking at the worst cases._\n<!-- notes:end -->"
        )
    )
    c = context
    recipe = c["recipe"]
    warm = (
        f"\n- Continued (`trainer train --warm-start`) from `{recipe['warm_start']}` (the model bundled before "
        "this one) after the run folder was lost: model and counters from that file, the schedule carried on "
        "from its epoch (with the planned epochs above), the optimiser's moments started afresh."
        if recipe.get("warm_start")
        else ""
    )
    card = f"""# Model card: {c["name"]}

Generated by `python -m trainer bundle` from the run's best epoch; numbers measured by the app's own predictor
(full image in, mask at the image's own size out). Weights: `resources/models/lesionlens.safetensors`; SHA-256 of
its tensors `{c["sha256"]}`; SHA-256 of the whole file `{c["file_sha256"]}` (pinned in
`segmentation/bundled_model.py`: the app refuses a bundled file that does not match).

## Intended use
Decision support for trained clinicians: it outlines a pigmented skin lesion in a dermoscopy image so the clinician
can check, correct and measure it. **It is not a diagnostic device**: it says nothing about malignancy, and every
outline must be reviewed by the clinician. Not validated on clinical (non-dermoscopic) photographs, on mucosal or
nail lesions, or on skin types under-represented in ISIC 2017.

## Model
- Architecture: the residual multi-scale dual-attention U-Net of Chowdary et al. (arXiv 2111.08708), variant
  `{c["variant"]}`, base width {c["width"]} (`docs/MODEL.md`).
- {c["parameters"]} parameters; {c["gmacs"]} GMACs per image at its input size.
- Input: the whole image resized to {c["input"]} (height x width, {c["interpolation"]}; photos larger than twice
  that are first area-averaged), ImageNet mean/std normalisation; output probability upsampled bilinearly to the
  image's size and thresholded at 0.5.

## Training
- Data: ISIC 2017 Challenge Part 1 training set, 2000 dermoscopy images with expert masks (256x192 copies),
  International Skin Imaging Collaboration, **CC BY-NC 4.0** (Codella et al., ISBI 2018). The weights inherit the
  non-commercial licence.
- Recipe run: {recipe.get("epochs")} planned epochs, {c["epochs"]} run, best epoch {c["best_epoch"]}; batch
  {recipe.get("batch_size")}; Adam, learning rate {recipe.get("learning_rate")} with a {recipe.get("schedule")}
  schedule; {recipe.get("repeats")} augmented pass(es) per epoch (flips, sharpening, rotation 0-90°); Dice + focal
  loss (γ = {recipe.get("focal_gamma")}); precision {recipe.get("precision")}. Full configuration:
  `docs/training/config.json`; per-epoch log and curves: `docs/training/log.csv`, `docs/training/curves.png`.{warm}
- Hardware and time: {c["hardware"]}; {c["steps"]} optimiser steps in {c["hours"]} h of training
  ({c["images_per_second"]} images/s on average, including epochs that shared the CPU with other work; the
  per-epoch speed is in the log). Code version {c["code_version"]}.

## Validation (ISIC 2017 validation set, {c["n_validation"]} images)
{c["validation_table"]}

The paper's column is its Table II full-model row on the same validation set (DC 94.53, JSI 84.19, REC 94.9).
**This model was selected (best epoch) on the same validation set it is reported on**, so these numbers are
optimistic; the official test set is held back. Validation image ISIC_0012127 duplicates training image
ISIC_0012970 (same picture).

## Full-resolution photos ({c["n_fullres"]} validation images at 2304x1536 to 4288x2848)
{c["fullres_table"]}

## The five worst validation images
| image | Dice | Jaccard |
|---|---:|---:|
{c["worst"]}

![worst cases](figures/worst_validation.png)

## Where the gap to the quality bar is
{c["gap"]}

Inference-side levers on the same validation images, measured by `trainer/gap.py` through the same predictor: the
app's optional clean-up (fill holes, keep the largest lesion) and averaging the probability over the four flips of
the input. Neither is the app's default; the first row is the model as shipped.

{c["variants_table"]}

{notes}

## Regression floor
`tests/test_bundled_model.py` checks that the mean Dice on 20 fixed validation images stays at least
{c["floor"]["floor"]:.4f} (measured {c["floor"]["mean_dice"]:.4f} minus {REGRESSION_MARGIN}).
"""
    atomic_write_bytes(path, card.encode())


def update_readme(context: dict) -> None:
    path = REPO / "README.md"
    text = path.read_text()
    block = f"""<!-- model-results:start -->
Bundled model `{context["name"]}` on the ISIC 2017 validation set ({context["n_validation"]} images, mean over
images with 95 % bootstrap intervals; selected on this same set, see `docs/MODEL_CARD.md`):

{context["validation_table"]}

![validation examples](docs/figures/validation_examples.png)
<!-- model-results:end -->"""
    if README_BLOCK.search(text):
        text = README_BLOCK.sub(lambda _: block, text)
    else:
        text += "\n## The bundled model\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode())


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", *METRIC_NAMES])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())
