"""Screenshots of the real app for the docs: the main window, the editing tools, the batch dialog.

    xvfb-run -a .venv/bin/python scripts/screenshots.py [--weights MODEL.safetensors] --out docs/screenshots

Runs the real window on the bundled sample (resources/samples/ISIC_0014572.jpg) in a throw-away LESIONLENS_HOME,
so the user's settings and autosaves neither show up in the pictures nor change. Waits on the window's signals
(never on sleeps), then grabs widgets with QWidget.grab().
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIZE = (1440, 900)
TIMEOUT_MS = 60_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="weights file (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.weights is None:
        from segmentation.resources import default_weights_path

        args.weights = default_weights_path()
    with tempfile.TemporaryDirectory(prefix="lesionlens-shots-") as home:
        os.environ["LESIONLENS_HOME"] = home
        return shoot(args.weights, args.out, args.device, Path(home))


def shoot(weights: Path, out: Path, device: str, home: Path) -> int:
    from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt, QTimer
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.canvas import Tool
    from app.main_window import SAMPLE_NAME, MainWindow
    from segmentation.resources import samples_dir

    app = QApplication.instance() or QApplication(sys.argv[:1])
    out.mkdir(parents=True, exist_ok=True)

    def wait(signal, what: str) -> None:
        loop, timer = QEventLoop(), QTimer(singleShot=True)
        done: list[bool] = []
        signal.connect(lambda *_: (done.append(True), loop.quit()))
        timer.timeout.connect(loop.quit)
        timer.start(TIMEOUT_MS)
        loop.exec()
        if not done:
            raise SystemExit(f"screenshots: timed out waiting for {what}")

    def settle() -> None:
        for _ in range(5):
            app.processEvents()
            QTest.qWait(50)

    def save(pixmap: QPixmap, name: str) -> None:
        path = out / name
        if not pixmap.save(str(path)):
            raise SystemExit(f"screenshots: could not write {path}")
        print(f"wrote {path} ({pixmap.width()}x{pixmap.height()})")

    window = MainWindow(weights=weights, device=device)
    window.resize(*SIZE)
    window.show()
    if window.predictor is None:
        wait(window.modelLoaded, "the model")
    if window.predictor is None:
        raise SystemExit(f"screenshots: the model did not load: {window.model.problem}")

    window.open_paths([samples_dir()])
    window.open_image(samples_dir() / SAMPLE_NAME)
    wait(window.segmented, "segmentation")
    wait(window.analysed, "measurements")
    wait_for_thumbnails(window, app)
    settle()
    save(window.grab(), "main_window.png")

    # Editing: zoom onto the lesion, brush with its cursor circle, then the vertex handles.
    canvas = window.canvas
    canvas.zoom_by(1.8)
    window.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(40)
    viewport = canvas.viewport()
    centre = viewport.rect().center()
    boundary = max(canvas.polygons, key=len)
    left_x, left_y = boundary[boundary[:, 0].argmin()]  # stroke outward across the leftmost boundary point
    stroke = [canvas.mapFromScene(QPointF(left_x + dx, left_y + 0.5)) for dx in (10, -20, -50)]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, stroke[0])
    for point in stroke[1:]:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, stroke[-1])
    wait(window.analysed, "measurements after the stroke")
    hover = centre + QPoint(60, 90)
    QTest.mouseMove(viewport, hover)
    canvas.cursor_item.setPos(canvas.mapToScene(hover))  # a synthetic move may not reach an unfocused window
    canvas.cursor_item.setVisible(True)
    settle()
    brush = window.grab()
    window.set_tool(Tool.VERTICES)
    polygons = canvas.polygons
    if polygons:
        x, y = polygons[0][len(polygons[0]) // 3]
        QTest.mouseMove(viewport, canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    settle()
    vertices = window.grab()
    save(stack(brush, vertices, QPixmap, QPainter), "editing.png")

    dialog = window.show_batch_dialog()
    dialog.set_inputs([samples_dir()])
    dialog.set_output(home / "batch-output")
    dialog.overlay.setChecked(True)
    dialog.resize(900, 560)
    dialog.start()
    wait(dialog.batchFinished, "the batch")
    settle()
    save(dialog.grab(), "batch.png")
    dialog.close()
    window.close()
    return 0


def wait_for_thumbnails(window, app) -> None:
    """The folder list's previews load in the background; give them a moment (bounded) before the grab."""
    from PySide6.QtTest import QTest

    panel = window.folder_panel
    for _ in range(100):
        if len(panel._thumbnailed) >= len(panel.paths()):
            return
        app.processEvents()
        QTest.qWait(50)


def stack(top, bottom, pixmap_type, painter_type):
    """Two grabs one above the other, with a thin gap."""
    gap = 12
    combined = pixmap_type(max(top.width(), bottom.width()), top.height() + gap + bottom.height())
    combined.fill("#202020")
    painter = painter_type(combined)
    painter.drawPixmap(0, 0, top)
    painter.drawPixmap(0, top.height() + gap, bottom)
    painter.end()
    return combined


if __name__ == "__main__":
    sys.exit(main())
