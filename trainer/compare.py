"""``python -m trainer compare``: candidate configurations trained for the same wall-clock minutes, tabulated.

This is how the ``cpu`` preset was chosen: each candidate gets the same minutes of training on this machine (the
cache is built beforehand and not counted), then the table in ``docs/CPU_PRESET.md`` compares the validation Dice
reached, the image-steps it could afford, and its forward time at its input size (the app's speed budget).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from segmentation.network import NetworkConfig, build_model, count_macs
from trainer.config import TrainConfig, preset

CANDIDATES: dict[str, dict] = {
    "w16-128x160-bf16-cosine1e-3": {"input_height": 128, "input_width": 160},
    "w16-224x224-bf16-cosine1e-3": {"input_height": 224, "input_width": 224},
    "w16-128x160-fp32-cosine1e-3": {"input_height": 128, "input_width": 160, "precision": "fp32"},
    "w16-128x160-bf16-paper-step3e-4": {
        "input_height": 128,
        "input_width": 160,
        "learning_rate": 3e-4,
        "schedule": "step",
        "step_epochs": 20,
    },
    "w8-192x256-bf16-cosine1e-3": {"base_width": 8, "input_height": 192, "input_width": 256},
}


def forward_milliseconds(config: TrainConfig, repeats: int = 5) -> float:
    model = build_model(NetworkConfig(variant=config.variant, base_width=config.base_width)).eval()
    image = torch.zeros(1, 3, *config.input_size)
    with torch.inference_mode():
        model(image)
        started = time.perf_counter()
        for _ in range(repeats):
            model(image)
    return 1000 * (time.perf_counter() - started) / repeats


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="compare candidate configurations at equal wall-clock time")
    parser.add_argument("--data", required=True, help="ISIC 2017 folder (official layout)")
    parser.add_argument("--minutes", type=float, default=6.0, help="training minutes per candidate")
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainer.cli import ISIC_2017
    from trainer.engine import Trainer

    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    base = preset("cpu").override({key: str(Path(args.data) / folder) for key, folder in ISIC_2017.items()})
    for name in args.candidates:
        if name in results:
            continue  # resumable: a finished candidate is not rerun
        config = base.override({**CANDIDATES[name], "time_budget_minutes": args.minutes, "epochs": 1000})
        trainer = Trainer(config, args.out / name)
        best = trainer.fit()
        macs = count_macs(
            build_model(NetworkConfig(variant=config.variant, base_width=config.base_width)),
            *config.input_size,
        )
        results[name] = {
            "best_val_dice": round(best, 4),
            "image_steps": trainer.step * config.batch_size,
            "train_seconds": round(trainer.elapsed, 1),
            "images_per_second": round(trainer.step * config.batch_size / max(trainer.elapsed, 1e-9), 2),
            "forward_ms": round(forward_milliseconds(config), 1),
            "gmacs": round(macs / 1e9, 3),
            "config": CANDIDATES[name],
        }
        args.out.mkdir(parents=True, exist_ok=True)
        results_file.write_text(json.dumps(results, indent=2))
        print(f"{name}: {results[name]}", flush=True)
    print(format_table(results, args.minutes))
    return 0


def format_table(results: dict, minutes: float) -> str:
    lines = [
        f"| candidate | val Dice after {minutes:g} min | image-steps | images/s | forward ms (batch 1) | GMACs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in sorted(results.items(), key=lambda item: -item[1]["best_val_dice"]):
        lines.append(
            f"| {name} | {r['best_val_dice']:.4f} | {r['image_steps']} | {r['images_per_second']} | "
            f"{r['forward_ms']} | {r['gmacs']} |"
        )
    return "\n".join(lines)
