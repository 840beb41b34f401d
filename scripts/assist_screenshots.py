"""Screenshots of the Assist (click) and Box tools in the real window, on ISIC 2017 validation images.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/assist_screenshots.py --out docs/screenshots

The click goes where the simulated clinician of ``benchmarks/clicks.py`` puts its first click (the interior of the
largest missed region); the box is the expert mask's bounding box, as in that benchmark. Runs in a throw-away
LESIONLENS_HOME and waits on the window's signals.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VALIDATION = ROOT.parent / "shared" / "datasets" / "isic2017"
SIZE = (1440, 900)
TIMEOUT_MS = 60_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--click-image", default="ISIC_0012417")
    parser.add_argument("--box-image", default="ISIC_0012876")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lesionlens-shots-") as home:
        os.environ["LESIONLENS_HOME"] = home
        return shoot(args.out, args.click_image, args.box_image)


def shoot(out: Path, click_image: str, box_image: str) -> int:
    from PySide6.QtCore import QEventLoop, QPointF, Qt, QTimer
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.canvas import Tool
    from app.main_window import MainWindow
    from benchmarks.clicks import next_click
    from segmentation.boxes import lesion_box
    from segmentation.imageio import read_mask
    from segmentation.naming import mask_name

    app = QApplication.instance() or QApplication(sys.argv[:1])
    out.mkdir(parents=True, exist_ok=True)
    images = VALIDATION / "ISIC-2017_Validation_Data"
    masks = VALIDATION / "ISIC-2017_Validation_Part1_GroundTruth"

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

    def at(x: float, y: float):
        return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))

    def open_image(name: str) -> None:
        window.open_image(images / f"{name}.jpg")
        wait(window.segmented, "segmentation")
        wait(window.analysed, "measurements")
        canvas.zoom_to_fit()
        settle()

    window = MainWindow()
    window.resize(*SIZE)
    window.show()
    if window.predictor is None:
        wait(window.modelLoaded, "the model")
    canvas, viewport = window.canvas, window.canvas.viewport()

    open_image(click_image)
    window.set_tool(Tool.ASSIST)
    truth = read_mask(masks / mask_name(click_image))
    row, col, add = next_click(window.document.mask, truth)
    modifier = Qt.KeyboardModifier.NoModifier if add else Qt.KeyboardModifier.ShiftModifier
    canvas.zoom_by(2.0)
    canvas.centerOn(QPointF(col + 0.5, row + 0.5))
    settle()
    before = canvas.grab()
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, modifier, at(col, row))
    wait(window.analysed, "measurements after the click")
    settle()
    after = canvas.grab()
    pair = QPixmap(before.width() + after.width() + 8, before.height())
    pair.fill(Qt.GlobalColor.white)
    painter = QPainter(pair)
    painter.drawPixmap(0, 0, before)
    painter.drawPixmap(before.width() + 8, 0, after)
    painter.end()
    path = out / "assist_click.png"
    pair.scaled(
        pair.width() // 2,
        pair.height() // 2,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    ).save(str(path))
    print(f"wrote {path}")
    path = out / "assist_click_window.png"
    window.grab().save(str(path))
    print(f"wrote {path}")

    open_image(box_image)
    window.set_tool(Tool.BOX)
    window.assist_panel.keep_outside.setChecked(False)
    rows, cols = lesion_box(read_mask(masks / mask_name(box_image)), 0)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(cols.start, rows.start))
    QTest.mouseMove(viewport, at((cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2))
    QTest.mouseMove(viewport, at(cols.stop, rows.stop))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(cols.stop, rows.stop))
    wait(window.assist.runner.finished, "the box re-segmentation")
    wait(window.analysed, "measurements after the box")
    settle()
    path = out / "assist_box.png"
    window.grab().save(str(path))
    print(f"wrote {path}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
