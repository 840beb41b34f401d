"""Shared fixtures: a tiny *untrained* weights file, the shared ISIC sample folder and synthetic RGB images.

The session runs with a throw-away HOME, XDG folders and LESIONLENS_HOME (``tests/isolation.py``), set in
``pytest_configure`` before any test module is collected; a run that touches the real user's folders fails.

Everything here is deliberately small (base width 4, 48x64 input) so the suite stays fast on two busy cores. The
weights are random: they exercise the plumbing (file format, preprocessing, inference, CLI) and say nothing about
segmentation quality; their name says so, and no test treats their masks as lesions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from isolation import Isolation, isolate

from segmentation.network import NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.resources import WEIGHTS_ENV
from segmentation.weights import save_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
ISIC_SAMPLE_DIR = (REPO_ROOT / ".." / "shared" / "datasets" / "isic2017").resolve()
UNTRAINED_NAME = "untrained-test-model"
TINY_CONFIG = NetworkConfig(variant="full", base_width=4)
TINY_PREPROCESSING = Preprocessing(input_size=(48, 64))


_ISOLATION_KEY = pytest.StashKey[Isolation]()
_ESCAPED_KEY = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    """Point HOME, XDG_* and LESIONLENS_HOME into a temporary folder before any test module is imported."""
    config.stash[_ISOLATION_KEY] = isolate()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the real user's folders changed while it ran (a test escaped the isolation)."""
    isolation = session.config.stash.get(_ISOLATION_KEY, None)
    if isolation is None:
        return
    escaped = isolation.finish()
    session.config.stash[_ESCAPED_KEY] = escaped
    if escaped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    escaped = config.stash.get(_ESCAPED_KEY, [])
    if escaped:
        terminalreporter.section("the tests touched the real user's files", red=True)
        for line in escaped[:50]:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(pytestconfig: pytest.Config) -> Isolation:
    """Every test runs in the session's temporary home (see ``pytest_configure``); this checks it still holds."""
    isolation = pytestconfig.stash[_ISOLATION_KEY]
    assert Path(os.environ["HOME"]).is_relative_to(isolation.root), "HOME is not the session's temporary home"
    assert Path(os.environ["LESIONLENS_HOME"]).is_relative_to(isolation.root)
    return isolation


@pytest.fixture(scope="session", autouse=True)
def _few_threads() -> None:
    """A training job shares the two cores; one intra-op thread keeps tiny models from fighting it."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised (untrained) full network, base width 4, saved as a LesionLens weights file."""
    torch.manual_seed(1234)
    model = build_model(TINY_CONFIG)
    path = tmp_path_factory.mktemp("weights") / "untrained-test-model.safetensors"
    save_weights(path, model, name=UNTRAINED_NAME, preprocessing=TINY_PREPROCESSING)
    return path


@pytest.fixture(scope="session")
def isic_sample_dir() -> Path:
    """``../shared/datasets/isic2017`` relative to the repository root (may be absent; see ``require_isic``)."""
    return ISIC_SAMPLE_DIR


def skip_without_isic(folder: Path, subfolder: str = "") -> Path:
    """``folder / subfolder`` if the shared ISIC data is there, else skip the calling test with a clear reason."""
    target = folder / subfolder if subfolder else folder
    if not target.is_dir() or not any(target.iterdir()):
        pytest.skip(f"shared ISIC 2017 data not found at {target} (it lives outside the repository, in ../shared)")
    return target


@pytest.fixture
def require_isic(isic_sample_dir: Path) -> Callable[[str], Path]:
    """``require_isic("ISIC-2017_Validation_Data")``: that shared folder, or skip the test when it is absent."""
    return lambda subfolder="": skip_without_isic(isic_sample_dir, subfolder)


@pytest.fixture(scope="session")
def tiny_preprocessing() -> Preprocessing:
    """The preprocessing stored in ``tiny_weights``."""
    return TINY_PREPROCESSING


@pytest.fixture
def rgb_image() -> Callable[..., np.ndarray]:
    """Factory for deterministic uint8 HxWx3 RGB images: a smooth background with a darker blob, plus noise."""

    def make(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        cy, cx = height * rng.uniform(0.35, 0.65), width * rng.uniform(0.35, 0.65)
        radius = max(1.0, 0.3 * min(height, width))
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2)))
        base = np.array([200.0, 160.0, 140.0], dtype=np.float32)
        image = base - blob[..., None] * np.array([120.0, 100.0, 80.0], dtype=np.float32)
        image += rng.normal(0.0, 6.0, size=(height, width, 3))
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    return make


@pytest.fixture(autouse=True)
def _no_weights_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own $LESIONLENS_WEIGHTS must never leak into a test."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)


@pytest.fixture
def segment(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[..., tuple[int, str]]:
    """``lesionlens segment ARGV`` in-process; returns (exit status, everything it printed and logged)."""
    from segmentation.cli import main

    def run(*argv: str | os.PathLike) -> tuple[int, str]:
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.INFO, logger="lesionlens"):
            status = main([str(a) for a in argv])
        return status, capsys.readouterr().err + caplog.text

    return run
