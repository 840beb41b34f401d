"""The capacity trade (model issue): what a wider network or a larger input costs, in inference and in training.

For each candidate network (width x input size) this measures, on the machine it runs on:
- the forward pass at batch 1 with the machine's threads, through the app's backends (PyTorch channels-last and,
  when installed, ONNX Runtime): the 150 ms budget applies to the faster one, which the app picks;
- the training throughput of the real loop (cached tensors, augmentation in a loader worker, Dice + focal loss,
  Adam) on ONE thread in the precision ``--precision auto`` chooses, channels-last: how the comparison arms train.

Weights are random: a convolution costs the same whatever its weights. Usage (on a quiet machine, about 10 minutes
on two cores; it builds a tensor cache for each new input size first):

    python -m benchmarks.capacity [--json docs/training/capacity.json] [--markdown docs/training/capacity.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import REPO, time_calls
from segmentation.backends import OnnxRuntimeBackend, TorchBackend, onnxruntime_installed
from segmentation.network import NetworkConfig, build_model, count_macs, count_parameters

#: (base width, input height, input width): today's model first, then wider, then larger inputs.
CANDIDATES = ((16, 128, 160), (24, 128, 160), (32, 128, 160), (16, 192, 240), (16, 224, 224), (24, 192, 240))
FORWARD_BUDGET_MS = 150.0


def forward_ms(width: int, height: int, input_width: int) -> dict[str, float]:
    """Median batch-1 forward milliseconds per backend, with the machine's threads."""
    torch.manual_seed(0)
    batch = np.random.default_rng(0).standard_normal((1, 3, height, input_width)).astype(np.float32)
    backends = [TorchBackend(build_model(NetworkConfig(base_width=width)), torch.device("cpu"))]
    if onnxruntime_installed():
        backends.append(OnnxRuntimeBackend(build_model(NetworkConfig(base_width=width)), (height, input_width)))
    return {b.name: time_calls(lambda b=b: b.logits(batch), runs=10).median_ms for b in backends}


def training_images_per_second(width: int, height: int, input_width: int, *, steps: int, warmup: int) -> dict:
    """In a child process on one thread (the loader forks; see benchmarks/training.py)."""
    command = [sys.executable, "-m", "benchmarks.capacity", "--train-child", f"{width},{height},{input_width}"]
    command += ["--steps", str(steps), "--warmup", str(warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"training benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _train_child(width: int, height: int, input_width: int, *, steps: int, warmup: int) -> dict:
    from benchmarks.training import isic_config, seconds_for_steps

    torch.set_num_threads(1)
    overrides = {"base_width": width, "input_height": height, "input_width": input_width, "channels_last": True}
    config = isic_config(overrides)
    seconds, trainer = seconds_for_steps(config, steps=steps, warmup=warmup)
    precision = str(trainer.autocast_dtype or "fp32").replace("torch.", "")
    return {"images_per_second": round(steps * config.batch_size / seconds, 2), "precision": precision}


def measure(*, steps: int, warmup: int) -> list[dict]:
    rows = []
    for width, height, input_width in CANDIDATES:
        model = build_model(NetworkConfig(base_width=width))
        forward = forward_ms(width, height, input_width)
        training = training_images_per_second(width, height, input_width, steps=steps, warmup=warmup)
        rows.append(
            {
                "base_width": width,
                "input": [height, input_width],
                "parameters": count_parameters(model),
                "gmacs": round(count_macs(model, height, input_width) / 1e9, 2),
                "forward_ms": {name: round(ms, 1) for name, ms in forward.items()},
                "fastest_forward_ms": round(min(forward.values()), 1),
                "within_budget": min(forward.values()) <= FORWARD_BUDGET_MS,
                "training": training,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict], hardware: str) -> str:
    base = rows[0]["training"]["images_per_second"]
    lines = [
        f"Measured by `python -m benchmarks.capacity` on {hardware}. Forward: batch 1, all threads, median of 10 "
        "calls after warm-up, the faster of the app's backends (the one it picks). Training: the real loop on one "
        "thread (as each comparison arm trains), channels-last, the cpu preset's (strong) augmentation.",
        "",
        "| width | input | parameters | GMACs | forward ms (fastest) | within 150 ms | training images/s "
        "| image-steps per hour | vs today |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        speed = row["training"]["images_per_second"]
        lines.append(
            f"| {row['base_width']} | {row['input'][0]}x{row['input'][1]} | {row['parameters']:,} | {row['gmacs']} "
            f"| {row['fastest_forward_ms']} | {'yes' if row['within_budget'] else 'no'} "
            f"| {speed} ({row['training']['precision']}) | {round(3600 * speed):,} | {speed / base:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hardware", default="")
    parser.add_argument("--train-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_child:
        width, height, input_width = map(int, args.train_child.split(","))
        print(json.dumps(_train_child(width, height, input_width, steps=args.steps, warmup=args.warmup)))
        return 0
    rows = measure(steps=args.steps, warmup=args.warmup)
    hardware = args.hardware or f"{os.cpu_count()} cores"
    if args.json:
        args.json.write_text(json.dumps({"hardware": hardware, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    text = markdown(rows, hardware)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
