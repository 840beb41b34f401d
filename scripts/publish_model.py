"""The regenerate-all command: make a model the app's bundled model and regenerate everything that depends on it.

    .venv/bin/python scripts/publish_model.py RUN_DIR [--hardware "what it trained on"]
    .venv/bin/python scripts/publish_model.py --weights FILE      (republish a weights file, e.g. the bundled one)

One command, so a retrain (on this machine or a lent GPU) updates everything in one step:

1. the weights file ``resources/models/lesionlens.safetensors`` (``trainer.export`` of the run's best epoch);
2. the estimated-Dice model and review operating point in its metadata (``trainer.quality``, fitted on the
   HAM10000 hold-out) and ``docs/QUALITY.md``;
3. the pin beside it, ``lesionlens.safetensors.sha256`` (``sha256sum`` format; the app refuses a bundled file that
   does not match);
4. ISIC validation, HAM10000 hold-out and full-resolution metrics (``docs/model/*``) through the app's predictor;
5. ``docs/MODEL_CARD.md`` (from ``scripts/templates/MODEL_CARD.md``; hand-written notes between markers are kept)
   and the results block of ``README.md``;
6. the figures ``docs/figures/validation_examples.png`` and ``docs/figures/worst_validation.png``;
7. the regression floor ``tests/data/regression_floor.json`` (mean Dice on 20 fixed validation images minus 0.02);
8. the bundle self-test reference mask ``resources/selftest/`` (what the Python build predicts for a sample);
9. the run's small records (``config.json``, ``log.csv``) in ``docs/training/``, with ``curves.png`` redrawn;
10. the inference-side levers measured on the validation set (``trainer.gap``: clean-up, flip averaging).

Export, evaluation and fitting live in the trainer; this script only publishes their results into the repository.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import re
import shutil
import sys
from pathlib import Path
from string import Template

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from segmentation.bundled_model import write_pin  # noqa: E402
from segmentation.imageio import atomic_write_bytes, read_image, read_mask, write_mask  # noqa: E402
from segmentation.inference import Predictor  # noqa: E402
from segmentation.metrics import (  # noqa: E402
    METRIC_ABBREVIATIONS,
    METRIC_NAMES,
    ConfusionCounts,
    MetricSummary,
    scores,
)
from segmentation.naming import mask_name  # noqa: E402
from segmentation.network import build_model, count_macs, count_parameters  # noqa: E402
from segmentation.resources import bundled_weights_path  # noqa: E402
from segmentation.selftest import selftest_files  # noqa: E402
from segmentation.weights import ModelInfo, file_sha256  # noqa: E402
from trainer.evaluate import PAPER_ROWS, evaluate_folder, paper_row_text  # noqa: E402
from trainer.export import export_run  # noqa: E402
from trainer.gap import gap_sentence, measure_variants, variants_table, where_the_gap_is  # noqa: E402
from trainer.plots import plot_curves  # noqa: E402
from trainer.previous import PreviousModel, comparison_table, read_previous, worst_revisited  # noqa: E402
from trainer.quality import refit as refit_quality  # noqa: E402
from trainer.splits import held_out_image_ids  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
VALIDATION = ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth")
REGRESSION_IMAGES = 20
REGRESSION_MARGIN = 0.02
EXAMPLE_IDS = ("ISIC_0001769", "ISIC_0012099", "ISIC_0012417", "ISIC_0013491", "ISIC_0014211", "ISIC_0014809")
CARD_TEMPLATE = REPO / "scripts" / "templates" / "MODEL_CARD.md"
NOTES = re.compile(r"<!-- notes:start -->.*?<!-- notes:end -->", re.S)
README_BLOCK = re.compile(r"<!-- model-results:start -->.*?<!-- model-results:end -->", re.S)
V1_DATA = [{"name": "isic2017", "share": "by count", "licence": "ISIC 2017 Part 1 training set (2000 dermoscopy "
            "images), ISIC, CC BY-NC 4.0"}]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("run_dir", type=Path, nargs="?", help="a training run folder: its best epoch is published")
    source.add_argument("--weights", type=Path, help="publish this weights file instead of a run's best epoch")
    parser.add_argument("--data", type=Path, default=SHARED / "isic2017", help="ISIC 2017 folder")
    parser.add_argument("--ham", type=Path, default=SHARED / "ham10000", help="HAM10000 folder (for its hold-out)")
    parser.add_argument("--fullres", type=Path, default=SHARED / "isic2017-fullres-samples")
    parser.add_argument("--name", help="model name shown in the app (default: lesionlens-<run folder>)")
    parser.add_argument("--hardware", default="", help="what it was trained on, for the model card")
    parser.add_argument(
        "--quality-cache", type=Path, help="keep the quality refit's predictor outputs here (reused by a rerun)"
    )
    args = parser.parse_args(argv)

    weights = bundled_weights_path()
    weights.parent.mkdir(parents=True, exist_ok=True)
    model_dir = REPO / "docs" / "model"
    previous = read_previous(model_dir)  # before its per-image files are overwritten below
    if args.run_dir:
        export_run(args.run_dir, weights, name=args.name or f"lesionlens-{args.run_dir.name}")
        copy_training_records(args.run_dir)
    elif args.weights.resolve() != weights.resolve():
        shutil.copy2(args.weights, weights)
    # rewrites the metadata: before the pin
    refit_quality(weights, ham=args.ham, isic=args.data, cache=args.quality_cache)
    write_pin(weights)
    predictor = Predictor(weights, "cpu")
    info = predictor.info
    validation, rows = evaluate(predictor, args.data / VALIDATION[0], args.data / VALIDATION[1])
    holdout, holdout_rows = evaluate(predictor, args.ham / "images", args.ham / "masks", held_out_image_ids())
    fullres, fullres_rows = evaluate(predictor, args.fullres / "images", args.fullres / "masks")
    variants = measure_variants(predictor, args.data / VALIDATION[0], args.data / VALIDATION[1])
    _write_json(
        model_dir / "inference_variants.json",
        {"model": info.name, "sha256": info.sha256, **{name: s.to_dict() for name, s in variants.items()}},
    )
    for name, summary, per_image in (
        ("validation", validation, rows),
        ("ham_holdout", holdout, holdout_rows),
        ("fullres", fullres, fullres_rows),
    ):
        _write_json(model_dir / f"{name}.json", {"model": info.name, "sha256": info.sha256, **summary.to_dict()})
        _write_csv(model_dir / f"{name}_per_image.csv", per_image)
    worst = sorted(rows, key=lambda r: r["dice"])[:5]
    figures = REPO / "docs" / "figures"
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
    context = card_context(predictor, info, validation, holdout, fullres, worst, floor, args.hardware)
    context["variants_table"] = variants_table(variants)
    context["gap"] = gap_sentence(where_the_gap_is([r["dice"] for r in rows]), len(rows))
    context["previous"] = previous_text(previous, info.sha256, {"validation": rows, "ham_holdout": holdout_rows})
    context["arms"] = arms_text()
    write_model_card(context)
    update_readme(context)
    print(
        f"published {info.name} ({file_sha256(weights)[:12]}): validation Dice {validation.mean['dice']:.4f}, "
        f"HAM hold-out Dice {holdout.mean['dice']:.4f}, full-resolution Dice {fullres.mean['dice']:.4f}; "
        f"regression floor {floor['floor']:.4f}"
    )
    return 0


def evaluate(
    predictor: Predictor, images: Path, masks: Path, only: frozenset[str] | None = None
) -> tuple[MetricSummary, list[dict]]:
    """``trainer.evaluate.evaluate_folder`` without its timing column, so regenerated per-image files only change
    when the scores do."""
    summary, rows = evaluate_folder(predictor, images, masks, only=only)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(ids), figsize=(3.2 * len(ids), 2.9))
    for axis, image_id in zip(np.atleast_1d(axes), ids, strict=True):
        image = read_image(data / VALIDATION[0] / f"{image_id}.jpg")
        truth = read_mask(data / VALIDATION[1] / mask_name(image_id))
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
    out.parent.mkdir(parents=True, exist_ok=True)
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


def data_sources_text(training: dict) -> str:
    lines = []
    for source in training.get("data_sources") or V1_DATA:
        share = source["share"] if isinstance(source["share"], str) else f"{source['share']:.0%}"
        images = f", {source['images']:,} images" if "images" in source else ""
        lines.append(f"- `{source['name']}` (sampling share {share}{images}): {source['licence']}")
    return "\n".join(lines)


def planned_text(recipe: dict) -> str:
    """What the run was set to do: its epochs, or its step budget when one ended it first (the comparison arms)."""
    steps = recipe.get("max_steps") or 0
    if not steps:
        return f"{recipe.get('epochs')} planned epochs"
    images = steps * recipe.get("batch_size", 16)
    return f"a budget of {steps:,} optimiser steps ({images:,} image-steps)"


def history_text(recipe: dict) -> str:
    if recipe.get("init_weights"):
        return (
            f"\n- Fine-tuned (`trainer train --init-weights`) from `{recipe['init_weights']}` (the model bundled "
            "before this one): its tensors, a fresh optimiser and schedule."
        )
    if recipe.get("warm_start"):
        return (
            f"\n- Continued (`trainer train --warm-start`) from `{recipe['warm_start']}` (the model bundled before "
            "this one) after the run folder was lost: model and counters from that file, the schedule carried on "
            "from its epoch (with the planned epochs above), the optimiser's moments started afresh."
        )
    return ""


def augmentation_text(recipe: dict) -> str:
    text = "flips, sharpening, rotation 0-90° (the paper's)"
    if recipe.get("scale_probability"):
        text += f"; scale and crop {recipe['scale_min']}-{recipe['scale_max']} (p = {recipe['scale_probability']})"
    if recipe.get("photometric_probability"):
        text += f"; brightness, contrast, saturation, hue, gamma (p = {recipe['photometric_probability']})"
    return f"{text}; {recipe.get('repeats')} augmented pass(es) per epoch"


def card_context(
    predictor: Predictor,
    info: ModelInfo,
    validation: MetricSummary,
    holdout: MetricSummary,
    fullres: MetricSummary,
    worst: list[dict],
    floor: dict,
    hardware: str,
) -> dict:
    training = info.training
    recipe = training.get("config", {})
    model = build_model(info.network)
    height, width = info.preprocessing.input_size
    seconds = training.get("training_seconds", 0)
    images = training.get("steps", 0) * recipe.get("batch_size", 16)
    return {
        "name": info.name,
        "sha256": info.sha256,
        "file_sha256": file_sha256(predictor.weights_path),
        "variant": info.network.variant,
        "width": info.network.base_width,
        "parameters": f"{count_parameters(model):,}",
        "gmacs": f"{count_macs(model, height, width) / 1e9:.2f}",
        "input": f"{height}x{width}",
        "interpolation": info.preprocessing.interpolation,
        "data_sources": data_sources_text(training),
        "planned": planned_text(recipe),
        "best_epoch": training.get("best_epoch"),
        "batch_size": recipe.get("batch_size"),
        "learning_rate": recipe.get("learning_rate"),
        "schedule": recipe.get("schedule"),
        "augmentation": augmentation_text(recipe),
        "focal_gamma": recipe.get("focal_gamma"),
        "precision": recipe.get("precision"),
        "history": history_text(recipe),
        "steps": training.get("steps"),
        "hours": f"{seconds / 3600:.1f}",
        "images_per_second": f"{images / max(1.0, seconds):.1f}",
        "hardware": hardware or training.get("hardware") or platform.processor() or platform.machine(),
        "code_version": training.get("code_version", ""),
        "validation_table": metrics_table(validation, PAPER_ROWS["validation"]),
        "paper_row": paper_row_text(),
        "holdout_table": metrics_table(holdout, None),
        "fullres_table": metrics_table(fullres, None),
        "validation_dice": f"{100 * validation.mean['dice']:.2f}",
        "n_validation": validation.n_images,
        "n_holdout": holdout.n_images,
        "n_fullres": fullres.n_images,
        "worst": "\n".join(f"| {r['image']} | {r['dice']:.3f} | {r['jaccard']:.3f} |" for r in worst),
        "floor": f"{floor['floor']:.4f}",
        "floor_measured": f"{floor['mean_dice']:.4f}",
        "floor_margin": REGRESSION_MARGIN,
    }


def render_card(context: dict, notes: str) -> str:
    """The card from its template; a placeholder without a value is an error, never a blank."""
    return Template(CARD_TEMPLATE.read_text()).substitute({**context, "notes": notes})


def section_of_card(heading: str) -> str:
    """The body of a section of the current model card (a republication of the same tensors keeps it)."""
    path = REPO / "docs" / "MODEL_CARD.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find("\n" + heading)
    if start < 0:
        return ""
    body = text[text.index("\n", start + 1) + 1 :]  # after the heading's line
    end = body.find("\n## ")
    return (body if end < 0 else body[:end]).strip()


def previous_text(previous: PreviousModel | None, sha256: str, results: dict[str, list[dict]]) -> str:
    """The card's section on the model this one replaces (``trainer.previous``), or why there is none."""
    if previous is None:
        return "No model was published before this one."
    if previous.sha256 == sha256:
        standing = section_of_card("## Against the model it replaces")
        return standing or (
            f"This is a republication of `{previous.name}` (the same tensors): the previous comparison stands "
            "(see the git history of this card)."
        )
    labels = {"validation": "ISIC 2017 validation", "ham_holdout": "HAM10000 hold-out"}
    text = comparison_table(previous, results, labels)
    if "validation" in previous.dice:
        text += (
            f"\n\nThe previous model's five worst validation images (its failure modes, named in the notes below), "
            f"then and now:\n\n{worst_revisited(previous.dice['validation'], results['validation'])}"
        )
    return text


def arms_text() -> str:
    """The comparison arms' table (``python -m trainer arms``, written by ``scripts/training_arms.sh``)."""
    path = REPO / "docs" / "training" / "arms.md"
    if not path.exists():
        return "No comparison arms were run for this model."
    table = path.read_text(encoding="utf-8").strip()
    return f"{table}\n\nHow the arms ran and what each one asks: `docs/training/ARMS.md`."


def write_model_card(context: dict) -> None:
    path = REPO / "docs" / "MODEL_CARD.md"
    found = NOTES.search(path.read_text()) if path.exists() else None
    notes = (
        found.group(0)
        if found
        else "<!-- notes:start -->\n_Failure modes: to be written after looking at the worst cases._\n"
        "<!-- notes:end -->"
    )
    atomic_write_bytes(path, render_card(context, notes).encode())


def update_readme(context: dict) -> None:
    path = REPO / "README.md"
    text = path.read_text()
    block = f"""<!-- model-results:start -->
Bundled model `{context["name"]}` on the ISIC 2017 validation set ({context["n_validation"]} images, mean over
images with 95 % bootstrap intervals; selected on this same set, see `docs/MODEL_CARD.md`):

{context["validation_table"]}

On the HAM10000 hold-out ({context["n_holdout"]} images of lesions it never trained on): see `docs/MODEL_CARD.md`.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue().encode())


if __name__ == "__main__":
    sys.exit(main())
