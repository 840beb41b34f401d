"""``python -m trainer ablation``: the paper's Table II variants under one recipe and one step budget.

Every variant trains with the same configuration and the same number of optimiser steps, for at least two seeds;
the table reports the validation Dice, Jaccard and recall (mean and spread over seeds), the parameter count and the
training time, and calls a difference smaller than the spread a tie.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from segmentation.imageio import atomic_write_bytes
from segmentation.network import VARIANTS, build_model, count_parameters
from trainer.config import PRESETS, preset
from trainer.evaluate import paper_row_text
from trainer.options import data_paths

TABLE_NAMES = {
    "unet": "UNet",
    "rmsm": "RMSM UNet",
    "rmsm-dfram": "RMSM UNet + DF-RAM",
    "rmsm-efram": "RMSM UNet + EF-RAM",
    "full": "Proposed (RMSM + DF-RAM + EF-RAM)",
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ablation", help="train the Table II variants and tabulate them")
    parser.add_argument("--data", help="ISIC 2017 folder (official layout); default $LESIONLENS_DATA")
    parser.add_argument("--train-images")
    parser.add_argument("--train-masks")
    parser.add_argument("--val-images")
    parser.add_argument("--val-masks")
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, required=True, help="optimiser steps per variant and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override preset options")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--device", default="auto")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainer.engine import Trainer

    if len(args.seeds) < 2:
        raise SystemExit("error: give at least two --seeds so differences can be told from noise")
    overrides = dict(item.split("=", 1) for item in args.set)
    base = preset(args.preset).override({**overrides, **data_paths(args), "max_steps": args.steps})
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for variant in args.variants:
        for seed in args.seeds:
            key = f"{variant}/seed{seed}"
            if key in results:
                continue  # resumable: finished runs are kept
            config = base.override({"variant": variant, "seed": seed, "epochs": 10_000})
            trainer = Trainer(config, args.out / variant / f"seed{seed}", device=args.device, quiet=True)
            trainer.fit()
            _, scores = trainer.validation_step()
            results[key] = {
                **scores,
                "best_dice": trainer.best_dice,
                "seconds": round(trainer.elapsed, 1),
                "steps": trainer.step,
            }
            args.out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(results_file, json.dumps(results, indent=2).encode())
            print(f"{key}: {results[key]}", flush=True)
    table = format_table(results, base, args.variants, args.seeds)
    atomic_write_bytes(args.out / "table.md", table.encode())
    print(table)
    return 0


def format_table(results: dict, config, variants: list[str], seeds: list[int]) -> str:
    """Table II layout: final-epoch validation scores, mean ± standard deviation over seeds, in percent."""
    lines = [
        f"Validation set, {config.input_height}x{config.input_width}, width {config.base_width}, "
        f"{config.max_steps} steps of batch {config.batch_size}, seeds {', '.join(map(str, seeds))}.",
        "",
        "| model | DC | JSI | REC | parameters | train s | vs UNet |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    summary = {}
    for variant in variants:
        runs = [results[f"{variant}/seed{s}"] for s in seeds if f"{variant}/seed{s}" in results]
        if not runs:
            continue
        stats = {m: _mean_sd([100 * r[m] for r in runs]) for m in ("dice", "jaccard", "recall")}
        summary[variant] = stats
        params = count_parameters(build_model(config.override({"variant": variant}).network))
        seconds = statistics.mean(r["seconds"] for r in runs)
        verdict = _compare(stats["dice"], summary.get("unet", {}).get("dice")) if variant != "unet" else ""
        lines.append(
            f"| {TABLE_NAMES[variant]} | {_fmt(stats['dice'])} | {_fmt(stats['jaccard'])} | "
            f"{_fmt(stats['recall'])} | {params:,} | {seconds:.0f} | {verdict} |"
        )
    lines += [
        "",
        f"Paper, full model (Table II): {paper_row_text()}.",
    ]
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _fmt(stat: tuple[float, float]) -> str:
    return f"{stat[0]:.2f} ± {stat[1]:.2f}"


def _compare(stat: tuple[float, float], baseline: tuple[float, float] | None) -> str:
    """Better or worse only when the gap exceeds the larger spread; otherwise a tie."""
    if baseline is None:
        return ""
    gap = stat[0] - baseline[0]
    if abs(gap) <= max(stat[1], baseline[1]):
        return f"tie ({gap:+.2f})"
    return f"{'better' if gap > 0 else 'worse'} ({gap:+.2f})"
