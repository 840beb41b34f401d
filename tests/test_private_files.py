"""The app's own files are private and kept (issue 18, items 12 and 14): autosaves, settings and logs are 0600 in
0700 folders whatever the umask, logs rotate, and an autosave that cannot be used is kept aside, never deleted.
Files written into a folder the user chose follow the user's umask."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.settings import Settings, save_settings
from segmentation.autosave import UNUSABLE_FOLDER, AutosaveStore, SavedState, autosave_key
from segmentation.private_files import PrivateRotatingFileHandler, private_folder

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
SHAPE = (37, 53)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[None]:
    """A permissive umask, as many desktops have: private files must not depend on it."""
    before = os.umask(0o002)
    yield
    os.umask(before)


def state(seed: int = 0) -> SavedState:
    mask = np.random.default_rng(seed).random(SHAPE) > 0.5
    return SavedState(mask, 0.5, True, (), None, "ab" * 32)


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    path = tmp_path / "images" / "lesion.jpg"
    path.parent.mkdir()
    path.write_bytes(b"stand-in image: its path, size and mtime matter here")
    return path


# ------------------------------------------------------------------------------------------------ private
@posix_only
def test_autosave_folder_and_files_are_private(tmp_path: Path, image_path: Path, umask) -> None:
    store = AutosaveStore(tmp_path / "data" / "autosave")
    store.save(image_path, state())
    assert mode(tmp_path / "data") == 0o700 and mode(store.folder) == 0o700, "new folders, parents too"
    files = list(store.folder.iterdir())
    assert files and all(mode(f) == 0o600 for f in files), [(f.name, oct(mode(f))) for f in files]


@posix_only
def test_an_existing_open_folder_is_made_private(tmp_path: Path, image_path: Path, umask) -> None:
    folder = tmp_path / "autosave"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # as an older LesionLens left it
    AutosaveStore(folder).save(image_path, state())
    assert mode(folder) == 0o700


@posix_only
def test_settings_file_is_private(tmp_path: Path, umask) -> None:
    path = tmp_path / "data" / "settings.json"
    save_settings(Settings(last_folder="/clinic/patient 17"), path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


@posix_only
def test_private_folder_leaves_existing_parents_alone(tmp_path: Path, umask) -> None:
    os.chmod(tmp_path, 0o755)
    private_folder(tmp_path / "a" / "b")
    assert mode(tmp_path) == 0o755 and mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700


@posix_only
def test_the_log_rotates_and_every_log_file_is_private(tmp_path: Path, umask) -> None:
    path = tmp_path / "lesionlens.log"
    path.write_text("an old log written 0644\n")
    os.chmod(path, 0o644)
    handler = PrivateRotatingFileHandler(path, maxBytes=300, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("lesionlens.test-rotation")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for index in range(60):
            logger.warning("opened /clinic/patient-%03d.jpg", index)
    finally:
        logger.removeHandler(handler)
        handler.close()
    logs = sorted(tmp_path.glob("lesionlens.log*"))
    assert [p.name for p in logs] == ["lesionlens.log", "lesionlens.log.1", "lesionlens.log.2"], "at most 2 old"
    assert all(p.stat().st_size <= 400 for p in logs), "each file stays near maxBytes"
    assert all(mode(p) == 0o600 for p in logs)
    assert "patient-059" in path.read_text()


def test_the_app_log_is_a_private_rotating_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import startup

    monkeypatch.setenv("LESIONLENS_HOME", str(tmp_path / "home"))
    logger = logging.getLogger("lesionlens")
    before = list(logger.handlers)
    try:
        path = startup.setup_logging()
        added = [h for h in logger.handlers if h not in before]
        assert path == tmp_path / "home" / startup.LOG_NAME
        assert len(added) == 1 and isinstance(added[0], PrivateRotatingFileHandler)
        assert added[0].maxBytes == startup.LOG_MAX_BYTES and added[0].backupCount == startup.LOG_BACKUPS
        if os.name == "posix":
            assert mode(tmp_path / "home") == 0o700 and mode(path) == 0o600
    finally:
        for handler in logger.handlers[:]:
            if handler not in before:
                logger.removeHandler(handler)
                handler.close()


@posix_only
@pytest.mark.parametrize("user_umask", [0o022, 0o077])
def test_files_in_the_users_output_folder_follow_the_umask(
    segment, tmp_path: Path, tiny_weights, rgb_image, user_umask
):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.fromarray(rgb_image(40, 40)).save(tmp_path / "in" / "lesion.png")
    before = os.umask(user_umask)
    try:
        status, log = segment(tmp_path / "in", "--out", tmp_path / "out", "--weights", tiny_weights, "--overlay")
    finally:
        os.umask(before)
    assert status == 0, log
    written = [p for p in (tmp_path / "out").iterdir() if p.is_file()]
    names = {p.name for p in written}
    assert {"lesion_segmentation.png", "lesion_overlay.jpg", "results.csv"} <= names  # and the ownership record
    assert all(mode(p) == 0o666 & ~user_umask for p in written), [(p.name, oct(mode(p))) for p in written]


# ------------------------------------------------------------------------------------------------ kept aside
def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


DAMAGES = {
    "truncated JSON": (lambda meta, png, image: meta.write_bytes(meta.read_bytes()[:30]), "damaged or incomplete"),
    "JSON not an object": (lambda meta, png, image: meta.write_text("[]"), "damaged or incomplete"),
    "truncated mask": (lambda meta, png, image: png.write_bytes(png.read_bytes()[:40]), "mask is missing or damaged"),
    "mask gone": (lambda meta, png, image: png.unlink(), "mask is missing or damaged"),
    "image changed": (lambda meta, png, image: image.write_bytes(b"another photo now"), "image file has changed"),
}


@pytest.mark.parametrize("case", DAMAGES, ids=list(DAMAGES))
def test_an_unusable_autosave_is_kept_aside_and_the_reason_given(tmp_path: Path, image_path: Path, case: str) -> None:
    damage, reason = DAMAGES[case]
    store = AutosaveStore(tmp_path / "autosave")
    store.save(image_path, state())
    key = autosave_key(image_path)
    meta, png = store.folder / f"{key}.json", store.folder / f"{key}.png"
    damage(meta, png, image_path)
    kept = {p.suffix: digest(p) for p in (meta, png) if p.exists()}

    loaded, set_aside = store.load_checked(image_path, SHAPE)
    assert loaded is None and set_aside is not None
    assert reason in set_aside.reason
    assert set_aside.files and all(p.parent == store.folder / UNUSABLE_FOLDER for p in set_aside.files)
    assert {p.suffix: digest(p) for p in set_aside.files} == kept, "the very bytes are kept, renamed"
    assert not meta.exists() and not png.exists()
    assert not store.has(image_path)

    store.save(image_path, state(1))  # a new save does not touch what was kept aside
    assert {p.suffix: digest(p) for p in set_aside.files} == kept
    assert store.load_checked(image_path, SHAPE)[1] is None


def test_a_state_of_another_size_is_kept_aside(tmp_path: Path, image_path: Path) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    store.save(image_path, state())
    loaded, set_aside = store.load_checked(image_path, (SHAPE[0] + 1, SHAPE[1]))
    assert loaded is None and "saved for a 53x37 image, this one is 53x38" in set_aside.reason
    assert len(set_aside.files) == 2


def test_nothing_saved_is_not_a_problem_and_a_good_state_loads(tmp_path: Path, image_path: Path) -> None:
    store = AutosaveStore(tmp_path / "autosave")
    assert store.load_checked(image_path, SHAPE) == (None, None)
    store.save(image_path, state())
    loaded, set_aside = store.load_checked(image_path, SHAPE)
    assert set_aside is None and loaded is not None
    np.testing.assert_array_equal(loaded.mask, state().mask)
