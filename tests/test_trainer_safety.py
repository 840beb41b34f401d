"""Trainer runs stay consistent after a kill at any point, and bad checkpoints or data give a message naming the
file, never a traceback (issue 18, item 15)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer import checkpoint
from trainer.checkpoint import CheckpointError
from trainer.cli import main as trainer_main
from trainer.config import preset
from trainer.engine import Trainer


def synthetic_split(folder: Path, count: int, seed: int) -> tuple[Path, Path]:
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :64]
    for index in range(count):
        cy, cx, r = rng.integers(15, 33), rng.integers(20, 44), rng.integers(6, 14)
        lesion = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        rgb = np.full((48, 64, 3), (220, 180, 160), np.uint8)
        rgb[lesion] = (110, 70, 50)
        Image.fromarray(rgb).save(images / f"ISIC_{index:07d}.png")
        Image.fromarray(lesion.astype(np.uint8) * 255).save(masks / f"ISIC_{index:07d}_segmentation.png")
    return images, masks


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("trainer-safety")
    train_images, train_masks = synthetic_split(root / "train", 8, 0)
    val_images, val_masks = synthetic_split(root / "val", 4, 1)
    return {
        "train_images": str(train_images),
        "train_masks": str(train_masks),
        "val_images": str(val_images),
        "val_masks": str(val_masks),
        "cache_dir": str(root / "cache"),
    }


def config(data: dict, **overrides):
    return preset("smoke").override({**data, **overrides})


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def kill_at_save(monkeypatch: pytest.MonkeyPatch, at: int) -> list[str]:
    """Make the ``at``-th checkpoint write (1-based) never happen: the process dies just before it."""
    real, written = checkpoint.save, []

    def save(path, state) -> None:
        if len(written) + 1 == at:
            raise Killed
        real(path, state)
        written.append(Path(path).name)

    monkeypatch.setattr(checkpoint, "save", save)
    return written


def assert_consistent(run_dir: Path) -> None:
    """A last.pt that records a best Dice has a best.pt beside it that records at least that Dice."""
    last, best = run_dir / "last.pt", run_dir / "best.pt"
    if last.exists():
        recorded = float(checkpoint.load(last)["best_dice"])
        if recorded >= 0:
            assert best.exists(), f"last.pt reports a best Dice {recorded:.4f} but there is no best.pt"
            assert float(checkpoint.load(best)["best_dice"]) >= recorded
    assert not list(run_dir.glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("kill", [1, 2, 3, 4])
def test_a_kill_at_any_checkpoint_write_leaves_a_consistent_run(
    data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, kill: int
) -> None:
    run_dir = tmp_path / "run"
    trainer = Trainer(config(data, epochs=3), run_dir, device="cpu", quiet=True)
    torch.manual_seed(0)
    kill_at_save(monkeypatch, kill)
    with pytest.raises(Killed):
        trainer.fit()
    monkeypatch.undo()
    assert_consistent(run_dir)

    status = trainer_main(["export", str(run_dir), "--out", str(tmp_path / "model.safetensors")])
    err = capsys.readouterr().err
    if (run_dir / "best.pt").exists():
        assert status == 0, err
    else:
        assert status == 2 and "Traceback" not in err
        assert str(run_dir) in err

    if (run_dir / "last.pt").exists():  # resume and finish: still consistent, and the best is never lost
        best_before = checkpoint.recorded_best_dice(run_dir / "best.pt")
        resumed = Trainer(config(data, epochs=3), run_dir, device="cpu", quiet=True)
        resumed.resume()
        assert best_before is None or resumed.best_dice >= best_before
        resumed.fit()
        assert_consistent(run_dir)
        assert (run_dir / "best.pt").exists()


# ------------------------------------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    Trainer(config(data, epochs=1), run_dir, device="cpu", quiet=True).fit()
    return run_dir


def export(capsys, *argv: str | Path) -> tuple[int, str]:
    status = trainer_main(["export", *map(str, argv)])
    return status, capsys.readouterr().err


def copy_run(finished_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for file in finished_run.iterdir():
        (run_dir / file.name).write_bytes(file.read_bytes())
    return run_dir


def test_export_of_a_run_without_best_pt_says_what_to_do(finished_run: Path, tmp_path: Path, capsys) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "best.pt").unlink()  # as a kill between the two writes left it before best.pt came first
    status, err = export(capsys, run_dir, "--out", tmp_path / "m.safetensors")
    assert status == 2
    assert f"{run_dir / 'best.pt'}: this run has no best checkpoint" in err and "--checkpoint last" in err
    assert not (tmp_path / "m.safetensors").exists()
    status, err = export(capsys, run_dir, "--checkpoint", "last", "--out", tmp_path / "m.safetensors")
    assert status == 0, err


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or not a LesionLens checkpoint"),
        (lambda p: p.write_bytes(b""), "truncated or not a LesionLens checkpoint"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "truncated or not a LesionLens checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "not a LesionLens checkpoint (no dictionary"),
        (lambda p: torch.save({"model": {}}, p), "incomplete checkpoint (no epoch, step"),
        (lambda p: torch.save({**checkpoint.load(p), "model": {"x": torch.zeros(2)}}, p), "does not hold a model"),
        (lambda p: p.unlink(), "no checkpoint there"),
    ],
    ids=["truncated", "empty", "random-bytes", "a-list", "incomplete", "other-model", "missing"],
)
def test_export_of_a_bad_checkpoint_names_the_file(
    finished_run: Path, tmp_path: Path, capsys, damage, fragment: str
) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    damage(run_dir / "last.pt")
    status, err = export(capsys, run_dir, "--checkpoint", "last", "--out", tmp_path / "m.safetensors")
    assert status == 2, err
    assert f"error: {run_dir / 'last.pt'}: " in err and fragment in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.safetensors").exists()


def test_export_of_a_missing_run_folder_or_into_a_missing_folder(finished_run: Path, tmp_path: Path, capsys) -> None:
    status, err = export(capsys, tmp_path / "no such run", "--out", tmp_path / "m.safetensors")
    assert status == 2 and f"{tmp_path / 'no such run'}: no such run folder" in err
    out = tmp_path / "missing folder" / "m.safetensors"
    status, err = export(capsys, finished_run, "--out", out)
    assert status == 2 and str(out) in err


def test_resume_from_a_truncated_last_pt_names_the_file(data, finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    last = run_dir / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    trainer = Trainer(config(data, epochs=2), run_dir, device="cpu", quiet=True)
    with pytest.raises(CheckpointError) as error:
        trainer.resume()
    assert str(last) in str(error.value) and "truncated" in str(error.value)


def test_recorded_best_dice(finished_run: Path, tmp_path: Path) -> None:
    value = checkpoint.recorded_best_dice(finished_run / "best.pt")
    assert value is not None and 0.0 <= value <= 1.0 and math.isfinite(value)
    assert checkpoint.recorded_best_dice(tmp_path / "none.pt") is None


def test_resume_keeps_a_best_pt_written_just_before_the_kill(data, finished_run: Path, tmp_path: Path) -> None:
    """Killed after best.pt and before last.pt: best.pt knows a better Dice than last.pt; a worse epoch after the
    resume must not overwrite it."""
    run_dir = copy_run(finished_run, tmp_path)
    better = checkpoint.load(run_dir / "best.pt")
    better["best_dice"] = 0.99
    checkpoint.save(run_dir / "best.pt", better)
    trainer = Trainer(config(data, epochs=2), run_dir, device="cpu", quiet=True)
    trainer.resume()
    assert trainer.best_dice == pytest.approx(0.99)
    trainer.fit()
    assert float(checkpoint.load(run_dir / "best.pt")["best_dice"]) == pytest.approx(0.99)
    assert_consistent(run_dir)


# ------------------------------------------------------------------------------------------------ train CLI
def bad_training_folder(data: dict, tmp_path: Path, kind: str) -> dict[str, str]:
    images, masks = synthetic_split(tmp_path / "bad", 4, 2)
    if kind == "truncated image":
        first = sorted(images.iterdir())[0]
        first.write_bytes(first.read_bytes()[:60])
    else:
        first = sorted(masks.iterdir())[0]
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(first)
    return {**data, "train_images": str(images), "train_masks": str(masks), "cache_dir": str(tmp_path / "cache")}, first


@pytest.mark.parametrize("kind", ["truncated image", "mask of the wrong size"])
def test_train_on_a_bad_training_file_is_a_message_naming_it(data, tmp_path: Path, capsys, kind: str) -> None:
    paths, bad = bad_training_folder(data, tmp_path, kind)
    argv = ["train", "--preset", "smoke", "--run-dir", str(tmp_path / "run"), "--quiet"]
    for key in ("train_images", "train_masks", "val_images", "val_masks"):
        argv += ["--" + key.replace("_", "-"), paths[key]]
    try:
        status = trainer_main([*argv, "--cache-dir", paths["cache_dir"]])
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 or (isinstance(status, str) and str(bad) in status)
    assert str(bad) in err or (isinstance(status, str) and str(bad) in status)


def test_train_resume_from_a_truncated_last_pt_is_a_message(finished_run: Path, tmp_path: Path, capsys) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "last.pt").write_bytes((run_dir / "last.pt").read_bytes()[:1000])
    try:
        status = trainer_main(["train", "--resume", str(run_dir), "--quiet"])
    except SystemExit as exit_:
        status = exit_.code
    assert isinstance(status, str) and str(run_dir / "last.pt") in status


# ------------------------------------------------------------------------------------------------ private cache
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_the_decoded_training_cache_is_private(data, tmp_path: Path) -> None:
    import os
    import stat

    from segmentation.preprocessing import Preprocessing
    from trainer.data import CachedSplit, find_samples

    before = os.umask(0o002)
    try:
        cache = tmp_path / "cache"
        samples = find_samples(data["val_images"], data["val_masks"])
        split = CachedSplit(samples, Preprocessing(input_size=(48, 64)), str(cache))
    finally:
        os.umask(before)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [cache, *cache.rglob("*")]}
    assert all(mode == (0o700 if p.is_dir() else 0o600) for p, mode in modes.items()), modes
    assert len(split) == 4


def test_two_runs_started_together_share_one_cache_build(data, tmp_path: Path) -> None:
    """The comparison arms start two runs at once on the same data: one builds the cache, the other waits for it
    (before the lock, the second run's rename found the first run's temporary file gone and crashed)."""
    from concurrent.futures import ThreadPoolExecutor

    from segmentation.preprocessing import Preprocessing
    from trainer.data import CachedSplit, find_samples

    samples = find_samples(data["val_images"], data["val_masks"])
    cache = tmp_path / "cache"
    preprocessing = Preprocessing(input_size=(48, 64))
    with ThreadPoolExecutor(max_workers=4) as pool:
        splits = list(pool.map(lambda _: CachedSplit(samples, preprocessing, str(cache)), range(4)))
    assert all(len(split) == 4 for split in splits)
    assert all(np.array_equal(split.images, splits[0].images) for split in splits)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
