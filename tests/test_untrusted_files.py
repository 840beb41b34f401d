"""Untrusted files and privacy: no code runs when a file is loaded, the bundled model is pinned, exports carry no
EXIF/GPS, and nothing goes over the network. (Every way a weights file can be bad: tests/test_weights.py.)"""

from __future__ import annotations

import ast
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from reliability_helpers import block_network

import segmentation.bundled_model
import segmentation.resources
from segmentation.cli import main
from segmentation.resources import DEFAULT_WEIGHTS_NAME, WEIGHTS_ENV, bundled_weights_path
from segmentation.weights import file_sha256

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("app", "segmentation", "trainer", "scripts", "benchmarks")
WRONG_PIN = "0" * 64


def shipped_sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in SHIPPED:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


# ------------------------------------------------------------------------------------------------ no pickles
def test_no_file_is_unpickled_anywhere_in_the_code_base() -> None:
    """torch.load only with weights_only=True; no pickle/dill/joblib loads; numpy never allows pickles."""
    problems, torch_loads, text_mentions = [], 0, 0
    unpicklers = {"pickle", "dill", "cloudpickle", "joblib"}
    for path, tree in shipped_sources():
        where = path.relative_to(REPO)
        text_mentions += path.read_text(encoding="utf-8").count("torch.load(")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in unpicklers:
                problems.append(f"{where}:{node.lineno}: from {node.module} import ...")
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and "load" in [a.name for a in node.names]:
                problems.append(f"{where}:{node.lineno}: from torch import load (hides the check below)")
            if not isinstance(node, ast.Call):
                continue
            name, keywords = _dotted(node.func), {k.arg: k.value for k in node.keywords}
            if name == "torch.load":
                torch_loads += 1
                flag = keywords.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
            if name.split(".")[0] in unpicklers and ("load" in name.split(".")[-1] or name.endswith("Unpickler")):
                problems.append(f"{where}:{node.lineno}: {name}")
            allow = keywords.get("allow_pickle")
            if name in {"np.load", "numpy.load"} and not (
                allow is None or (isinstance(allow, ast.Constant) and not allow.value)
            ):
                problems.append(f"{where}:{node.lineno}: np.load(allow_pickle=...)")
    assert problems == []
    assert torch_loads == text_mentions, "every torch.load( in the text is a direct call the check above saw"
    assert torch_loads >= 1, "the trainer's checkpoint loader is found (the walk works)"


# ------------------------------------------------------------------------------------------------ pinned weights
@pytest.fixture
def bundled(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny weights installed as *the bundled model* of a LesionLens whose resources are in tmp_path."""
    monkeypatch.setattr(segmentation.resources, "resources_dir", lambda: tmp_path / "resources")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    path = tmp_path / "resources" / "models" / DEFAULT_WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    shutil.copy(tiny_weights, path)
    assert bundled_weights_path() == path
    return path


@pytest.fixture
def segment(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, rgb_image):
    """``lesionlens segment <one image> --out OUT [ARGV]`` in-process: (exit status, what it said)."""
    image = tmp_path / "in" / "lesion.jpg"
    image.parent.mkdir()
    Image.fromarray(rgb_image(40, 40)).save(image)

    def run(*argv: str | os.PathLike) -> tuple[int, str]:
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.INFO, logger="lesionlens"):
            status = main([str(image), "--out", str(tmp_path / "out"), *map(str, argv)])
        return status, capsys.readouterr().err + caplog.text

    return run


@pytest.mark.parametrize(
    ("how", "refused"),
    [("default", True), ("env names the bundled file", True), ("--weights names the bundled file", True),
     ("env names a copy", False), ("--weights names a copy", False)],
)  # fmt: skip
def test_cli_refuses_a_bundled_model_that_does_not_match_its_pin(
    how: str, refused: bool, bundled: Path, segment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pin guards the bundled file however it is reached; a file of the user's own is theirs to choose."""
    copy = Path(shutil.copy(bundled, tmp_path / "my model.safetensors"))
    segmentation.bundled_model.pin_path(bundled).write_text(f"{WRONG_PIN}  {bundled.name}\n")
    argv: list[str | Path] = []
    if how.startswith("env"):
        monkeypatch.setenv(WEIGHTS_ENV, str(bundled if "bundled" in how else copy))
    elif how.startswith("--weights"):
        argv = ["--weights", bundled if "bundled" in how else copy]
    status, said = segment(*argv)
    if refused:
        assert status == 2
        assert f"{bundled}: weights SHA-256 " in said and "does not match the pinned SHA-256 000000000000" in said
        assert not (tmp_path / "out").exists()
    else:
        assert status == 0, said


def test_cli_loads_the_bundled_model_that_matches_its_pin(
    bundled: Path, segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    segmentation.bundled_model.write_pin(bundled)
    status, said = segment()
    assert status == 0, said


def test_the_pin_beside_the_bundled_file_matches_it() -> None:
    """Once a model is bundled (``scripts/publish_model.py``), the pin and the file must agree, or the app refuses
    its own model."""
    pin, path = segmentation.bundled_model.bundled_sha256(), bundled_weights_path()
    assert pin is None or (len(pin) == 64 and set(pin) <= set("0123456789abcdef"))
    if pin is None or not path.exists():
        pytest.skip("no model bundled yet (resources/models/lesionlens.safetensors or its pin is missing)")
    assert file_sha256(path) == pin


def test_a_pin_file_without_a_sha256_refuses_the_model(tmp_path: Path) -> None:
    weights = tmp_path / "lesionlens.safetensors"
    weights.write_bytes(b"weights")
    assert segmentation.bundled_model.bundled_sha256(weights) is None  # no sidecar: nothing bundled
    segmentation.bundled_model.pin_path(weights).write_text("not-a-hash\n")
    pin = segmentation.bundled_model.bundled_sha256(weights)
    assert pin is not None and pin != file_sha256(weights) and "not a SHA-256" in pin
    assert segmentation.bundled_model.write_pin(weights) == file_sha256(weights)
    assert segmentation.bundled_model.bundled_sha256(weights) == file_sha256(weights)


# ------------------------------------------------------------------------------------------------ privacy
def test_batch_overlay_and_mask_carry_no_exif_or_gps(tmp_path: Path, tiny_weights: Path, rgb_image) -> None:
    source = tmp_path / "in" / "ISIC_0000001.jpg"
    source.parent.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "DermaCam"  # Make
    exif[0x013B] = "Dr. Example"  # Artist
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    Image.fromarray(rgb_image(60, 80)).save(source, quality=95, exif=exif)
    with Image.open(source) as original:
        assert original.getexif().get_ifd(0x8825), "the source really carries a GPS position"
    assert main([str(source), "--out", str(tmp_path / "out"), "--weights", str(tiny_weights), "--overlay"]) == 0
    for name in ("ISIC_0000001_overlay.jpg", "ISIC_0000001_segmentation.png"):
        written = tmp_path / "out" / name
        with Image.open(written) as image:
            assert not image.getexif() and "exif" not in image.info and not getattr(image, "text", {})
        data = written.read_bytes()
        assert b"Exif" not in data and b"DermaCam" not in data and b"Dr. Example" not in data


# ------------------------------------------------------------------------------------------------ network
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return block_network(monkeypatch)


def test_a_cli_batch_opens_no_network_connection(no_network: list[str], tmp_path: Path, tiny_weights, rgb_image):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(rgb_image(40, 50, seed=index)).save(folder / f"lesion {index}.jpg")
    out = tmp_path / "out"
    assert main([str(folder), "--out", str(out), "--weights", str(tiny_weights), "--overlay"]) == 0
    assert len(list(out.glob("*_segmentation.png"))) == 2
    assert no_network == []


def test_no_shipped_module_imports_qt_network_code() -> None:
    """The static half of "nothing is sent over the network". Network libraries (socket, ssl, http, urllib, requests,
    ...) are forbidden by an import-linter contract (pyproject.toml, run by ``make test``); import-linter cannot
    forbid a subpackage of an external package, so Qt's network and web-engine modules are checked here."""
    found = []
    for path, tree in shipped_sources():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            found += [
                f"{path.relative_to(REPO)}:{node.lineno}: {name}"
                for name in names
                if "QtNetwork" in name or "QtWebEngine" in name
            ]
    assert found == []


def test_the_test_helpers_really_block_the_network(no_network: list[str]) -> None:
    with pytest.raises(OSError, match="blocked by the test"):
        socket.create_connection(("example.org", 443), timeout=1)
    with socket.socket() as raw, pytest.raises(OSError):
        raw.connect(("127.0.0.1", 9))
    assert len(no_network) == 2
