"""Weights files are untrusted input: every metadata field is checked against bounds before anything is built,
tensors must be finite floats, and a smoke forward pass with non-finite output refuses the model.

Each case starts from a valid tiny weights file and changes one thing (recomputing the tensors' recorded hash where
tensors change, as an attacker would), then checks that loading gives one WeightsError naming the file, and that no
network was built for a metadata problem (the allocation the bad metadata would have driven never happens).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import segmentation.weights as weights_module
from segmentation.network import NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.weights import METADATA_KEY, WeightsError, load_weights, save_weights, tensors_sha256

CONFIG = NetworkConfig(variant="full", base_width=4)
PREPROCESSING = Preprocessing(input_size=(48, 64))


@pytest.fixture
def good(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "hostile model.safetensors"
    save_weights(path, build_model(CONFIG), name="untrained-test-model", preprocessing=PREPROCESSING)
    return path


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        return state, json.loads(handle.metadata()[METADATA_KEY])


def write(path: Path, state: dict[str, torch.Tensor], raw: object, *, rehash: bool = True) -> None:
    if rehash and isinstance(raw, dict):
        raw["sha256"] = tensors_sha256(state)
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(raw)})


def refused(path: Path, fragment: str) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert info.value.path == path
    assert str(path) in str(info.value), "every message names the file"
    assert fragment in info.value.reason, info.value.reason
    return info.value


def set_field(raw: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        raw = raw[key]
    raw[last] = value


METADATA_CASES = {
    "input_size 4000x4000": ("preprocessing.input_size", [4000, 4000], "input_size 4000 is outside 8-1024"),
    "input_size 100000x100000": ("preprocessing.input_size", [100000, 100000], "outside 8-1024"),
    "input_size 0": ("preprocessing.input_size", [0, 0], "input_size 0 is outside"),
    "input_size -5": ("preprocessing.input_size", [-5, -5], "input_size -5 is outside"),
    "input_size one number": ("preprocessing.input_size", [48], "list of 2 whole numbers"),
    "input_size string": ("preprocessing.input_size", "48x64", "list of 2 whole numbers"),
    "input_size float": ("preprocessing.input_size", [48.5, 64], "whole number"),
    "input_size null": ("preprocessing.input_size", None, "list of 2 whole numbers"),
    "base_width 300": ("network.base_width", 300, "base_width 300 is outside 1-64"),
    "base_width 1e6": ("network.base_width", 1_000_000, "base_width 1000000 is outside"),
    "base_width 0": ("network.base_width", 0, "base_width 0 is outside"),
    "base_width string": ("network.base_width", "16", "base_width must be a whole number, not a string"),
    "base_width true": ("network.base_width", True, "not true/false"),
    "reduction_ratio -1": ("network.reduction_ratio", -1, "reduction_ratio -1"),
    "in_channels 4": ("network.in_channels", 4, "in_channels 4"),
    "variant null": ("network.variant", None, "unknown network variant"),
    "network list": ("network", [4], "'network' must be a JSON object, not a JSON list"),
    "preprocessing string": ("preprocessing", "bicubic", "'preprocessing' must be a JSON object, not a string"),
    "format_version null": ("format_version", None, "format_version must be a whole number"),
    "format_version string": ("format_version", "1", "format_version must be a whole number"),
    "format_version 0": ("format_version", 0, "format_version must be a whole number of at least 1"),
    "name null": ("name", None, "'name' must be a string, not null"),
    "name number": ("name", 5, "'name' must be a string, not a number"),
    "name too long": ("name", "x" * 5000, "5000 characters long"),
    "name blank": ("name", "  ", "name is empty"),
    "training list": ("training", [1, 2], "'training' must be a JSON object"),
    "validation string": ("validation", "good", "'validation' must be a JSON object"),
    "sha256 null": ("sha256", None, "'sha256' must be a string"),
    "interpolation unknown": ("preprocessing.interpolation", "lanczos9", "unknown interpolation"),
    "mean two values": ("preprocessing.mean", [0.5, 0.5], "mean must be a list of 3 numbers"),
    "mean NaN": ("preprocessing.mean", [math.nan, 0.5, 0.5], "not a finite number"),
    "std zero": ("preprocessing.std", [0.0, 0.0, 0.0], "std (standard deviation) value 0.0 is outside"),
    "std negative": ("preprocessing.std", [-0.2, 0.2, 0.2], "std (standard deviation) value -0.2"),
    "std infinite": ("preprocessing.std", [math.inf, 0.2, 0.2], "not a finite number"),
    "costly size and width": ("network.base_width", 64, "too costly to run"),
    "unknown network field": ("network.depth", 99, "unknown fields depth"),
}


@pytest.mark.parametrize("case", METADATA_CASES, ids=list(METADATA_CASES))
def test_bad_metadata_is_refused_before_anything_is_built(
    case: str, good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    field, value, fragment = METADATA_CASES[case]
    state, raw = read(good)
    set_field(raw, field, value)
    if case == "costly size and width":
        raw["preprocessing"]["input_size"] = [1024, 1024]
    write(good, state, raw, rehash=False)

    def no_building(*_args, **_kwargs):
        raise AssertionError("a network was built from unchecked metadata")

    monkeypatch.setattr(weights_module, "build_model", no_building)
    refused(good, fragment)


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [("[1, 2, 3]", "is a JSON list"), ('"lesionlens"', "is a string"), ("null", "is null"), ("7", "is a number")],
)
def test_metadata_that_is_not_a_json_object_is_refused(good: Path, metadata: str, fragment: str) -> None:
    state, _ = read(good)
    save_file(state, str(good), metadata={METADATA_KEY: metadata})
    refused(good, fragment)


def test_deeply_nested_metadata_is_refused_not_a_recursion_error(good: Path) -> None:
    state, _ = read(good)
    save_file(state, str(good), metadata={METADATA_KEY: "[" * 100_000 + "]" * 100_000})
    refused(good, "not a LesionLens weights file")


def test_nan_and_infinite_tensors_are_refused(good: Path) -> None:
    for bad in (math.nan, math.inf):
        state, raw = read(good)
        state["head.weight"] = state["head.weight"].clone()
        state["head.weight"].view(-1)[0] = bad
        write(good, state, raw)
        refused(good, "tensor head.weight holds NaN or infinite values")


def test_integer_tensors_where_the_network_has_floats_are_refused(good: Path) -> None:
    state, raw = read(good)
    state = {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in state.items()}
    write(good, state, raw)
    refused(good, "values where the network needs floats")


def test_a_negative_batch_norm_variance_is_refused(good: Path) -> None:
    state, raw = read(good)
    key = next(k for k in state if k.endswith("running_var"))
    state[key] = -state[key].abs() - 1
    write(good, state, raw)
    refused(good, "negative variance")


def test_finite_weights_whose_output_overflows_are_refused_by_the_smoke_pass(good: Path) -> None:
    """Every tensor finite, the hash right: only running the network shows its logits are infinite."""
    state, raw = read(good)
    for key in [k for k in state if k.endswith("running_var")]:  # every batch norm scales by 1e30: overflow
        weight = key.replace("running_var", "weight")
        state[weight] = torch.full_like(state[weight], 1e30)
    write(good, state, raw)
    refused(good, "NaN or infinite output on a test image")


def test_a_good_file_still_loads_and_gives_finite_logits(good: Path) -> None:
    model, info = load_weights(good)
    assert info.preprocessing == PREPROCESSING
    with torch.inference_mode():
        assert torch.isfinite(model(torch.zeros(1, 3, 48, 64))).all()


@pytest.mark.slow  # a subprocess
def test_cli_refuses_a_nan_model_with_exit_2_naming_the_file(good: Path, tmp_path: Path, rgb_image) -> None:
    from PIL import Image

    state, raw = read(good)
    state = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in state.items()}
    write(good, state, raw)
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb_image(40, 40)).save(tmp_path / "in" / "lesion.png")
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.launcher",
            "segment",
            str(tmp_path / "in"),
            "--out",
            str(out),
            "--weights",
            str(good),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert str(good) in done.stderr and "NaN or infinite" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


HOSTILE_NAME = 'good\nerror: all good\x1b[31m RED\x1b[0m\x1b]0;pwned\x07 \u202eevil <a href="x">link</a>'


def test_plain_text_leaves_one_printable_line() -> None:
    from segmentation.plain_text import plain_text

    shown = plain_text(HOSTILE_NAME)
    assert "\n" not in shown and "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == 'good error: all good RED \ufffdevil <a href="x">link</a>'
    assert plain_text("ISIC model, Dice 0.86") == "ISIC model, Dice 0.86"  # ordinary names unchanged
    assert plain_text("x" * 500).endswith("…") and len(plain_text("x" * 500)) == 200


@pytest.mark.slow  # a subprocess
def test_cli_prints_a_hostile_model_name_as_one_plain_line(tmp_path: Path, rgb_image) -> None:
    from PIL import Image

    weights = tmp_path / "named.safetensors"
    torch.manual_seed(3)
    save_weights(weights, build_model(CONFIG), name=HOSTILE_NAME, preprocessing=PREPROCESSING)
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb_image(40, 40)).save(tmp_path / "in" / "lesion.png")
    argv = ["segment", tmp_path / "in", "--out", tmp_path / "out", "--weights", weights, "--backend", "torch"]
    done = subprocess.run(
        [sys.executable, "-m", "app.launcher", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert not any(line.startswith("error: all good") for line in output.splitlines())
    assert "model good error: all good RED" in output
