"""Nothing leaves the machine and no telemetry store is written, as native code sees it (issue 18, item 10).

A Python-level socket block (tests/test_untrusted_files.py) cannot see ONNX Runtime's native telemetry, which looked
up a Microsoft host and queued events in ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``. These tests run the real
CLI and the real app (offscreen) as subprocesses with ONNX Runtime as the backend and a fresh, empty HOME and XDG
folders, then check that nothing appeared in that home; where ``strace`` can trace, they also check the processes made
no network system call (a socket connect or send to anything but the machine itself, or any DNS query).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from segmentation.backends import onnxruntime_installed

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not onnxruntime_installed(), reason="ONNX Runtime (the onnx extra) is not installed")

_REMOTE_CALL = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(\d+, .*?sa_family=AF_INET6?\b(?P<rest>[^\n]*)")
_LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.')


def remote_calls(trace: str) -> list[str]:
    """strace lines of a connect/send to a non-loopback address, or to port 53 (a DNS query) anywhere."""
    found = []
    for line in trace.splitlines():
        match = _REMOTE_CALL.search(line)
        if match and (not _LOOPBACK.search(line) or "htons(53)" in line):
            found.append(line.strip())
    return found


def test_remote_calls_finds_a_dns_lookup_and_ignores_local_sockets() -> None:
    """What the telemetry did before the fix (a real strace line), and what is harmless."""
    dns = (
        '13942 connect(9, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0\n'
        '13942 sendto(9, "<\\34\\1\\0\\0\\1\\0\\0\\0\\0\\0\\0\\6mobile\\6events"..., 50, MSG_NOSIGNAL, NULL, 0) = 50\n'
    )
    assert len(remote_calls(dns)) == 1
    assert remote_calls('1 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("20.42.1.1")}, 16)')
    local = '1 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT\n'
    local += '1 connect(4, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
    assert remote_calls(local) == []


def strace_usable(tmp_path: Path) -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(tmp_path / "probe.strace"), "true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def fresh_home_env(root: Path) -> dict[str, str]:
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LESIONLENS_", "ORT_"))}
    env.update(
        HOME=str(home),
        LESIONLENS_BACKEND="onnxruntime",
        QT_QPA_PLATFORM="offscreen",
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=str(REPO),
    )
    return env


def run_traced(argv: list[str], env: dict[str, str], tmp_path: Path, *, trace: bool) -> tuple[str, str]:
    """Run ``argv``; returns (its output, the strace of its network calls or '')."""
    trace_file = tmp_path / "network.strace"
    prefix = ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(trace_file)] if trace else []
    done = subprocess.run([*prefix, *argv], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr, trace_file.read_text() if trace else ""


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def one_image(tmp_path: Path, rgb_image) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rgb_image(48, 64)).save(folder / "lesion.png")
    return folder


@pytest.mark.slow
def test_the_cli_writes_no_telemetry_and_makes_no_network_call(tmp_path: Path, tiny_weights: Path, one_image) -> None:
    env = fresh_home_env(tmp_path)
    argv = [sys.executable, "-m", "app.launcher", "segment", str(one_image), "--out", str(tmp_path / "out")]
    traced = strace_usable(tmp_path)
    output, trace = run_traced([*argv, "--weights", str(tiny_weights)], env, tmp_path, trace=traced)
    assert "ONNX Runtime" in output, "the model ran on ONNX Runtime (the device line names the backend)"
    assert files_in(Path(env["HOME"])) == [], "nothing may be written into the user's home (no ~/.cache/Microsoft)"
    assert remote_calls(trace) == []
    if not traced:
        pytest.skip("home checked; strace is not installed or cannot trace here, so system calls were not checked")


APP_SESSION = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from app.main_window import MainWindow

    image, weights = Path(sys.argv[1]), Path(sys.argv[2])
    app = QApplication([])
    window = MainWindow(weights=weights, device="cpu")
    def done(_path):
        print("backend:", window.predictor.backend.name)
        window.close()
        app.quit()

    window.segmented.connect(done)
    window.modelLoaded.connect(lambda ok: window.open_paths([image]) if ok else app.exit(3))
    QTimer.singleShot(120_000, lambda: app.exit(4))
    window.show()
    sys.exit(app.exec())
    """
)


@pytest.mark.slow
def test_the_app_writes_no_telemetry_and_makes_no_network_call(tmp_path: Path, tiny_weights: Path, one_image) -> None:
    env = fresh_home_env(tmp_path)
    env["LESIONLENS_HOME"] = str(tmp_path / "lesionlens-home")
    script = tmp_path / "app_session.py"
    script.write_text(APP_SESSION, encoding="utf-8")
    traced = strace_usable(tmp_path)
    output, trace = run_traced(
        [sys.executable, str(script), str(one_image / "lesion.png"), str(tiny_weights)], env, tmp_path, trace=traced
    )
    assert "backend: ONNX Runtime" in output
    home = Path(env["HOME"])
    assert [f for f in files_in(home) if not f.startswith(".cache/matplotlib")] == []
    assert remote_calls(trace) == []
    if not traced:
        pytest.skip("home checked; strace is not installed or cannot trace here, so system calls were not checked")
