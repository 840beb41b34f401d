"""What every benchmark needs: the machine it ran on, timers, peak memory of a child process, the test images.

Benchmarks measure; they never pass or fail (the targets are compared in ``docs/BENCHMARKS.md``). Run them on a
quiet machine: another job on the same cores (a training run, a build) makes every number worse.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "datasets"
ISIC = SHARED / "isic2017"
VALIDATION_IMAGES = ISIC / "ISIC-2017_Validation_Data"
TRAINING_IMAGES = ISIC / "ISIC-2017_Training_Data"
FULLRES_IMAGES = SHARED / "isic2017-fullres-samples" / "images"
PAPER_SECONDS_PER_IMAGE = 17.0  # the paper's reported inference time per image


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds over repeated runs: the median is reported, the spread shows the noise."""

    median_ms: float
    min_ms: float
    max_ms: float
    runs: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "median_ms": round(self.median_ms, 2),
            "min_ms": round(self.min_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "runs": self.runs,
        }


def time_calls(fn: Callable[[], object], *, runs: int, warmup: int = 2) -> Timing:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        values.append(1000 * (time.perf_counter() - started))
    return Timing(float(np.median(values)), float(np.min(values)), float(np.max(values)), runs)


def peak_rss_mb(argv: list[str], *, env: dict | None = None) -> tuple[float, float]:
    """Run ``lesionlens ARGV`` in a child process; returns (its own peak resident memory in MB, wall seconds)."""
    from benchmarks.peak import PREFIX

    started = time.perf_counter()
    command = [sys.executable, "-m", "benchmarks.peak", *argv]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"lesionlens {' '.join(argv[:3])}... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    peaks = [float(line[len(PREFIX) :]) for line in done.stderr.splitlines() if line.startswith(PREFIX)]
    return peaks[-1], seconds


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPU computes bf16 itself; without them PyTorch emulates it, slowly."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def matmul_peak_gflops(size: int = 2048, runs: int = 5) -> float:
    """A large fp32 matrix product: about the best these cores sustain, to set the network's speed against."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    timing = time_calls(lambda: a @ b, runs=runs, warmup=2)
    return 2 * size**3 / (timing.min_ms / 1000) / 1e9


def machine() -> dict:
    import cv2

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    flags = cpu_flags()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "simd": simd,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": ort_version,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "matmul_peak_gflops": round(matmul_peak_gflops(), 1),
    }


def real_images(folder: Path, count: int | None = None) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"benchmark data not found: {folder} (../shared/datasets beside the repository)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return files[:count] if count else files
