"""Autosave: exact round trip, and None (never an exception, never a wrong mask) for anything doubtful."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

import segmentation.autosave as autosave_module
from segmentation.autosave import AutosaveStore, SavedState, autosave_key
from segmentation.imageio import OutputWriteError

SHAPE = (37, 53)  # odd sizes: bit packing and PNG rows must not pad the mask


def make_state(seed: int = 0, **changes) -> SavedState:
    rng = np.random.default_rng(seed)
    values = {
        "mask": rng.random(SHAPE) > 0.6,
        "threshold": 0.42,
        "edited": True,
        "cleanup": ("fill_holes", "smooth"),
        "mm_per_pixel": 0.0123,
        "model_sha256": "cd" * 32,
        "saved_at": "2025-01-02T03:04:05+00:00",
    }
    values.update(changes)
    return SavedState(**values)


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    path = tmp_path / "images" / "lesion.jpg"
    path.parent.mkdir()
    path.write_bytes(b"stand-in for the image file: only its path, size and mtime matter here")
    return path


@pytest.fixture
def store(tmp_path: Path) -> AutosaveStore:
    return AutosaveStore(tmp_path / "autosave")  # not created yet: save creates it


def assert_same(loaded: SavedState | None, state: SavedState) -> None:
    assert loaded is not None
    assert loaded.mask.dtype == np.bool_
    np.testing.assert_array_equal(loaded.mask, state.mask)
    for name in ("threshold", "edited", "cleanup", "mm_per_pixel", "model_sha256", "saved_at"):
        assert getattr(loaded, name) == getattr(state, name), name


def test_round_trip_is_exact(store: AutosaveStore, image_path: Path) -> None:
    assert not store.has(image_path)
    assert store.load(image_path, SHAPE) is None
    state = make_state()
    store.save(image_path, state)
    assert store.has(image_path)
    assert_same(store.load(image_path, SHAPE), state)
    # Files named by the key of the absolute path; nothing else left in the folder.
    key = autosave_key(image_path)
    assert len(key) == 24
    assert sorted(p.name for p in store.folder.iterdir()) == [f"{key}.json", f"{key}.png"]
    assert json.loads((store.folder / f"{key}.json").read_text())["source_path"] == str(image_path.resolve())


def test_key_is_the_resolved_path(image_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(image_path.parent)
    assert autosave_key(Path("lesion.jpg")) == autosave_key(image_path)
    assert autosave_key(image_path.parent / ".." / "images" / "lesion.jpg") == autosave_key(image_path)
    assert autosave_key(image_path.with_name("other.jpg")) != autosave_key(image_path)


def test_defaults_and_other_values_round_trip(store: AutosaveStore, image_path: Path) -> None:
    state = make_state(mask=np.zeros(SHAPE, bool), edited=False, cleanup=(), mm_per_pixel=None, saved_at="")
    store.save(image_path, state)
    loaded = store.load(image_path, SHAPE)
    assert loaded is not None and not loaded.mask.any()
    assert (loaded.edited, loaded.cleanup, loaded.mm_per_pixel) == (False, (), None)
    assert loaded.saved_at.endswith("+00:00")  # filled in by save


def test_a_newer_save_replaces_the_older(store: AutosaveStore, image_path: Path) -> None:
    store.save(image_path, make_state(0))
    newer = make_state(1, threshold=0.7)
    store.save(image_path, newer)
    assert_same(store.load(image_path, SHAPE), newer)


def test_other_shape_gives_none(store: AutosaveStore, image_path: Path) -> None:
    store.save(image_path, make_state())
    assert store.load(image_path, (SHAPE[1], SHAPE[0])) is None
    assert store.load(image_path, (SHAPE[0], SHAPE[1] + 1)) is None


def test_changed_source_file_gives_none(store: AutosaveStore, image_path: Path) -> None:
    """Another image saved under the same name must not receive this one's mask."""
    store.save(image_path, make_state())
    image_path.write_bytes(b"a different image, same path")
    assert store.load(image_path, SHAPE) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda meta, png: meta.write_text("{ not json"),
        lambda meta, png: meta.write_bytes(b"\xff\xfe\x00garbage"),
        lambda meta, png: meta.write_text("[]"),
        lambda meta, png: meta.write_text(json.dumps({**json.loads(meta.read_text()), "threshold": "high"})),
        lambda meta, png: meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 99})),
        lambda meta, png: meta.write_text(
            json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "edited"})
        ),
        lambda meta, png: png.write_bytes(png.read_bytes()[:40]),  # truncated PNG
        lambda meta, png: png.unlink(),  # PNG without JSON is ignored; JSON without PNG too
        lambda meta, png: meta.unlink(),
        lambda meta, png: png.write_bytes((png.parent / "other.png").read_bytes()),  # a valid mask, not this one
    ],
    ids=[
        "bad-json",
        "not-utf8",
        "not-a-dict",
        "wrong-type",
        "future-format",
        "missing-key",
        "bad-png",
        "no-png",
        "no-json",
        "other-mask",
    ],
)
def test_corrupt_state_gives_none(store: AutosaveStore, image_path: Path, damage) -> None:
    store.save(image_path, make_state())
    other = image_path.with_name("other.jpg")
    other.write_bytes(b"x")
    store.save(other, make_state(5))
    key = autosave_key(image_path)
    (store.folder / f"{autosave_key(other)}.png").rename(store.folder / "other.png")
    damage(store.folder / f"{key}.json", store.folder / f"{key}.png")
    assert store.load(image_path, SHAPE) is None


def test_failed_save_keeps_the_previous_state(
    store: AutosaveStore, image_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = make_state(0)
    store.save(image_path, previous)
    files_before = {p.name: p.read_bytes() for p in store.folder.iterdir()}

    def disk_full(path, data, **_options):  # the mask was written; the JSON (commit marker) does not fit
        raise OutputWriteError(path, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(autosave_module, "atomic_write_bytes", disk_full)
    with pytest.raises(OutputWriteError):
        store.save(image_path, make_state(1))
    assert_same(store.load(image_path, SHAPE), previous)
    assert {p.name: p.read_bytes() for p in store.folder.iterdir()} == files_before


def test_save_killed_half_way_still_loads_the_previous_state(store: AutosaveStore, image_path: Path) -> None:
    """A crash after the new mask was written but before its JSON: the previous, committed state is loaded, and
    the next save tidies up."""
    previous = make_state(0)
    store.save(image_path, previous)
    key = autosave_key(image_path)
    png, prev = store.folder / f"{key}.png", store.folder / f"{key}.prev.png"
    png.rename(prev)  # what save does first ...
    png.write_bytes(b"\x89PNG half written")  # ... then the process dies while writing the new mask
    assert_same(store.load(image_path, SHAPE), previous)

    newer = make_state(2)
    store.save(image_path, newer)
    assert_same(store.load(image_path, SHAPE), newer)
    assert not prev.exists()


def test_save_errors_are_output_write_errors(tmp_path: Path, image_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    with pytest.raises(OutputWriteError):
        AutosaveStore(blocker / "autosave").save(image_path, make_state())


def test_discard(store: AutosaveStore, image_path: Path) -> None:
    store.save(image_path, make_state())
    store.discard(image_path)
    assert not store.has(image_path)
    assert store.load(image_path, SHAPE) is None
    assert list(store.folder.iterdir()) == []
    store.discard(image_path)  # nothing saved: no error
