"""LesionLens's own folders hold patients' derivatives (autosaved masks with the image's path, logs naming files):
they are private to the user, 0700 folders and 0600 files, whatever the umask. Files written into a folder the
user chose (exports, batch output) are not made private here: they follow the user's umask like any other file.

On Windows (no POSIX permission bits) these calls create the folders and files normally; the per-user profile
folder is already private there.
"""

from __future__ import annotations

import contextlib
import logging.handlers
import os
from pathlib import Path

__all__ = ["PRIVATE_FILE_MODE", "PRIVATE_FOLDER_MODE", "PrivateRotatingFileHandler", "private_folder"]

PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and any missing parents) as 0700 folders, and make an existing ``path`` 0700 too (a folder
    an older version made 0755). Parents that already exist are left alone. Raises OSError."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another thread or process meanwhile
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
    if os.name == "posix":
        os.chmod(path, PRIVATE_FOLDER_MODE)  # mkdir's mode is filtered by the umask; chmod's is not
    return path


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log (``maxBytes`` per file, ``backupCount`` old files) whose every file is 0600."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        if os.name == "posix":
            os.fchmod(fd, PRIVATE_FILE_MODE)  # a log an older version wrote 0644
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
