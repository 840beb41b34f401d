"""``make bench``: every LesionLens benchmark in one run, written to docs/benchmarks/results.json and rendered as
docs/BENCHMARKS.md.

    .venv/bin/python -m benchmarks.run [--quick] [--only forward,agreement,...]

Run it on a quiet machine (no training or build on the same cores); it takes about ten minutes on two cores.
``--quick`` is a smoke run on a few images (numbers not for the record: it writes to a temporary folder unless
``--out`` says otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import agreement, end_to_end, forward, gui, measure_edit, models, peak_120mp, report, training
from benchmarks.common import REPO, machine, real_images
from segmentation.imageio import read_image_size

README_START, README_END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"
SECTIONS = ("forward", "agreement", "latency", "throughput", "memory", "training", "gui", "measure_edit", "peak_120mp")
END_TO_END = {"latency": "latency", "throughput": "throughput", "memory": "peak_memory_mb"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few images per measurement (smoke run)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--out", type=Path, help="results folder (default: docs/benchmarks, or a temp dir with --quick)"
    )
    parser.add_argument("--render", action="store_true", help="only re-render BENCHMARKS.md from results.json")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="lesionlens-bench-")) if args.quick else REPO / "docs" / "benchmarks"
    )
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() and not args.quick else {}
    markdown = out.parent / "BENCHMARKS.md" if out == REPO / "docs" / "benchmarks" else out / "BENCHMARKS.md"
    if args.render:
        _write_pages(results, markdown, out)
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lesionlens-bench-models-") as tmp:
        weights = models.benchmark_weights(Path(tmp))
        results["machine"] = machine()
        results["models"] = {variant: models.describe(path) for variant, path in weights.items()}
        results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["quick"] = args.quick
        for section in wanted:
            print(f"benchmark {section}...", flush=True)
            section_started = time.perf_counter()
            try:
                value = _run_section(section, weights, results["models"], args.quick)
            except Exception as error:  # one broken section must not lose the others' numbers
                value = {"error": f"{error}", "traceback": traceback.format_exc()[-2000:]}
                print(f"  {section} failed: {error}", flush=True)
            if section in END_TO_END:
                results.setdefault("end_to_end", {})[END_TO_END[section]] = value
            else:
                results[section] = value
            seconds = time.perf_counter() - section_started
            results.setdefault("runs", {})[section] = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 1),
            }
            print(f"  {section}: {seconds:.0f} s", flush=True)
            results_path.write_text(json.dumps(results, indent=2) + "\n")  # a killed run keeps what it measured
    results["seconds"] = round(time.perf_counter() - started, 1)  # of this invocation (maybe a subset)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    _write_pages(results, markdown, out)
    print(f"wrote {results_path} and {markdown} in {results['seconds']:.0f} s")
    return 0


def _write_pages(results: dict, markdown: Path, out: Path) -> None:
    """BENCHMARKS.md, and the README's summary table when these are the project's own results."""
    markdown.write_text(report.render(results))
    if out != REPO / "docs" / "benchmarks":
        return
    readme = REPO / "README.md"
    text = readme.read_text()
    block = f"{README_START}\n{report.readme_block(results)}\n{README_END}"
    if README_START in text and README_END in text:
        before, rest = text.split(README_START, 1)
        readme.write_text(before + block + rest.split(README_END, 1)[1])


def _run_section(section: str, weights: dict[str, Path], described: dict, quick: bool) -> dict:
    if section == "forward":
        return {
            variant: forward.run(path, described[variant]["gmacs"], tuple(described[variant]["input"]), quick=quick)
            for variant, path in weights.items()
        }
    if section == "agreement":
        return agreement.run(weights["full"], quick=quick)
    if section in END_TO_END:
        return end_to_end.run(weights, END_TO_END[section], quick=quick)
    if section == "measure_edit":
        return measure_edit.run(runs=5 if quick else 15)
    if section == "peak_120mp":
        return peak_120mp.run(["segment"] if quick else None)
    if section == "training":
        return training.run(steps=2 if quick else 6, warmup=1 if quick else 2)
    if section == "gui":
        with tempfile.TemporaryDirectory(prefix="lesionlens-gui-images-") as tmp:
            sets = end_to_end.image_sets(Path(tmp), quick=quick)
            largest = max(real_images(end_to_end.FULLRES_IMAGES), key=lambda p: math.prod(read_image_size(p)))
            return gui.run(weights["full"], sets["768x576"], largest, sets["256x192"][0])
    raise ValueError(section)


if __name__ == "__main__":
    raise SystemExit(main())
