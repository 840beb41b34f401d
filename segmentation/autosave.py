"""Per-image autosave of the clinician's work (mask, threshold, edits, calibration), so nothing is lost on a crash.

Each image has two files in the store's folder, named by a key derived from the image's absolute path:
``<key>.png`` (the mask) and ``<key>.json`` (everything else, plus the source file's path, size and mtime and the
image shape). The JSON is written last and is the commit marker: it records a hash of the mask, and a mask that
does not match it is never loaded. While a save is in progress the previous mask is kept as ``<key>.prev.png``, so
a save that fails (full disk) or is killed half-way leaves the previous state loadable.

Loading is defensive: a missing, corrupt or mismatched state (other image size, or the source file changed since
the save) gives None, never an exception, because restoring the wrong mask onto an image is worse than restoring
none. A state that exists but cannot be used is never deleted or overwritten: :meth:`AutosaveStore.load_checked`
moves its files aside (renamed into ``unusable/``) and says why, so the app can tell the clinician.

The folder is private (0700) and its files 0600: they hold a patient's mask and the image's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from segmentation.calibration import Calibration
from segmentation.imageio import ImageReadError, OutputWriteError, atomic_write_bytes, read_mask, write_mask
from segmentation.lesion import LesionSegmentation
from segmentation.private_files import PRIVATE_FILE_MODE, private_folder

__all__ = ["FORMAT_VERSION", "AutosaveStore", "SavedState", "SetAside", "autosave_key", "saved_state"]

UNUSABLE_FOLDER = "unusable"

FORMAT_VERSION = 1
_KEY_LENGTH = 24  # hex digits of SHA-256: 96 bits, no collisions in any realistic number of images


@dataclass
class SavedState:
    """What is saved for one image: its lesion result without the probability maps (see :func:`saved_state`), and
    the image's calibration; ``saved_at`` (UTC ISO time) is filled in by ``save`` when left empty.
    ``edited_at`` is when the clinician last changed the mask (saving again later does not change it); "" when
    unknown (a state saved before it was recorded)."""

    mask: np.ndarray
    threshold: float
    edited: bool
    cleanup: tuple[str, ...]
    mm_per_pixel: float | None
    model_sha256: str
    saved_at: str = ""
    edited_at: str = ""
    #: Where the calibration came from ("measured", "profile", "typed"; "" when uncalibrated) and the profile's name.
    calibration_source: str = ""
    calibration_profile: str = ""


def saved_state(
    result: LesionSegmentation,
    *,
    calibration: Calibration | None = None,
    edited_at: str = "",
    model_sha256: str | None = None,
) -> SavedState:
    """What autosave keeps of a lesion result: all of it but the probability maps (the model makes them again),
    with the image's calibration and the time of the last edit. ``model_sha256`` defaults to the result's model."""
    return SavedState(
        mask=result.mask.copy(),
        threshold=result.threshold,
        edited=result.edited,
        cleanup=tuple(result.cleanup),
        mm_per_pixel=None if calibration is None else calibration.mm_per_pixel,
        model_sha256=result.model.sha256 if model_sha256 is None else model_sha256,
        edited_at=edited_at,
        calibration_source="" if calibration is None else calibration.source,
        calibration_profile="" if calibration is None else calibration.profile,
    )


@dataclass
class SetAside:
    """A saved state that could not be used: why, and where its files are now (empty if they could not be moved)."""

    reason: str
    files: list[Path]


def autosave_key(image_path: Path) -> str:
    """First 24 hex digits of the SHA-256 of the resolved absolute path (case-folded where the OS folds case)."""
    path = Path(image_path).expanduser()
    try:
        absolute = str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): listed, never opened
        absolute = os.path.abspath(path)
    resolved = os.path.normcase(absolute)
    return hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()[:_KEY_LENGTH]


def _mask_digest(mask: np.ndarray) -> str:
    """Hash of the mask's content (shape + bits), independent of how the PNG happens to be encoded."""
    mask = np.asarray(mask, dtype=bool)
    digest = hashlib.sha256(f"{mask.shape[0]}x{mask.shape[1]}:".encode())
    digest.update(np.packbits(mask, axis=None).tobytes())
    return digest.hexdigest()


def _source_stat(image_path: Path) -> tuple[int, int] | None:
    """(size in bytes, mtime in ns) of the source file; None when it cannot be stat'ed."""
    try:
        st = Path(image_path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class AutosaveStore:
    """Saved states of many images in one folder (the app uses ``app_data_dir() / "autosave"``).

    Not meant for concurrent saves of the same image from several threads; the GUI saves from one place.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _paths(self, image_path: Path) -> tuple[Path, Path, Path]:
        key = autosave_key(image_path)
        return self.folder / f"{key}.png", self.folder / f"{key}.json", self.folder / f"{key}.prev.png"

    # -- saving --------------------------------------------------------------------------------------------------
    def save(self, image_path: Path, state: SavedState) -> None:
        """Save ``state`` for ``image_path``, atomically. Raises OutputWriteError (for the caller to show) when it
        cannot be written; the previously saved state is then still the one ``load`` returns."""
        mask = np.asarray(state.mask)
        if mask.ndim != 2 or mask.size == 0:
            raise ValueError(f"mask must be a non-empty HxW array, got shape {mask.shape}")
        mask = mask if mask.dtype == np.bool_ else mask != 0
        stat = _source_stat(image_path)
        document = {
            "format": FORMAT_VERSION,
            "source_path": str(Path(image_path).expanduser().resolve()),
            "source_size": stat[0] if stat else None,
            "source_mtime_ns": stat[1] if stat else None,
            "image_shape": [int(mask.shape[0]), int(mask.shape[1])],
            "mask_sha256": _mask_digest(mask),
            "threshold": float(state.threshold),
            "edited": bool(state.edited),
            "cleanup": [str(step) for step in state.cleanup],
            "mm_per_pixel": None if state.mm_per_pixel is None else float(state.mm_per_pixel),
            "model_sha256": str(state.model_sha256),
            "calibration_source": str(state.calibration_source),
            "calibration_profile": str(state.calibration_profile),
            "saved_at": state.saved_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "edited_at": str(state.edited_at),
        }
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        png, meta, prev = self._paths(image_path)
        try:
            private_folder(self.folder)
        except OSError as e:
            raise OutputWriteError(self.folder, e.strerror or str(e)) from e
        self._settle(png, meta, prev)
        try:
            if png.exists():  # keep the committed mask aside (a rename: needs no disk space) until the JSON is in
                os.replace(png, prev)
        except OSError as e:
            raise OutputWriteError(png, e.strerror or str(e)) from e
        try:
            write_mask(png, mask, mode=PRIVATE_FILE_MODE)
            atomic_write_bytes(meta, data, mode=PRIVATE_FILE_MODE)
        except BaseException:
            with contextlib.suppress(OSError):
                if prev.exists():
                    os.replace(prev, png)  # back to the previous, committed state
                else:
                    png.unlink(missing_ok=True)  # first save: an uncommitted mask is just clutter
            raise
        with contextlib.suppress(OSError):
            prev.unlink(missing_ok=True)

    def _settle(self, png: Path, meta: Path, prev: Path) -> None:
        """After a save that was killed half-way, put the committed mask back under its own name."""
        if not prev.exists():
            return
        document = self._read_json(meta)
        if document is not None and self._read_matching_mask(png, document) is not None:
            with contextlib.suppress(OSError):
                prev.unlink()
        else:
            with contextlib.suppress(OSError):
                os.replace(prev, png)

    # -- loading -------------------------------------------------------------------------------------------------
    def load(self, image_path: Path, image_shape: tuple[int, int]) -> SavedState | None:
        """The saved state for ``image_path``, or None when there is none, it is corrupt or unreadable, it was made
        for an image of another size, or the source file changed (size or mtime) since it was saved."""
        return self._check(image_path, image_shape)[0]

    def load_checked(self, image_path: Path, image_shape: tuple[int, int]) -> tuple[SavedState | None, SetAside | None]:
        """Like :meth:`load`; a state that exists but cannot be used is moved aside (renamed into ``unusable/``,
        never deleted) and returned as :class:`SetAside` with the reason, so the caller can tell the user."""
        state, problem = self._check(image_path, image_shape)
        if problem is None:
            return state, None
        return None, SetAside(problem, self._set_aside(image_path))

    def _check(self, image_path: Path, image_shape: tuple[int, int]) -> tuple[SavedState | None, str | None]:
        """(state, None), (None, None) when nothing is saved, or (None, why the saved state cannot be used)."""
        png, meta, prev = self._paths(image_path)
        try:
            meta.lstat()
        except FileNotFoundError:
            return None, None
        except OSError:
            pass  # there but not readable: _read_json says it is unusable
        document = self._read_json(meta)
        if document is None:
            return None, "the saved file is damaged or incomplete"
        shape = tuple(document["image_shape"])
        if shape != tuple(int(s) for s in image_shape[:2]):
            saved, now = f"{shape[1]}x{shape[0]}", f"{image_shape[1]}x{image_shape[0]}"
            return None, f"they were saved for a {saved} image, this one is {now}"
        stat = _source_stat(image_path)
        if stat is None or (document["source_size"], document["source_mtime_ns"]) != stat:
            # another image now has this path (or it was modified): its mask would be wrong
            return None, "the image file has changed since they were saved"
        mask = self._read_matching_mask(png, document)
        if mask is None:
            mask = self._read_matching_mask(prev, document)  # a save was killed after moving the mask aside
        if mask is None:
            return None, "the saved mask is missing or damaged"
        return SavedState(
            mask=mask,
            threshold=document["threshold"],
            edited=document["edited"],
            cleanup=tuple(document["cleanup"]),
            mm_per_pixel=document["mm_per_pixel"],
            model_sha256=document["model_sha256"],
            saved_at=document["saved_at"],
            edited_at=document["edited_at"] if isinstance(document.get("edited_at"), str) else "",
            calibration_source=str(document.get("calibration_source", "")),
            calibration_profile=str(document.get("calibration_profile", "")),
        ), None

    def _set_aside(self, image_path: Path) -> list[Path]:
        """Rename the state's files into ``unusable/<key>-<UTC time>.*``; returns their new paths."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        key = autosave_key(image_path)
        moved = []
        try:
            target = private_folder(self.folder / UNUSABLE_FOLDER)
        except OSError:
            return moved
        for path, suffix in zip(self._paths(image_path), (".png", ".json", ".prev.png"), strict=True):
            if path.exists():
                destination = target / f"{key}-{stamp}{suffix}"
                with contextlib.suppress(OSError):
                    os.replace(path, destination)
                    moved.append(destination)
        return moved

    @staticmethod
    def _read_json(meta: Path) -> dict | None:
        """The validated JSON document, or None when it is missing or not a well-formed state of this format."""
        try:
            document = json.loads(meta.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        return document if _valid_document(document) else None

    @staticmethod
    def _read_matching_mask(png: Path, document: dict) -> np.ndarray | None:
        height, width = document["image_shape"]
        try:  # the limit is the saved shape's own size: the image was already opened at that size
            mask = read_mask(png, max_megapixels=height * width / 1e6 + 1)
        except ImageReadError:
            return None
        if _mask_digest(mask) != document["mask_sha256"]:
            return None
        return mask

    # -- other ---------------------------------------------------------------------------------------------------
    def has(self, image_path: Path) -> bool:
        """Cheap check (no file is read) that a committed state exists; ``load`` may still find it unusable."""
        return self._paths(image_path)[1].is_file()

    def discard(self, image_path: Path) -> None:
        """Forget the saved state. The JSON goes first, so the state is gone even if the mask cannot be removed;
        raises OutputWriteError only when the JSON itself cannot be removed (the state would come back)."""
        png, meta, prev = self._paths(image_path)
        try:
            meta.unlink(missing_ok=True)
        except OSError as e:
            raise OutputWriteError(meta, e.strerror or str(e)) from e
        for path in (png, prev):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


_REQUIRED_KEYS = frozenset(
    {"image_shape", "mask_sha256", "threshold", "edited", "cleanup", "mm_per_pixel", "model_sha256", "saved_at"}
    | {"source_size", "source_mtime_ns"}
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _valid_document(doc: object) -> bool:
    """Every field present with the right type and a sensible value: a hand-edited or truncated file is refused."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION or not doc.keys() >= _REQUIRED_KEYS:
        return False
    shape, mm = doc["image_shape"], doc["mm_per_pixel"]
    size, mtime = doc["source_size"], doc["source_mtime_ns"]
    return (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
        and isinstance(doc.get("mask_sha256"), str)
        and _is_number(doc.get("threshold"))
        and 0.0 <= doc["threshold"] <= 1.0
        and isinstance(doc.get("edited"), bool)
        and isinstance(doc.get("cleanup"), list)
        and all(isinstance(step, str) for step in doc["cleanup"])
        and (mm is None or (_is_number(mm) and mm > 0))
        and isinstance(doc.get("model_sha256"), str)
        and isinstance(doc.get("saved_at"), str)
        and isinstance(doc.get("calibration_source", ""), str)
        and isinstance(doc.get("calibration_profile", ""), str)
        and (size is None or isinstance(size, int))
        and (mtime is None or isinstance(mtime, int))
    )
