"""Faults during a batch: SIGKILL then --resume, a disk that fills up, an output folder that cannot be written, and
unreadable files and folders for real (kernel permission checks, not mocks) where that can be set up.

CI runs as root, where chmod does not stop reads or writes: there the failures are injected where the real call is
made (``os.open``/``os.replace`` raising the real PermissionError or ENOSPC), and the real-permission test runs the
CLI as ``nobody``, or as root without the capabilities that bypass file permissions (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH), whichever this machine allows.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import file_hashes, temp_files

from segmentation.batch import remove_stale_temp_files
from segmentation.ownership import RECORD_NAME
from segmentation.resources import WEIGHTS_ENV

MASK = "_segmentation.png"


def images(folder: Path, rgb_image, count: int, size: tuple[int, int] = (48, 64)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"lesion {index:02d}.png"
        Image.fromarray(rgb_image(*size, seed=index)).save(path)
        paths.append(path)
    return paths


def rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        return {Path(row["file"]).name: row for row in csv.DictReader(handle)}


def valid_mask(path: Path, size: tuple[int, int]) -> bool:
    with Image.open(path) as mask:
        mask.load()
        values = np.asarray(mask)
        return mask.format == "PNG" and mask.mode == "L" and values.shape == size and set(np.unique(values)) <= {0, 255}


def console_script() -> Path:
    script = Path(sys.executable).parent / ("lesionlens.exe" if os.name == "nt" else "lesionlens")
    assert script.is_file(), f"the lesionlens console script is not installed beside {sys.executable}"
    return script


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_ENV}
    # One torch thread: two threads fighting a busy co-tenant for two cores take a second per tiny image.
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", **extra}


# ------------------------------------------------------------------------------------------------ SIGKILL
@pytest.mark.slow  # a subprocess
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
def test_batch_killed_with_sigkill_then_resumed(tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    sources = images(tmp_path / "in", rgb_image, 40)
    out = tmp_path / "out"
    argv = [str(console_script()), "segment", str(tmp_path / "in"), "--out", str(out), "--weights", str(tiny_weights)]
    victim = subprocess.Popen(argv, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob(f"*{MASK}"))) < 3 and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.005)
        assert victim.poll() is None, "the batch ended before it could be killed mid-way"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait(30)
    assert victim.returncode == -signal.SIGKILL
    on_disk = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob(f"*{MASK}")}
    assert 3 <= len(on_disk) < len(sources), "killed mid-way"
    for mask in on_disk:  # what the killed run left is complete: atomic writes, never a half mask
        assert valid_mask(mask, (48, 64)), mask
    # Done = a mask with its row (the killed run saved its table up to a second before the kill); a mask without
    # its row is segmented again, so the resumed table is complete (issue 15 item 13).
    saved = rows(out) if (out / "results.csv").exists() else {}
    done_before = {mask: identity for mask, identity in on_disk.items() if mask.name.replace(MASK, ".png") in saved}
    # A temp file as a kill in the middle of a write leaves it (hidden, never under the mask's name).
    stale = out / f".lesion 39{MASK}.0123456789ab.tmp"
    stale.write_bytes(b"\x89PNG half a mask")
    os.utime(stale, (time.time() - 60, time.time() - 60))

    resumed = subprocess.run([*argv, "--resume"], env=child_env(), capture_output=True, text=True, timeout=120)

    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert "taking over the lock of an earlier LesionLens run that is no longer running (pid" in resumed.stderr
    assert f"({len(sources) - len(done_before)} segmented, {len(done_before)} already done), 0 failed" in (
        resumed.stderr
    )
    for mask, identity in done_before.items():  # redone: none
        assert (mask.stat().st_ino, mask.stat().st_mtime_ns) == identity, f"{mask.name} was rewritten"
    for source in sources:
        assert valid_mask(out / f"{source.stem}{MASK}", (48, 64)), source
    table = rows(out)
    assert set(table) == {p.name for p in sources}, "results.csv lists every image"
    for source in sources:  # every row complete: status ok with its measurements
        assert table[source.name]["status"] == "ok" and table[source.name]["area_px2"] != "", source
    expected = [f"{p.stem}{MASK}" for p in sources] + ["results.csv", RECORD_NAME]  # the lock is gone
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert temp_files(out) == []


def test_stale_temp_files_of_other_programs_and_of_a_running_batch_are_kept(tmp_path: Path) -> None:
    ours_old = tmp_path / f".a{MASK}.0123456789ab.tmp"
    ours_new = tmp_path / f".b{MASK}.0123456789ab.tmp"  # written after this batch started: another run's
    theirs = tmp_path / ".report.docx.0123456789ab.tmp"
    for path in (ours_old, ours_new, theirs):
        path.write_bytes(b"x")
    os.utime(ours_old, (time.time() - 60, time.time() - 60))
    os.utime(theirs, (time.time() - 60, time.time() - 60))
    assert remove_stale_temp_files([tmp_path], older_than=time.time() - 30) == [ours_old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours_new.name, theirs.name])


# ------------------------------------------------------------------------------------------------ full disk
def test_disk_full_during_a_batch(
    segment, tmp_path: Path, tiny_weights: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC where a full disk shows up (after the temp file was written, at the rename) on the second mask, and
    on the first try to save results.csv: that image fails with "disk full", the others are done, nothing partial."""
    sources = images(tmp_path / "in", rgb_image, 4)
    out = tmp_path / "out"
    before = file_hashes(tmp_path / "in")
    real_replace = os.replace
    calls: list[str] = []

    def replace(src, dst, *args, **kwargs):
        name = Path(dst).name
        calls.append(name)
        if name == f"lesion 01{MASK}" or (name == "results.csv" and calls.count("results.csv") == 1):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights)

    assert status == 1 and "Traceback" not in said
    assert f"error: cannot write {out / f'lesion 01{MASK}'}: disk full" in said
    table = rows(out)
    assert table["lesion 01.png"]["status"] == "error" and "disk full" in table["lesion 01.png"]["error"]
    assert [table[p.name]["status"] for p in sources] == ["ok", "error", "ok", "ok"], "the batch went on"
    for source in (sources[0], *sources[2:]):
        assert valid_mask(out / f"{source.stem}{MASK}", (48, 64))
    assert not (out / f"lesion 01{MASK}").exists()
    assert temp_files(out) == [], "the temp file of the failed write was removed"
    assert file_hashes(tmp_path / "in") == before


# ------------------------------------------------------------------------------------------------ permissions
def test_unwritable_output_folder(
    segment, tmp_path: Path, tiny_weights: Path, rgb_image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output folder that cannot be written (0555 for a user; simulated at os.open, as root writes anything):
    one message per image and one for results.csv, no traceback, nothing left behind."""
    images(tmp_path / "in", rgb_image, 2)
    out = tmp_path / "out"
    out.mkdir()
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):
        if Path(path).parent == out and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    status, said = segment(tmp_path / "in", "--out", out, "--weights", tiny_weights)

    # Found before any image: the folder's lock cannot be made there.
    assert status == 2 and "Traceback" not in said
    assert f"cannot write into the output folder {out}: permission denied" in said
    assert list(out.iterdir()) == []


def _privilege_drop(python: Path, probe_dir: Path) -> list[str] | None:
    """A command prefix under which the kernel really enforces file permissions on this test's files, or None.

    Either the user ``nobody`` (needs a Python it may run), or root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
    (root then obeys the owner's permission bits). Each is checked on a chmod 000 file before it is trusted.
    """
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    secret = probe_dir / "probe"
    secret.write_bytes(b"x")
    secret.chmod(0)
    candidates = [["setpriv", "--bounding-set=-dac_override,-dac_read_search"]]
    try:
        import grp
        import pwd

        nobody = pwd.getpwnam("nobody")
        group = next((g for g in ("nogroup", "nobody") if _has_group(grp, g)), str(nobody.pw_gid))
        candidates.insert(0, ["setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups"])
    except KeyError:
        pass
    probe = (
        f"import segmentation.imageio\ntry:\n open({str(secret)!r}, 'rb')\nexcept PermissionError:\n exit(0)\nexit(3)"
    )
    for prefix in candidates:
        try:
            done = subprocess.run([*prefix, str(python), "-c", probe], env=child_env(), capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            secret.unlink()
            return prefix
    secret.unlink()
    return None


def _has_group(grp, name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.slow  # a subprocess
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_real_permissions_unreadable_file_and_folder_unwritable_output(tiny_weights: Path, rgb_image) -> None:
    """No mocks: a chmod 000 image, a chmod 000 folder and a 0555 output subfolder, with the CLI run by a process
    the kernel refuses them to. Runs as a normal user as is; as root only through a privilege drop."""
    with tempfile.TemporaryDirectory(prefix="lesionlens-permissions-") as name:
        root = Path(name)
        root.chmod(0o755)  # world-traversable: ``nobody`` must reach the files it is allowed to
        if os.name == "posix" and os.geteuid() == 0:
            prefix = _privilege_drop(Path(sys.executable), root)
            if prefix is None:
                pytest.skip(
                    "running as root and no privilege drop works here (setpriv missing, no user 'nobody' that can "
                    f"run {sys.executable}, and capabilities cannot be dropped); the fault-injection tests cover it"
                )
        else:
            prefix = []
        tree, out = root / "in", root / "out"
        readable, locked_file = tree / "a" / "readable.png", tree / "a" / "locked.png"
        blocked, hidden = tree / "b" / "blocked output.png", tree / "c" / "in a locked folder.png"
        for index, path in enumerate((readable, locked_file, blocked, hidden)):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb_image(48, 64, seed=index)).save(path)
        weights = Path(shutil.copy(tiny_weights, root / "model.safetensors"))
        for path in (root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (out / "b").mkdir(parents=True)
        out.chmod(0o777)  # ``nobody`` writes its masks and results.csv here...
        (out / "b").chmod(0o555)  # ...but not here
        locked_file.chmod(0)
        (tree / "c").chmod(0)
        before = {p: p.stat().st_mtime_ns for p in (readable, locked_file, blocked, hidden)}
        try:
            done = subprocess.run(
                [*prefix, str(console_script()), "segment", str(tree), "--out", str(out), "--weights", str(weights),
                 "--recursive"],
                env=child_env(HOME=str(root)), cwd=root, capture_output=True, text=True, encoding="utf-8", timeout=120,
            )  # fmt: skip
        finally:
            locked_file.chmod(0o644)
            (tree / "c").chmod(0o755)
            (out / "b").chmod(0o755)
        said = done.stderr
        assert done.returncode == 1, said
        assert "Traceback" not in said
        assert f"error: {locked_file}: permission denied" in said
        assert f"error: {tree / 'c'}: cannot list the folder (permission denied)" in said
        assert f"error: cannot write {out / 'b' / f'{blocked.stem}{MASK}'}: permission denied" in said
        assert valid_mask(out / "a" / f"{readable.stem}{MASK}", (48, 64)), "the readable image was still segmented"
        with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
            status = {row["file"]: row["status"] for row in csv.DictReader(handle)}
        assert status == {
            str(readable): "ok",
            str(locked_file): "error",
            str(blocked): "error",
            str(tree / "c"): "error",
        }
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
            RECORD_NAME,
            f"a/{readable.stem}{MASK}",
            "results.csv",
        ]
        assert {p: p.stat().st_mtime_ns for p in before} == before, "inputs untouched"
