"""Reliability of the desktop app: bad files, broken or altered weights, a full disk on export, a crash while
editing, and no network. Uses the fixtures of tests/gui/conftest.py (tiny untrained model, throw-away home folder)
and the generated files of tests/reliability_helpers.py; docs/RELIABILITY.md maps each case to its test.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import LOCKED, bad_files, block_network, deny_reading, file_hashes, odd_valid_files
from safetensors import safe_open
from safetensors.torch import save_file

import segmentation.bundled_model
import segmentation.resources
from app.folder_states import CANNOT_OPEN
from app.workers import read_thumbnail
from segmentation.ownership import RECORD_NAME
from segmentation.resources import DEFAULT_WEIGHTS_NAME
from segmentation.weights import file_sha256

pytestmark = pytest.mark.gui
WAIT_MS = 15_000


# ------------------------------------------------------------------------------------------------ bad files
def test_a_folder_of_bad_files_each_gives_a_message_and_the_app_stays_usable(
    window, tmp_path: Path, rgb_image, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "clinic export"
    good = odd_valid_files(folder, rgb_image)
    bad = bad_files(folder, rgb_image)
    deny_reading(monkeypatch, [folder / LOCKED])
    before = file_hashes(folder)

    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.open_paths([folder])  # opens the first listed file: the accented name sorts first
    assert set(window.folder_panel.paths()) == set(good) | set(bad), "bad files are listed, not hidden"
    for path in window.folder_panel.paths():
        if path in bad:
            with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
                window.open_image(path)
            assert window.last_error.startswith("Cannot open the image. ")
            assert str(path) in window.last_error and bad[path] in window.last_error
            assert window.message_banner.isVisible() and path.name in window.message_banner.text()
            assert window.folder_panel.state(path) == CANNOT_OPEN
            assert not window.status.is_busy()
        else:
            with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
                window.open_image(path)
            assert window.document.path == path
            assert window.document.mask.shape == good[path], f"{path.name}: the mask fits the image as displayed"
            assert window.message_banner.isHidden()
    assert file_hashes(folder) == before, "opening never writes to the clinician's files"


def test_a_folder_that_cannot_be_listed_gives_a_message(window, tmp_path: Path, monkeypatch) -> None:
    locked = tmp_path / "locked folder"
    locked.mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    window.open_paths([locked])
    assert window.last_error == f"Cannot open the folder {locked}: permission denied."
    assert window.message_banner.isVisible()


def test_an_empty_folder_says_so(window, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("not an image")
    window.open_paths([tmp_path / "empty"])
    assert window.last_error.startswith("No images there")
    assert window.document.image is None and window.message_banner.isVisible()


# ------------------------------------------------------------------------------------------------ weights
@pytest.mark.parametrize("damage", ["garbage", "truncated", "tampered"])
def test_a_corrupt_weights_file_opens_the_app_with_segmentation_off(
    damage: str, make_window, tiny_weights: Path, image_folder: Path, tmp_path: Path, qtbot
) -> None:
    weights = tmp_path / "model.safetensors"
    data = tiny_weights.read_bytes()
    if damage == "tampered":  # a tensor changed, the metadata (and its recorded hash) left as it was
        with safe_open(str(tiny_weights), framework="pt") as handle:
            metadata, state = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        state["head.weight"].view(-1)[0] += 0.5
        save_file(state, str(weights), metadata=metadata)
    else:
        weights.write_bytes(b"\x00\x01 not a model " * 64 if damage == "garbage" else data[: len(data) // 2])
    window = make_window(weights, wait_model=False)
    with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS) as blocker:
        pass
    assert blocker.args == [False] and window.predictor is None
    banner = window.weights_banner.text()
    assert "Segmentation is off" in banner and str(weights) in banner and window.model.problem in banner
    assert not window.named_actions["segment"].isEnabled()
    with qtbot.waitSignal(window.imageLoaded, timeout=WAIT_MS):
        window.open_paths([image_folder / "lesion_0.png"])  # still a usable viewer and editor
    assert window.document.image is not None


@pytest.fixture
def bundled(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny weights installed as the bundled model of an app whose resources are in tmp_path."""
    monkeypatch.setattr(segmentation.resources, "resources_dir", lambda: tmp_path / "resources")
    path = tmp_path / "resources" / "models" / DEFAULT_WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    return Path(shutil.copy(tiny_weights, path))


@pytest.mark.parametrize("pin", ["wrong", "right"])
def test_the_app_checks_the_bundled_model_against_its_pin(
    pin: str, bundled: Path, make_window, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "0" * 64 if pin == "wrong" else file_sha256(bundled)
    segmentation.bundled_model.pin_path(bundled).write_text(f"{value}  {bundled.name}\n")
    window = make_window(None, wait_model=False)  # no --weights, nothing remembered: the bundled model
    with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS) as blocker:
        pass
    if pin == "right":
        assert blocker.args == [True] and window.predictor.weights_path == bundled
        return
    assert blocker.args == [False] and window.predictor is None
    banner = window.weights_banner.text()
    assert "Segmentation is off" in banner and str(bundled) in banner
    assert "does not match the pinned SHA-256 000000000000" in banner


# ------------------------------------------------------------------------------------------------ full disk
@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied")])
def test_a_failed_export_leaves_nothing_and_the_app_goes_on(
    code: int, reason: str, window, image_folder: Path, open_segmented, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up (or a folder that refuses writes) at the third of four files, where it shows up: the
    rename of the complete temp file. The two files already written are taken back; a retry then works."""
    open_segmented(window, image_folder / "lesion_0.png")
    out = image_folder.parent / "exports"
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent == out and Path(dst).name.endswith("_boundary.geojson"):
            raise OSError(code, os.strerror(code))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with qtbot.waitSignal(window.exporter.failed, timeout=WAIT_MS):
        assert window.export(out)
    assert window.last_error.startswith("Export failed: cannot write ") and reason in window.last_error
    assert "lesion_0_boundary.geojson" in window.last_error
    assert window.message_banner.isVisible()
    assert [p.name for p in out.iterdir() if p.name != RECORD_NAME] == [], "no half export, no temp file"
    monkeypatch.setattr(os, "replace", real_replace)  # space freed: the same export now works
    with qtbot.waitSignal(window.exporter.exported, timeout=WAIT_MS):
        assert window.export(out)
    assert len([p for p in out.iterdir() if p.name != RECORD_NAME]) == 4


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_link_to_a_named_pipe_neither_hangs_the_previews_nor_the_opening(window, tmp_path: Path, qtbot) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    os.mkfifo(tmp_path / "pipe")
    (folder / "pipe.jpg").symlink_to(tmp_path / "pipe")
    assert read_thumbnail(folder / "pipe.jpg", 56) is None
    with qtbot.waitSignal(window.loader.failed, timeout=WAIT_MS):
        window.open_paths([folder])
    assert "not a regular file" in window.last_error


# ------------------------------------------------------------------------------------------------ crash
EDITING_SESSION = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path

    import numpy as np
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.canvas import Tool
    from app.main_window import MainWindow

    image, weights, expected = sys.argv[1:4]
    app = QApplication([sys.argv[0]])
    window = MainWindow(weights=Path(weights), device="cpu")
    window.resize(900, 700)
    window.show()
    saves = []
    window.autosave.saved.connect(lambda path: saves.append(path))


    def wait(condition):
        # Not QTest.qWait: it keeps the GIL while it sleeps, so the thread loading the model ran in slivers
        # (measured: 39.5 s for the tiny model's ONNX export and timing, against 2.3 s with this loop).
        deadline = time.monotonic() + 60
        while not condition():
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > deadline:
                sys.exit(3)


    def at(x, y):
        return window.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


    def stroke(points, *, release=True):
        viewport = window.canvas.viewport()
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*points[0]))
        for point in points[1:]:
            QTest.mouseMove(viewport, at(*point))
        if release:
            QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*points[-1]))


    wait(lambda: window.predictor is not None)
    window.open_paths([Path(image)])
    wait(lambda: window.document.segmentation is not None)
    first = Tool.ERASER if window.document.mask[10, 20] else Tool.BRUSH  # whatever the untrained model drew,
    second = Tool.BRUSH if first is Tool.ERASER else Tool.ERASER  # each stroke changes the mask
    window.canvas.set_brush_radius(3)
    window.set_tool(first)
    stroke([(8, 10), (20, 10), (30, 10)])
    wait(lambda: len(saves) >= 1)
    window.set_tool(second)
    stroke([(20, 4), (20, 16)])  # across the first stroke
    wait(lambda: len(saves) >= 2)  # the second stroke is on disk
    np.save(expected, window.document.mask)
    window.set_tool(first)
    stroke([(20, 2), (20, 40), (50, 40)], release=False)  # a third stroke, still being drawn
    app.processEvents()
    assert window.document.undo_stack.count() == 2
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow  # a subprocess
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
def test_app_killed_while_editing_restores_the_last_completed_stroke(
    make_window, image_folder: Path, tiny_weights: Path, lesionlens_home: Path, tmp_path: Path, qtbot
) -> None:
    image, expected = image_folder / "lesion_2.png", tmp_path / "after second stroke.npy"
    script = tmp_path / "editing_session.py"
    script.write_text(EDITING_SESSION, encoding="utf-8")
    env = {**os.environ, "LESIONLENS_HOME": str(lesionlens_home), "QT_QPA_PLATFORM": "offscreen"}
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(Path(__file__).parents[2]))
    session = subprocess.run(
        [sys.executable, str(script), str(image), str(tiny_weights), str(expected)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert session.returncode == -signal.SIGKILL, session.stderr
    after_second_stroke = np.load(expected)

    window = make_window()
    with qtbot.waitSignal(window.segmented, timeout=WAIT_MS):
        window.open_paths([image])
    np.testing.assert_array_equal(window.document.mask, after_second_stroke)
    assert window.document.edited
    assert "Restored your edits from" in window.restore_banner.text()


# ------------------------------------------------------------------------------------------------ network
def test_opening_and_segmenting_opens_no_network_connection(
    make_window, image_folder: Path, open_segmented, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = block_network(monkeypatch)
    window = make_window()
    open_segmented(window, image_folder / "lesion_1.png")
    assert window.document.segmentation is not None
    assert attempts == []
    assert "PySide6.QtNetwork" not in sys.modules
