"""Architecture rules: the segmentation core and the trainer never import Qt, and the import-linter contracts hold.

Each check runs in a fresh interpreter, because this test process may already have imported PySide6 (pytest-qt).
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import segmentation
import trainer

REPO_ROOT = Path(__file__).resolve().parent.parent

# Imports each named module in turn and reports the first one after which PySide6 (or app) is loaded.
PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m == "PySide6" or m.startswith(("PySide6.", "shiboken6")))
    assert not leaked, f"importing {name} loaded {leaked[:3]}"
    gui = sorted(m for m in sys.modules if m == "app" or m.startswith("app."))
    assert not gui, f"importing {name} loaded {gui}"
print("ok", len(sys.argv) - 1)
"""


def _modules(package) -> list[str]:
    names = [package.__name__]
    names += [info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")]
    return names


def _probe(*modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_walk_finds_the_core_modules() -> None:
    modules = _modules(segmentation) + _modules(trainer)
    for expected in ("segmentation.network", "segmentation.cli", "segmentation.batch", "trainer.data", "trainer.cli"):
        assert expected in modules


@pytest.mark.slow  # a subprocess
def test_segmentation_and_trainer_never_import_qt() -> None:
    modules = [m for m in _modules(segmentation) + _modules(trainer) if not m.endswith(".__main__")]
    modules.append("trainer.__main__")  # guarded by `if __name__ == "__main__"`: importing it runs nothing
    completed = _probe(*modules)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == f"ok {len(modules)}"


LAUNCHER_PROBE = """
import contextlib, io, sys
from app import launcher
assert not any(m.startswith("PySide6") for m in sys.modules), "app.launcher imported PySide6"
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    launcher.main(["segment", "--help"])
assert "lesionlens segment" in out.getvalue(), out.getvalue()
assert not any(m.startswith("PySide6") for m in sys.modules), "segment --help imported PySide6"
"""


@pytest.mark.slow  # a subprocess
def test_the_launcher_does_not_import_qt_for_the_headless_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", LAUNCHER_PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


def _lint_imports() -> Path:
    found = Path(sys.executable).parent / "lint-imports"
    if not found.is_file():
        found = Path(shutil.which("lint-imports") or "")
    if not found.is_file():
        pytest.skip("import-linter (lint-imports) is not installed")
    return found


def _run_lint_imports(*args: str) -> tuple[int, str]:
    completed = subprocess.run(
        [str(_lint_imports()), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    return completed.returncode, completed.stdout + completed.stderr


@pytest.mark.slow  # a subprocess
def test_import_linter_contracts_hold() -> None:
    """Every contract, with external packages (PySide6, torch...) and type-checking imports counted: issue 17's "the
    window composes and its parts never import it back", not even under ``if TYPE_CHECKING``."""
    config = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "include_external_packages = true" in config and "exclude_type_checking_imports = false" in config
    status, output = _run_lint_imports("--no-cache")
    assert status == 0, output[-3000:]
    for contract in ("no import circles inside the app", "no import circles inside the trainer"):
        assert f"{contract} KEPT" in output
    assert "0 broken" in output
