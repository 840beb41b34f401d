"""Fixtures for the GUI tests: a main window with the tiny *untrained* model, in a throw-away home folder.

``LESIONLENS_HOME`` points into ``tmp_path`` for every GUI test, so settings, autosaves, the log and the window's
QSettings never touch the real user's files. The model is the session's ``tiny_weights`` (tests/conftest.py:
``save_weights`` of a random base-width-4 network, input 48x64, named "untrained-test-model"): its masks mean
nothing, and these tests only check the plumbing. Images are tiny so the whole set stays fast on two busy cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.main_window import MainWindow
from segmentation.lesion import LesionSegmentation
from segmentation.provenance import ModelIdentity
from segmentation.resources import WEIGHTS_ENV

WAIT_MS = 15_000


@pytest.fixture(autouse=True)
def lesionlens_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LESIONLENS_HOME", str(home))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    return home


@pytest.fixture
def make_window(qtbot, tiny_weights: Path) -> Iterator[Callable[..., MainWindow]]:
    """Factory: a shown main window whose model has finished loading; every window is closed at teardown."""
    windows: list[MainWindow] = []

    def make(weights: Path | None = tiny_weights, *, wait_model: bool = True) -> MainWindow:
        window = MainWindow(weights=weights, device="cpu")
        windows.append(window)
        window.resize(1000, 700)
        if wait_model:
            with qtbot.waitSignal(window.modelLoaded, timeout=WAIT_MS):
                window.show()
        else:
            window.show()
        return window

    yield make
    for window in windows:
        close_window(window)


def close_window(window: MainWindow) -> None:
    """Close like the user does (autosave, settings, threads) and free the widget."""
    if window.isVisible():
        window.close()
    window.deleteLater()


@pytest.fixture
def window(make_window: Callable[..., MainWindow]) -> MainWindow:
    return make_window()


@pytest.fixture
def image_folder(tmp_path: Path, rgb_image) -> Path:
    """Three small PNGs (48x64) in a folder."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(rgb_image(48, 64, seed=index)).save(folder / f"lesion_{index}.png")
    return folder


@pytest.fixture
def open_segmented(qtbot) -> Callable[[MainWindow, Path], None]:
    """Open an image and wait until the model's result is in the document."""

    def run(window: MainWindow, path: Path) -> None:
        with qtbot.waitSignal(window.segmenter.finished, timeout=WAIT_MS):
            window.open_paths([path])
        qtbot.waitUntil(lambda: window.document.segmentation is not None, timeout=WAIT_MS)

    return run


@pytest.fixture
def known_segmentation() -> Callable[[tuple[int, int]], LesionSegmentation]:
    """A known probability map rising from 0 at the left edge to 1 at the right: threshold t keeps x >= t * w."""

    def make(shape: tuple[int, int]) -> LesionSegmentation:
        height, width = shape
        probability = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
        return LesionSegmentation(probability, model=ModelIdentity("known-map", "0" * 64))

    return make
