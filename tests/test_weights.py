"""Tests for segmentation.weights: the safetensors + metadata file, its round trip and every way it can be bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from segmentation.network import ARCHITECTURE, NetworkConfig, build_model
from segmentation.preprocessing import Preprocessing
from segmentation.weights import (
    METADATA_KEY,
    WeightsError,
    file_sha256,
    load_weights,
    read_model_info,
    save_weights,
    tensors_sha256,
)

CONFIG = NetworkConfig(variant="full", base_width=4)
PREPROCESSING = Preprocessing(input_size=(48, 64), interpolation="area", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
TRAINING = {"dataset": "synthetic", "epochs": 0, "note": "untrained: random initialisation"}
VALIDATION = {"dice": None, "images": 0}


@pytest.fixture
def model() -> torch.nn.Module:
    """A random network whose batch-norm running statistics are not the defaults, so buffers are checked too."""
    torch.manual_seed(7)
    net = build_model(CONFIG).train()
    with torch.no_grad():
        net(torch.randn(2, 3, 24, 32))
    return net.eval()


@pytest.fixture
def saved(tmp_path: Path, model: torch.nn.Module) -> Path:
    path = tmp_path / "untrained.safetensors"
    save_weights(
        path, model, name="untrained-test-model", preprocessing=PREPROCESSING, training=TRAINING, validation=VALIDATION
    )
    return path


def _read_raw(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()  # noqa: SIM118


def _expect_error(path: Path, fragment: str, **kwargs) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        load_weights(path, **kwargs)
    error = info.value
    assert error.path == path
    assert str(path) in str(error), "the message names the file"
    assert fragment in error.reason
    return error


def test_round_trip_gives_identical_outputs(saved: Path, model: torch.nn.Module) -> None:
    loaded, _ = load_weights(saved)
    assert not loaded.training
    x = torch.randn(2, 3, 29, 41)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_metadata_survives(saved: Path, model: torch.nn.Module) -> None:
    _, info = load_weights(saved)
    assert info.name == "untrained-test-model"
    assert info.network == CONFIG
    assert info.preprocessing == PREPROCESSING
    assert info.training == TRAINING
    assert info.validation == VALIDATION
    assert info.sha256 == tensors_sha256(model.state_dict())
    assert info.short_hash == info.sha256[:12]
    assert info.created
    assert read_model_info(saved) == info


def test_save_returns_what_it_wrote_and_leaves_no_temp_file(tmp_path: Path, model: torch.nn.Module) -> None:
    path = tmp_path / "w.safetensors"
    written = save_weights(path, model, name="untrained-test-model", preprocessing=PREPROCESSING)
    assert read_model_info(path) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]
    _, metadata = _read_raw(path)
    assert json.loads(metadata[METADATA_KEY])["architecture"] == ARCHITECTURE


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nowhere.safetensors", "not found")


def test_folder(tmp_path: Path) -> None:
    _expect_error(tmp_path, "folder")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    _expect_error(path, "empty")


def test_truncated_file(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    _expect_error(saved, "truncated or not a safetensors file")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_error(path, "truncated or not a safetensors file")


def test_safetensors_without_lesionlens_metadata(tmp_path: Path, model: torch.nn.Module) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    _expect_error(path, "no LesionLens metadata")


def test_safetensors_with_other_metadata_only(tmp_path: Path, model: torch.nn.Module) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata={"format": "pt"})
    _expect_error(path, "no LesionLens metadata")


def test_metadata_for_another_architecture(saved: Path) -> None:
    state, metadata = _read_raw(saved)
    raw = json.loads(metadata[METADATA_KEY])
    raw["architecture"] = "other"
    save_file(state, str(saved), metadata={METADATA_KEY: json.dumps(raw)})
    error = _expect_error(saved, "architecture 'other'")
    assert ARCHITECTURE in error.reason


def test_metadata_from_a_newer_format(saved: Path) -> None:
    state, metadata = _read_raw(saved)
    raw = json.loads(metadata[METADATA_KEY])
    raw["format_version"] = 99
    save_file(state, str(saved), metadata={METADATA_KEY: json.dumps(raw)})
    _expect_error(saved, "newer LesionLens")


def test_incomplete_metadata(saved: Path) -> None:
    state, metadata = _read_raw(saved)
    raw = json.loads(metadata[METADATA_KEY])
    del raw["network"]
    save_file(state, str(saved), metadata={METADATA_KEY: json.dumps(raw)})
    _expect_error(saved, "incomplete or invalid")


def test_metadata_claiming_another_network_shape(saved: Path) -> None:
    state, metadata = _read_raw(saved)
    raw = json.loads(metadata[METADATA_KEY])
    raw["network"]["base_width"] = 8  # the tensors (and their recorded hash) are still the width-4 ones
    save_file(state, str(saved), metadata={METADATA_KEY: json.dumps(raw)})
    _expect_error(saved, "do not fit")


def test_tampered_tensor(saved: Path) -> None:
    state, metadata = _read_raw(saved)
    key = "head.weight"
    state[key] = state[key].clone()
    state[key].view(-1)[0] += 0.5
    save_file(state, str(saved), metadata=metadata)
    _expect_error(saved, "do not match their recorded SHA-256")


def test_wrong_pinned_hash(saved: Path) -> None:
    load_weights(saved, expected_sha256=file_sha256(saved))  # the right pin (of the whole file) loads
    _expect_error(saved, "does not match the pinned SHA-256", expected_sha256="0" * 64)


def test_half_precision_stores_fp16_and_loads_float32(tmp_path: Path, model: torch.nn.Module) -> None:
    full_path, half_path = tmp_path / "fp32.safetensors", tmp_path / "fp16.safetensors"
    save_weights(full_path, model, name="untrained-test-model", preprocessing=PREPROCESSING)
    info = save_weights(half_path, model, name="untrained-test-model", preprocessing=PREPROCESSING, half_precision=True)
    stored, _ = _read_raw(half_path)
    floats = [t for t in stored.values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    assert all(t.dtype == torch.int64 for t in stored.values() if not t.is_floating_point())  # num_batches_tracked
    assert info.sha256 == tensors_sha256(stored)
    assert half_path.stat().st_size < 0.6 * full_path.stat().st_size

    loaded, loaded_info = load_weights(half_path)
    assert loaded_info.sha256 == info.sha256
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(1, 3, 32, 48)
    with torch.inference_mode():
        reference, half = model(x), loaded(x)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, reference, atol=1e-2, rtol=0)  # logits
    torch.testing.assert_close(torch.sigmoid(half), torch.sigmoid(reference), atol=1e-2, rtol=0)


def test_pin_catches_a_changed_preprocessing_with_untouched_tensors(saved: Path, tmp_path: Path) -> None:
    """Tampering with the metadata alone keeps the tensors' own hash valid; the file pin still refuses it."""
    pin = file_sha256(saved)
    with safe_open(str(saved), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        metadata = json.loads(handle.metadata()[METADATA_KEY])
    metadata["preprocessing"]["input_size"] = [16, 16]
    tampered = tmp_path / "tampered.safetensors"
    save_file(tensors, str(tampered), metadata={METADATA_KEY: json.dumps(metadata)})
    load_weights(tampered)  # self-consistent: the recorded tensor hash still matches
    _expect_error(tampered, "does not match the pinned SHA-256", expected_sha256=pin)
