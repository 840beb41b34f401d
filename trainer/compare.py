"""``python -m trainer compare``: candidate configurations trained for the same wall-clock minutes, tabulated.

This is how the ``cpu`` preset was chosen: each candidate gets the image-steps that the same minutes of training
buy it on this machine (timed on a quiet machine first; building the cache is not counted). The table in
``docs/CPU_PRESET.md`` compares the validation Dice reached, the image-steps each could afford, and the forward
time at its input size (the app's speed budget).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from segmentation.network import build_model, count_macs
from trainer.config import TrainConfig, preset
from trainer.options import data_paths

# Each candidate names every value it varies, so the list does not drift when the ``cpu`` preset (the base) changes.
_COSINE = {"learning_rate": 1e-3, "schedule": "cosine"}
CANDIDATES: dict[str, dict] = {
    "w16-128x160-bf16-cosine1e-3": {"input_height": 128, "input_width": 160, "precision": "bf16", **_COSINE},
    "w16-224x224-bf16-cosine1e-3": {"input_height": 224, "input_width": 224, "precision": "bf16", **_COSINE},
    "w16-128x160-fp32-cosine1e-3": {"input_height": 128, "input_width": 160, "precision": "fp32", **_COSINE},
    "w16-128x160-bf16-paper-step3e-4": {
        "input_height": 128,
        "input_width": 160,
        "precision": "bf16",
        "learning_rate": 3e-4,
        "schedule": "step",
        "step_epochs": 20,
    },
    "w8-192x256-bf16-cosine1e-3": {
        "base_width": 8,
        "input_height": 192,
        "input_width": 256,
        "precision": "bf16",
        **_COSINE,
    },
}


def forward_milliseconds(config: TrainConfig, repeats: int = 5) -> float:
    model = build_model(config.network).eval()
    image = torch.zeros(1, 3, *config.input_size)
    with torch.inference_mode():
        model(image)
        started = time.perf_counter()
        for _ in range(repeats):
            model(image)
    return 1000 * (time.perf_counter() - started) / repeats


def training_throughput(config: TrainConfig, steps: int = 6) -> float:
    """Images per second of ``train_step`` on random batches at the config's size (after two warm-up steps)."""
    from trainer.engine import resolve_precision
    from trainer.losses import DiceFocalLoss

    model = build_model(config.network).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    dtype = resolve_precision(config.precision, torch.device("cpu"))
    loss_fn = DiceFocalLoss()
    image = torch.randn(config.batch_size, 3, *config.input_size)
    mask = (torch.rand(config.batch_size, 1, *config.input_size) > 0.5).float()

    def step() -> None:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(image)
        loss_fn(logits.float(), mask).backward()
        optimizer.step()

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * config.batch_size / (time.perf_counter() - started)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="compare candidate configurations at equal wall-clock time")
    parser.add_argument("--data", required=True, help="ISIC 2017 folder (official layout)")
    parser.add_argument("--minutes", type=float, default=6.0, help="training minutes per candidate")
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Phase 1 times every candidate on a quiet machine; phase 2 trains each for the steps its minutes buy.

    Timing first and training by step count keeps the comparison fair even if the machine is busy with something
    else during the (long) training phase: every candidate gets the image-steps it would get in the same minutes.
    """
    from trainer.engine import Trainer

    results_file = args.out / "results.json"
    state = json.loads(results_file.read_text()) if results_file.exists() else {}
    timing, results = state.get("timing", {}), state.get("results", {})
    base = preset("cpu").override(data_paths(args))
    configs = {name: base.override({**CANDIDATES[name], "epochs": 10_000}) for name in args.candidates}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, config in configs.items():
        if name not in timing:
            timing[name] = {
                "train_images_per_second": round(training_throughput(config), 3),
                "forward_ms": round(forward_milliseconds(config), 1),
            }
            print(f"timed {name}: {timing[name]}", flush=True)
            results_file.write_text(json.dumps({"timing": timing, "results": results}, indent=2))
    for name, config in configs.items():
        if name in results:
            continue  # resumable: a finished candidate is not rerun
        steps = int(args.minutes * 60 * timing[name]["train_images_per_second"] / config.batch_size)
        trainer = Trainer(config.override({"max_steps": steps}), args.out / name)
        best = trainer.fit()
        macs = count_macs(build_model(config.network), *config.input_size)
        results[name] = {
            "best_val_dice": round(best, 4),
            "image_steps": trainer.step * config.batch_size,
            "train_seconds_measured": round(trainer.elapsed, 1),
            **timing[name],
            "gmacs": round(macs / 1e9, 3),
            "config": CANDIDATES[name],
        }
        results_file.write_text(json.dumps({"timing": timing, "results": results}, indent=2))
        print(f"{name}: {results[name]}", flush=True)
    print(format_table(results, args.minutes))
    return 0


def format_table(results: dict, minutes: float) -> str:
    lines = [
        f"| candidate | val Dice after {minutes:g} min | image-steps | train images/s | forward ms (batch 1) | GMACs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in sorted(results.items(), key=lambda item: -item[1]["best_val_dice"]):
        lines.append(
            f"| {name} | {r['best_val_dice']:.4f} | {r['image_steps']} | {r['train_images_per_second']} | "
            f"{r['forward_ms']} | {r['gmacs']} |"
        )
    return "\n".join(lines)
