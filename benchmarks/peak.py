"""Run a LesionLens command and report its own peak resident memory: ``python -m benchmarks.peak ARGS...``.

The peak is the kernel's VmHWM of this process (``/proc/self/status``), which starts afresh at exec. (A child's
``ru_maxrss`` does not: Linux carries the forking parent's peak into it, so a big benchmark process would inflate
every child's figure.) It is printed to stderr as ``peak_rss_mb=<MB>`` when the command ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

PREFIX = "peak_rss_mb="


def own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main(argv: list[str]) -> int:
    from app.launcher import main as lesionlens

    try:
        return lesionlens(argv)
    finally:
        print(f"{PREFIX}{own_peak_mb():.1f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
