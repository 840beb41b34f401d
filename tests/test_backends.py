"""Inference backends: ONNX Runtime and channels-last PyTorch give the reference masks; ``auto`` falls back safely.

The agreement test runs the bundled (trained) model on real validation images, where the masks mean something; the
plumbing tests use the tiny untrained model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segmentation import backends
from segmentation.backends import OnnxRuntimeBackend, TorchBackend, build_backend, faster_of, requested_backend
from segmentation.imageio import read_image
from segmentation.inference import Predictor
from segmentation.metrics import ConfusionCounts, dice
from segmentation.resources import bundled_weights_path
from segmentation.weights import load_weights

needs_onnxruntime = pytest.mark.skipif(not backends.onnxruntime_installed(), reason="onnxruntime not installed")
AGREEMENT_IMAGES = 12


@needs_onnxruntime
def test_onnxruntime_masks_match_pytorch_on_real_validation_images(require_isic) -> None:
    """The issue's bar for a faster path: Dice between its masks and the reference's above 0.995."""
    folder = require_isic("ISIC-2017_Validation_Data")
    weights = bundled_weights_path()
    if not weights.exists():
        pytest.skip("no bundled model")
    reference = Predictor(weights, "cpu", backend="torch")
    reference.backend = TorchBackend(reference.model, reference.device, channels_last=False)  # plain fp32
    fast = Predictor(weights, "cpu", backend="onnxruntime")
    values = []
    for path in sorted(folder.glob("ISIC_*.jpg"))[:AGREEMENT_IMAGES]:
        image = read_image(path)
        expected, actual = reference.predict(image).mask, fast.predict(image).mask
        values.append(
            1.0 if not expected.any() and not actual.any() else dice(ConfusionCounts.from_masks(actual, expected))
        )
    assert len(values) == AGREEMENT_IMAGES
    assert min(values) > 0.995


def test_channels_last_gives_the_contiguous_logits(tiny_weights: Path) -> None:
    model, info = load_weights(tiny_weights)
    batch = np.random.default_rng(3).standard_normal((2, 3, *info.preprocessing.input_size)).astype(np.float32)
    plain = TorchBackend(load_weights(tiny_weights)[0], torch.device("cpu"), channels_last=False).logits(batch)
    fast = TorchBackend(model, torch.device("cpu"), channels_last=True)
    assert fast.name == "PyTorch channels-last"
    np.testing.assert_allclose(fast.logits(batch), plain, atol=1e-5)


@needs_onnxruntime
def test_onnxruntime_logits_match_and_batch(tiny_weights: Path) -> None:
    model, info = load_weights(tiny_weights)
    batch = np.random.default_rng(4).standard_normal((3, 3, *info.preprocessing.input_size)).astype(np.float32)
    expected = TorchBackend(model, torch.device("cpu"), channels_last=False).logits(batch)
    runtime = OnnxRuntimeBackend(model, info.preprocessing.input_size)
    assert runtime.name.startswith("ONNX Runtime")
    np.testing.assert_allclose(runtime.logits(batch), expected, atol=1e-4)
    # the stages' summary the plain-skin check reads comes out of the same pass, the same from both
    expected_summary = TorchBackend(model, torch.device("cpu"), channels_last=False).outputs(batch)[1]
    _logits, summary = runtime.outputs(batch)
    assert summary.shape == expected_summary.shape and summary.shape[0] == 3
    np.testing.assert_allclose(summary, expected_summary, atol=1e-3, rtol=1e-4)


class _Fixed:
    """A backend with fixed logits and a fixed cost, to test the choice without timing noise."""

    def __init__(self, name: str, value: float, seconds: float = 0.0) -> None:
        self.name, self.value, self.seconds = name, value, seconds

    def logits(self, batch: np.ndarray) -> np.ndarray:
        if self.seconds:
            import time

            time.sleep(self.seconds)
        return np.full((batch.shape[0], 1, *batch.shape[2:]), self.value, np.float32)


def test_auto_keeps_the_faster_backend_only_when_it_agrees() -> None:
    size = (8, 8)
    slow_reference = _Fixed("reference", 1.0, seconds=0.02)
    assert faster_of(slow_reference, _Fixed("fast", 1.0), size).name == "fast"
    assert faster_of(slow_reference, _Fixed("fast but wrong", 1.5), size).name == "reference"
    assert faster_of(_Fixed("reference", 1.0), _Fixed("slower", 1.0, seconds=0.02), size).name == "reference"
    assert faster_of(slow_reference, _Fixed("nan", float("nan")), size).name == "reference"


def test_auto_falls_back_to_pytorch_when_onnxruntime_breaks(tiny_weights: Path, monkeypatch, caplog) -> None:
    model, info = load_weights(tiny_weights)
    monkeypatch.setattr(backends, "onnxruntime_installed", lambda: True)

    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated export failure")

    monkeypatch.setattr(backends, "OnnxRuntimeBackend", broken)
    chosen = build_backend(model, torch.device("cpu"), info.preprocessing.input_size, "auto")
    assert isinstance(chosen, TorchBackend)
    assert "simulated export failure" in caplog.text


def test_backend_choice_from_argument_environment_and_errors(monkeypatch) -> None:
    monkeypatch.delenv(backends.BACKEND_ENV, raising=False)
    assert requested_backend() == "auto"
    monkeypatch.setenv(backends.BACKEND_ENV, "TORCH")
    assert requested_backend() == "torch"
    assert requested_backend("onnxruntime") == "onnxruntime"
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        requested_backend("tensorrt")


def test_onnxruntime_requested_but_missing_is_a_clear_error(tiny_weights: Path, monkeypatch) -> None:
    model, info = load_weights(tiny_weights)
    monkeypatch.setattr(backends, "onnxruntime_installed", lambda: False)
    with pytest.raises(RuntimeError, match="onnxruntime is not installed"):
        build_backend(model, torch.device("cpu"), info.preprocessing.input_size, "onnxruntime")


def test_the_status_line_names_the_backend(tiny_weights: Path) -> None:
    predictor = Predictor(tiny_weights, "cpu", backend="torch")
    assert predictor.device_description.startswith("CPU (") and "PyTorch" in predictor.device_description


@needs_onnxruntime
def test_the_batch_engine_runs_onnxruntime_with_sleeping_threads(tiny_weights: Path, tmp_path: Path, rgb_image) -> None:
    """Alone (the GUI) the spinning session, for latency; beside the batch engine's other threads the sleeping one."""
    from PIL import Image

    from segmentation.batch import BatchItem, BatchSegmenter

    predictor = Predictor(tiny_weights, "cpu", backend="onnxruntime")
    seen: list[bool] = []
    real = predictor.backend.outputs
    predictor.backend.outputs = lambda batch: seen.append(predictor.backend.spinning) or real(batch)
    predictor.predict(rgb_image())
    path = tmp_path / "one.png"
    Image.fromarray(rgb_image()).save(path)
    assert [r.status for r in BatchSegmenter(predictor, tmp_path / "out").run([BatchItem(path, Path(path.name))])] == [
        "ok"
    ]
    assert seen == [True, False]
    assert predictor.backend.spinning  # restored after the batch
