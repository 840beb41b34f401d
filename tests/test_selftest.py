"""``lesionlens --self-test`` from source: passes with the bundled files, fails loudly on a wrong or broken one.

The failing cases run on a copy of ``resources/`` in a temporary folder, so the bundled files are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segmentation.imageio import read_mask, write_mask
from segmentation.resources import resources_dir
from segmentation.selftest import MIN_DICE, main, run_self_test, selftest_files

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _bundled_files() -> None:
    missing = [path for path in vars(selftest_files()).values() if not path.is_file()]
    if missing:
        pytest.skip(f"no bundled model or self-test reference yet: {missing[0]}")


@pytest.fixture
def resources_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled files to break; PyTorch only, so no test waits for ONNX Runtime's export and timing."""
    monkeypatch.setenv("LESIONLENS_BACKEND", "torch")
    copy = tmp_path / "resources"
    for part in ("models", "samples", "selftest"):
        shutil.copytree(resources_dir() / part, copy / part)
    return copy


def test_bundled_model_matches_its_reference() -> None:
    result = run_self_test(device="cpu")
    assert result.passed
    assert result.dice >= MIN_DICE
    assert result.device.startswith("CPU")


@pytest.mark.slow  # a subprocess
def test_console_script_passes_from_another_folder_without_qt(tmp_path: Path) -> None:
    probe = (
        "import sys; from app.launcher import main; status = main(['--self-test', '--device', 'cpu']); "
        "qt = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]; "
        "assert not qt, f'the self-test imported {qt[:3]}'; sys.exit(status)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("QT_", "LESIONLENS_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "PASS"
    assert any(line.startswith("device: CPU") for line in lines)
    assert any(line.startswith("Dice against the Python build's reference: ") for line in lines)


def test_a_wrong_reference_fails(resources_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = selftest_files(resources_copy).reference
    mask = read_mask(reference)
    assert mask.any(), "the reference mask is empty: shifting it would test nothing"
    write_mask(reference, np.roll(mask, (mask.shape[0] // 4, mask.shape[1] // 4), axis=(0, 1)))
    assert main(["--resources", str(resources_copy), "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "FAIL"
    dice_line = next(line for line in out.splitlines() if line.startswith("Dice"))
    assert float(dice_line.split(": ")[1].split()[0]) < MIN_DICE


def test_an_empty_reference_fails(resources_copy: Path) -> None:
    reference = selftest_files(resources_copy).reference
    write_mask(reference, np.zeros_like(read_mask(reference)))
    assert not run_self_test(resources_copy, "cpu").passed


@pytest.mark.parametrize("part", ["weights", "sample", "reference"])
def test_a_missing_file_is_named(part: str, resources_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = getattr(selftest_files(resources_copy), part)
    path.unlink()
    assert main(["--resources", str(resources_copy)]) == 2
    captured = capsys.readouterr()
    assert str(path) in captured.err
    assert "not found" in captured.err
    assert captured.out.splitlines()[-1] == "FAIL"


def test_altered_weights_are_refused_by_the_pin(resources_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = selftest_files(resources_copy).weights
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one bit pattern in the last tensor's bytes
    weights.write_bytes(bytes(data))
    assert main(["--resources", str(resources_copy)]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err
    assert "pinned SHA-256" in err


def test_a_corrupt_reference_is_named(resources_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = selftest_files(resources_copy).reference
    reference.write_bytes(reference.read_bytes()[:40])
    assert main(["--resources", str(resources_copy)]) == 2
    err = capsys.readouterr().err
    assert str(reference) in err
    assert "unreadable" in err


def test_a_reference_of_another_size_is_named(resources_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = selftest_files(resources_copy).reference
    write_mask(reference, read_mask(reference)[:-8])
    assert main(["--resources", str(resources_copy)]) == 2
    err = capsys.readouterr().err
    assert str(reference) in err
    assert "reference mask is" in err
