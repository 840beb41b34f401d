"""One LesionLens run writes into an output folder at a time.

``<folder>/.lesionlens.lock`` holds the writer's pid, host and start time, and is locked with the operating
system's file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows), which the kernel releases when the process
dies however it dies. So a second run finds it locked and says who holds it, while a lock file left by a killed run
is unlocked: it is stale, and the new run takes it over and says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".lesionlens.lock"
log = logging.getLogger("lesionlens.lock")

try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


class FolderLockedError(Exception):
    """Another LesionLens run is writing into the folder; ``str()`` says which."""


def _describe(info: dict) -> str:
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started at {info.get('started_at', '?')}"


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    with contextlib.suppress(ValueError):
        info = json.loads(raw.decode("utf-8", "replace"))
        return info if isinstance(info, dict) else {}
    return {}


@contextlib.contextmanager
def output_folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the folder's lock for the ``with`` block (the folder must exist); FolderLockedError if another run holds
    it, OSError if the lock file cannot be made. A stale lock of a killed run is taken over with a log message."""
    path = Path(folder) / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        if not _try_lock(fd):
            holder = _read(fd)
            os.close(fd)
            raise FolderLockedError(f"another LesionLens run ({_describe(holder)}) is writing here: {folder}")
        try:  # the file may have been removed by its releasing holder after we opened it: lock the one on disk
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    if stale := _read(fd):
        log.warning(
            "taking over the lock of an earlier LesionLens run that is no longer running (%s)", _describe(stale)
        )
    info = {
        "pid": os.getpid(),
        "host": platform.node(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: a run that opened it meanwhile sees another file and retries
        os.close(fd)
