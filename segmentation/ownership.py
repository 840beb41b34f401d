"""Which files in an output folder LesionLens wrote: the folder's own record, proven by content hash.

Every file a batch or an export writes is first recorded in ``<folder>/.lesionlens-outputs.jsonl``, one JSON line
per write (``file`` relative to the folder, its ``sha256`` and ``size``, ``kind``, ``source`` image, time), and
only then put in place. A file counts as LesionLens's own when its current bytes hash to a SHA-256 recorded for
its name: a user's file of the same name (their ground truth), a file changed after LesionLens wrote it, a
0-byte or truncated file are not, whatever ``results.csv`` says. Keys are relative to the folder, so ownership
does not depend on the working directory or on relative versus absolute paths.

The record is append-only: a kill can at worst cut its last line, which is ignored (and ended before the next
append). Recording before writing means a file on disk is never one the record does not know; a record of a
write that never happened is harmless (no file has that hash). Lines are appended without an fsync of their own
(it cost 5 ms per file on this project's machine, a third of an atomic mask write): a killed process loses nothing
(the kernel has the line), and after a power cut a file whose line was lost counts as not LesionLens's own, so the
failure mode is a refusal to overwrite, never an overwrite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from segmentation.imageio import OutputWriteError, atomic_write_bytes, write_reason

RECORD_NAME = ".lesionlens-outputs.jsonl"

ABSENT, OURS, CHANGED, FOREIGN = "absent", "ours", "changed", "foreign"


def sha256_of(path: Path) -> str:
    """SHA-256 of a regular file's bytes; "" when it is missing, unreadable or not a regular file."""
    digest = hashlib.sha256()
    if not os.path.isfile(path):  # checked first: opening a pipe would block
        return ""
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


class OutputRecord:
    """The ownership record of one output folder (safe to use from several threads of one process)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RECORD_NAME
        self._lock = threading.Lock()
        self._entries: dict[str, list[dict]] = {}
        self._loaded_size = -1

    # -- reading -------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        """(Re)read the record when it changed on disk (another writer, e.g. an export from the GUI)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if size == self._loaded_size:
            return
        entries: dict[str, list[dict]] = {}
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                        entries.setdefault(entry["file"], []).append(entry)
        self._entries, self._loaded_size = entries, size

    def key(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the folder (posix, both resolved); ValueError when it lies outside."""
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(self.folder)).as_posix()

    def state(self, path: str | os.PathLike[str]) -> str:
        """ABSENT (nothing there), OURS (bytes LesionLens wrote there), CHANGED (LesionLens wrote there, but the
        bytes differ now: edited, truncated, emptied) or FOREIGN (something LesionLens never wrote)."""
        path = Path(path)
        if not (path.exists() or path.is_symlink()):
            return ABSENT
        with self._lock:
            self._load()
            try:
                entries = self._entries.get(self.key(path), [])
            except ValueError:
                return FOREIGN
        if not entries or path.is_symlink():
            return FOREIGN
        digest = sha256_of(path)
        return OURS if digest and any(e.get("sha256") == digest for e in entries) else CHANGED

    def owns(self, path: str | os.PathLike[str]) -> bool:
        return self.state(path) == OURS

    def files(self, kind: str | None = None) -> Iterator[tuple[Path, dict]]:
        """(file, its latest entry) for every file recorded (of ``kind``) that is still exactly what was written."""
        with self._lock:
            self._load()
            latest = {key: entries[-1] for key, entries in self._entries.items()}
        for key, entry in latest.items():
            file = self.folder / key
            if (kind is None or entry.get("kind") == kind) and self.owns(file):
                yield file, entry

    def sources(self, kind: str = "mask") -> set[Path]:
        """The source images of the intact outputs of ``kind`` (absolute paths as recorded)."""
        return {Path(entry["source"]) for _, entry in self.files(kind) if entry.get("source")}

    # -- writing -------------------------------------------------------------------------------------------------
    def claim(
        self, path: str | os.PathLike[str], data: bytes, *, kind: str, source: str | os.PathLike[str] = ""
    ) -> None:
        """Record that LesionLens is about to write ``data`` to ``path`` (call before the file is put in place)."""
        entry = {
            "file": self.key(path),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "kind": kind,
            "source": os.path.abspath(source) if source else "",
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666)
                try:
                    if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                        line = b"\n" + line  # a kill cut the last line: end it, so this one parses
                    os.write(fd, line)  # no fsync (it doubled the cost of a write): see the module's note
                finally:
                    os.close(fd)
            except OSError as error:
                raise OutputWriteError(self.path, write_reason(error)) from error

    def write(
        self, path: str | os.PathLike[str], data: bytes, *, kind: str, source: str | os.PathLike[str] = ""
    ) -> Path:
        """Record, then write ``data`` atomically to ``path``."""
        self.claim(path, data, kind=kind, source=source)
        return atomic_write_bytes(path, data)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def describe(path: Path, state: str) -> str:
    """Why LesionLens will not write over ``path`` (for a FOREIGN or CHANGED state)."""
    if state == CHANGED:
        return f"{path} was changed after LesionLens wrote it; move it or choose another output folder"
    return f"{path} already exists and was not written by LesionLens; move it or choose another output folder"
