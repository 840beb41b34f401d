"""``python -m trainer gpu-run``: one command for a lent GPU machine (tested on CPU first).

Builds the cache from the carried JPEGs, trains the paper's recipe for the given minutes with a schedule that fits
them (cosine over the time budget instead of the paper's 250-epoch step decay), exports the best epoch and writes
at most 8 small files to ``--out``: weights, config, log, curves and a summary with the measured throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from trainer.config import preset
from trainer.options import add_source_option, data_paths, parse_source


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("gpu-run", help="train for N minutes on a GPU and export (for the lent machine)")
    parser.add_argument("--data", required=True, help="ISIC 2017 folder (official layout)")
    parser.add_argument("--minutes", type=float, required=True, help="training minutes (cache time not counted)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results (at most 8 files)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/gpu"))
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override options")
    parser.add_argument("--device", default="auto")
    add_source_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trainer.engine import Trainer, images_per_second
    from trainer.export import export_run

    started = time.perf_counter()
    on_gpu = torch.cuda.is_available()
    defaults = {
        "time_budget_minutes": args.minutes,
        "epochs": 10_000,
        "schedule": "cosine",
        "num_workers": min(8, os.cpu_count() or 1),
        "channels_last": on_gpu,
    }
    overrides = dict(item.split("=", 1) for item in args.set)
    paths = data_paths(args)
    sources = {"sources": tuple(parse_source(text) for text in args.source)} if args.source else {}
    config = preset(args.preset).override({**defaults, **overrides, **sources, **paths})
    if on_gpu:
        torch.backends.cudnn.benchmark = True
    trainer = Trainer(config, args.run_dir, device=args.device)
    setup_seconds = time.perf_counter() - started
    best = trainer.fit()
    args.out.mkdir(parents=True, exist_ok=True)
    info = export_run(args.run_dir, args.out / "lesionlens-gpu.safetensors", name=f"lesionlens-gpu-{args.preset}")
    for name in ("config.json", "log.csv", "curves.png"):
        shutil.copy2(args.run_dir / name, args.out / name)
    summary = {
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "torch": torch.__version__,
        "best_val_dice": best,
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "train_seconds": round(trainer.elapsed, 1),
        "setup_seconds": round(setup_seconds, 1),
        "images_per_second_median_epoch": images_per_second(args.run_dir / "log.csv"),
        "sha256": info.sha256,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
