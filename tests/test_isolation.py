"""The test session never touches the user's files: it runs in a temporary home, and a change is caught."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from isolation import ISOLATED_VARIABLES, Isolation, changes, snapshot

from app.settings import app_data_dir


def test_every_test_runs_in_the_session_temporary_home(_isolated_home: Isolation) -> None:
    root = _isolated_home.root
    for name in ISOLATED_VARIABLES:
        assert Path(os.environ[name]).is_relative_to(root), name
    assert Path.home().is_relative_to(root)
    assert app_data_dir().is_relative_to(root)
    assert Path.home() != _isolated_home.real_home


@pytest.mark.slow  # a subprocess
def test_subprocesses_inherit_the_temporary_home(_isolated_home: Isolation) -> None:
    code = "import pathlib, app.settings as s; print(pathlib.Path.home()); print(s.app_data_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    for line in out.splitlines():
        assert Path(line).is_relative_to(_isolated_home.root), line


def test_the_session_check_sees_a_file_written_into_a_watched_folder(tmp_path: Path) -> None:
    """The end-of-session comparison is the one the conftest uses: it must notice a write, deep and shallow."""
    deep, shallow = tmp_path / "share" / "lesionlens", tmp_path / "cache"
    deep.mkdir(parents=True)
    shallow.mkdir()
    (deep / "settings.json").write_text("{}")
    (shallow / "pip").mkdir()
    before = snapshot([deep], [shallow])
    assert changes(before, snapshot([deep], [shallow])) == []
    (deep / "settings.json").write_text('{"mm_per_pixel": 0.02}')
    (deep / "autosave").mkdir()
    (shallow / "Microsoft").mkdir()
    (shallow / "pip" / "other-programs-write-here").write_text("x")  # not ours: only top-level entries count
    found = changes(before, snapshot([deep], [shallow]))
    assert set(found) == {
        f"created {deep / 'autosave'}",
        f"created {shallow / 'Microsoft'}",
        f"modified {deep / 'settings.json'}",
    }
