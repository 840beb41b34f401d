"""The desktop app from click to overlay, and its peak memory on the largest real photo.

Each measurement runs the real main window (offscreen Qt) in a child process of its own, so its peak memory is
its own. "Click to overlay": from asking the window to open an image (what a click in the folder list or PgDown
does) until the boundary and fill are on screen: decode, the model, the overlay and boundary built, one repaint.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.peak import own_peak_mb

CHILD_FLAG = "--child"


def measure(weights: Path, images: list[Path]) -> dict:
    """In the child: open each image in turn, time until it is segmented and painted."""
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(weights=weights, device="cpu")
    window.resize(1280, 800)
    _wait(window.modelLoaded, window.show)
    times = []
    for path in images:
        started = time.perf_counter()
        _wait(window.segmented, lambda p=path: window.open_image(p))
        window.canvas.viewport().repaint()
        times.append(1000 * (time.perf_counter() - started))
    backend = window.predictor.device_description
    window.close()
    app.processEvents()
    return {"ms": times, "device": backend, "peak_rss_mb": own_peak_mb()}


def _wait(signal, action, timeout_ms: int = 120_000) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    action()
    loop.exec()
    signal.disconnect(loop.quit)


def run(weights: Path, medium: list[Path], largest: Path, warmup: Path) -> dict:
    """Click to overlay on the 768x576 images (after opening ``warmup``, another image, once), and memory on the
    largest photo."""
    import subprocess

    results = {}
    with tempfile.TemporaryDirectory(prefix="lesionlens-gui-bench-") as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LESIONLENS_HOME": home}
        for name, paths in (("768x576", [warmup, *medium]), ("largest photo", [warmup, largest])):
            command = [sys.executable, "-m", "benchmarks.gui", CHILD_FLAG, str(weights), *map(str, paths)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"GUI benchmark failed:\n{done.stderr[-2000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            times = child["ms"][1:]
            results[name] = {
                "images": len(times),
                "click_to_overlay_median_ms": round(sorted(times)[len(times) // 2], 1),
                "click_to_overlay_max_ms": round(max(times), 1),
                "peak_rss_mb": round(child["peak_rss_mb"]),
                "device": child["device"],
            }
    return results


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == CHILD_FLAG:
    print(json.dumps(measure(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])))
