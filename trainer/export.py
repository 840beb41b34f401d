"""``python -m trainer export``: a run's best checkpoint to the app's weights file (and optionally ONNX).

A missing, truncated or foreign checkpoint, or a run folder without a ``best.pt`` (stopped before its first one was
written), is a one-line ``error: <file>: <reason>`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import torch

from segmentation.backends import export_onnx_bytes
from segmentation.imageio import OutputWriteError, atomic_write_bytes
from segmentation.network import build_model
from segmentation.preprocessing import Preprocessing
from segmentation.weights import ModelInfo, WeightsError, save_weights
from trainer import checkpoint
from trainer.checkpoint import CheckpointError
from trainer.config import TrainConfig

SIZE_LIMIT_BYTES = 16 * 1024 * 1024


def code_version() -> str:
    """The git commit the weights were trained with, when known."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


DATA_LICENCES = {
    "isic2017": "ISIC 2017 Part 1 training set (2000 dermoscopy images), ISIC, CC BY-NC 4.0",
    "ham10000": "HAM10000 (Tschandl et al. 2018) with its lesion masks, less the committed hold-out, CC BY-NC-SA 4.0",
}


def data_sources(config: TrainConfig, counts: dict[str, int] | None = None) -> list[dict]:
    """The training sources by name, with their sampling share and licence (the weights' metadata)."""
    return [
        {
            "name": source.name,
            "share": source.share or "by count",
            **({"images": counts[source.name]} if counts and source.name in counts else {}),
            "licence": DATA_LICENCES.get(source.name, "see the data set's own licence"),
        }
        for source in config.training_sources()
    ]


def training_summary(run_dir: Path, config: TrainConfig, state: dict) -> dict:
    rows = []
    if (run_dir / "log.csv").exists():
        with (run_dir / "log.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    try:
        best_epoch = max(rows, key=lambda r: float(r["val_dice"]))["epoch"] if rows else None
    except (KeyError, TypeError, ValueError):  # a damaged log: the weights are still good, the epoch unknown
        best_epoch = None
    return {
        "data": "; ".join(source["licence"] for source in data_sources(config)),
        "data_sources": data_sources(config, state.get("source_images")),
        "train_images": config.train_images,
        "val_images": config.val_images,
        "config": config.to_dict(),
        "epochs_run": int(state["epoch"]),
        "best_epoch": best_epoch,
        "steps": int(state["step"]),
        "training_seconds": round(float(state["elapsed"]), 1),
        "code_version": code_version(),
    }


def export_run(run_dir: Path, out: Path, *, name: str, which: str = "best", onnx: Path | None = None) -> ModelInfo:
    """Raises CheckpointError (naming the file) for a missing or unusable checkpoint, OutputWriteError for ``out``."""
    run_dir = Path(run_dir)
    path = run_dir / f"{which}.pt"
    if not run_dir.is_dir():
        raise CheckpointError(run_dir, "no such run folder")
    if which == "best" and not path.exists() and (run_dir / "last.pt").exists():
        raise CheckpointError(
            path,
            "this run has no best checkpoint (it was stopped before one was written); "
            "export its last checkpoint with --checkpoint last, or resume the run",
        )
    state = checkpoint.load(path)
    try:
        config = TrainConfig().override(state["config"])
        model = build_model(config.network)
        model.load_state_dict(state["model"])
        float(state["best_dice"]), int(state["epoch"]), int(state["step"]), float(state["elapsed"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise CheckpointError(path, f"does not hold a model this trainer can export ({_first_line(error)})") from error
    model.eval()
    preprocessing = config.preprocessing
    validation = {
        "val_dice_mean_at_selection": round(float(state["best_dice"]), 5),
        "selected_on": "validation",
    }
    metadata = {
        "name": name,
        "preprocessing": preprocessing,
        "training": training_summary(run_dir, config, state),
        "validation": validation,
    }
    info = save_weights(out, model, **metadata)
    if out.stat().st_size > SIZE_LIMIT_BYTES:  # the GPU machine returns files of at most 16 MiB
        info = save_weights(out, model, **metadata, half_precision=True)
    if onnx is not None:
        export_onnx(model, preprocessing, onnx)
    return info


def export_onnx(model: torch.nn.Module, preprocessing: Preprocessing, out: Path) -> None:
    """The same graph the app's ONNX Runtime backend builds in memory, written to ``out``."""
    atomic_write_bytes(out, export_onnx_bytes(model, preprocessing.input_size))


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help="write a run's best checkpoint as an app weights file")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("resources/models/lesionlens.safetensors"))
    parser.add_argument("--name", help="model name shown in the app (default: the run folder's name)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--onnx", type=Path, help="also write an ONNX model here")
    parser.set_defaults(handler=run)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def run(args: argparse.Namespace) -> int:
    try:
        info = export_run(
            args.run_dir, args.out, name=args.name or args.run_dir.name, which=args.checkpoint, onnx=args.onnx
        )
    except (CheckpointError, OutputWriteError, WeightsError) as error:
        print(f"python -m trainer export: error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "out": str(args.out),
                "name": info.name,
                "sha256": info.sha256,
                "bytes": args.out.stat().st_size,
            },
            indent=2,
        )
    )
    return 0


__all__ = ["export_run"]
