"""Tests never touch the user's files: a throw-away HOME, XDG folders and LESIONLENS_HOME for the whole session.

``tests/conftest.py`` calls :func:`isolate` from ``pytest_configure``, before any test module is imported, so every
in-process test and every subprocess a test starts (they inherit ``os.environ``) writes settings, autosaves, logs,
Qt's window state, ONNX Runtime's and matplotlib's caches into a temporary folder. At the end of the session
:func:`changes` compares the real user's folders with their state at the start: a test that escaped the isolation
fails the run and the message names the files it touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: Environment variables pointed into the session's temporary home.
ISOLATED_VARIABLES = (
    "HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "LESIONLENS_HOME",
)


def watched_folders(home: Path) -> tuple[list[Path], list[Path]]:
    """The real user's folders to compare: (watched whole, watched by their top-level entries only).

    LesionLens's own folders (data, Qt settings) and ONNX Runtime's telemetry store are compared file by file. In
    the shared ``~/.cache``, ``~/.config`` and ``~/.local/share`` other programs (a browser, pip) write all the
    time, so there only a new or removed entry (``~/.cache/matplotlib`` appearing, say) counts.
    """
    deep = [
        home / ".local" / "share" / "lesionlens",
        home / ".config" / "LesionLens",
        home / ".config" / "lesionlens",
        home / ".cache" / "lesionlens",
        home / ".cache" / "Microsoft",
    ]
    shallow = [home / ".local" / "share", home / ".config", home / ".cache", home / ".local" / "state"]
    return deep, shallow


Snapshot = dict[str, tuple[int, int]]


def snapshot(deep: Sequence[Path], shallow: Sequence[Path] = ()) -> Snapshot:
    """(size, mtime in ns) of every file and folder under ``deep`` and of the entries directly in ``shallow``
    (their times are left out: only an entry appearing or going counts there); links are not followed."""
    entries: Snapshot = {}
    for folder in shallow:
        try:
            entries.update({str(folder / name): (0, 0) for name in os.listdir(folder)})
        except OSError:
            continue
    for folder in deep:
        if not folder.exists():
            continue
        for root, dirs, files in os.walk(folder, onerror=lambda _error: None):
            for name in dirs + files:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                entries[path] = (st.st_size if name in files else 0, st.st_mtime_ns)
    return entries


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs between two snapshots: 'created PATH', 'removed PATH', 'modified PATH', sorted."""
    found = [f"created {p}" for p in after.keys() - before.keys()]
    found += [f"removed {p}" for p in before.keys() - after.keys()]
    found += [f"modified {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(found)


class Isolation:
    """The session's temporary home and the real user's folders it protects."""

    def __init__(self) -> None:
        self.real_home = Path(os.path.expanduser("~"))
        self.saved = {name: os.environ.get(name) for name in ISOLATED_VARIABLES}
        self.deep, self.shallow = watched_folders(self.real_home)
        # Where the real XDG variables or LESIONLENS_HOME point, when they point elsewhere than the defaults.
        for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            value = self.saved[name]
            if value and Path(value).is_absolute() and Path(value) not in self.shallow:
                self.shallow.append(Path(value))
        if self.saved["LESIONLENS_HOME"]:
            self.deep.append(Path(self.saved["LESIONLENS_HOME"]))
        self.before = snapshot(self.deep, self.shallow)
        self.root = Path(tempfile.mkdtemp(prefix="lesionlens-test-home-"))

    def apply(self) -> None:
        home = self.root / "home"
        targets = {
            "HOME": home,
            "XDG_DATA_HOME": home / ".local" / "share",
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_CACHE_HOME": home / ".cache",
            "XDG_STATE_HOME": home / ".local" / "state",
            "XDG_RUNTIME_DIR": self.root / "runtime",
            "LESIONLENS_HOME": self.root / "lesionlens-home",
        }
        for name, path in targets.items():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.environ[name] = str(path)

    def finish(self) -> list[str]:
        """Remove the temporary home and return what changed in the real folders.

        The environment keeps pointing into the (removed) temporary home: a window closed after the session (Qt's
        teardown, ``atexit``) must not save into the real user's folders, which a restored HOME would allow."""
        shutil.rmtree(self.root, ignore_errors=True)
        return changes(self.before, snapshot(self.deep, self.shallow))


def isolate() -> Isolation:
    isolation = Isolation()
    isolation.apply()
    return isolation
