"""Tests for segmentation.inference on the tiny *untrained* weights (CPU), and train/predict input parity.

The model is random, so only the plumbing is checked (sizes, ranges, thresholds, batching, no autograd); nothing
here judges whether a mask outlines a lesion.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segmentation.imageio import read_image
from segmentation.inference import Predictor, select_device, upsample_probability
from segmentation.preprocessing import Preprocessing, prepare_input
from trainer.data import CachedSplit, Sample, SegmentationDataset


@pytest.fixture(scope="module")
def predictor(tiny_weights: Path) -> Predictor:
    """The PyTorch backend: these tests hook ``predictor.model`` (the ONNX Runtime path is in test_backends.py)."""
    return Predictor(tiny_weights, device="cpu", backend="torch")


UNTRAINED_NAME = "untrained-test-model"


def test_predictor_reports_the_untrained_model(
    predictor: Predictor, tiny_weights: Path, tiny_preprocessing: Preprocessing
) -> None:
    assert predictor.device == torch.device("cpu")
    assert predictor.info.name == UNTRAINED_NAME
    assert predictor.info.preprocessing == tiny_preprocessing
    assert predictor.weights_path == tiny_weights
    assert predictor.device_description.startswith("CPU")
    assert not predictor.model.training


# (96, 128) is twice the 48x64 input; (150, 200) and (301, 257) exceed it on both sides, so the area pre-reduction runs.
@pytest.mark.parametrize(
    "size", [(48, 64), (37, 53), (1, 1), (3, 5), (97, 129), (150, 200), (301, 257)], ids=lambda s: f"{s[0]}x{s[1]}"
)
def test_probability_is_float32_at_the_image_size(predictor: Predictor, rgb_image, size: tuple[int, int]) -> None:
    probability = predictor.predict_probability(rgb_image(*size, seed=sum(size)))
    assert probability.shape == size
    assert probability.dtype == np.float32
    assert np.isfinite(probability).all()
    assert probability.min() >= 0.0
    assert probability.max() <= 1.0


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.51, 1.0])
def test_predict_mask_is_probability_at_threshold(predictor: Predictor, rgb_image, threshold: float) -> None:
    image = rgb_image(41, 59, seed=3)
    probability = predictor.predict_probability(image)
    result = predictor.predict(image, threshold=threshold)
    np.testing.assert_array_equal(result.probability, probability)
    np.testing.assert_array_equal(result.mask, probability >= threshold)
    assert result.mask.dtype == np.bool_
    assert result.threshold == threshold
    assert result.model.name == UNTRAINED_NAME
    # The model's identity is its weights file's SHA-256, as sha256sum prints it, not the tensor hash.
    assert result.model.sha256 == hashlib.sha256(predictor.weights_path.read_bytes()).hexdigest()
    assert result.model.sha256 != predictor.info.sha256
    # ...and it says where it ran: the device and the engine (the provenance of every export).
    assert (result.model.device, result.model.backend) == (predictor.device_description, predictor.backend.name)
    assert result.model.backend


def test_batch_equals_single_predictions(predictor: Predictor, rgb_image) -> None:
    images = [rgb_image(48, 64, seed=1), rgb_image(37, 53, seed=2), rgb_image(150, 200, seed=3)]
    batched = predictor.predict_probabilities(images)
    assert len(batched) == len(images)
    for image, probability in zip(images, batched, strict=True):
        np.testing.assert_allclose(probability, predictor.predict_probability(image), atol=1e-5, rtol=0)
    assert predictor.predict_probabilities([]) == []


def test_model_runs_without_autograd(predictor: Predictor, rgb_image) -> None:
    seen: list[tuple[bool, bool, bool]] = []

    def hook(_module, inputs, output) -> None:
        seen.append((torch.is_inference_mode_enabled(), inputs[0].requires_grad, output.requires_grad))

    handle = predictor.model.head.register_forward_hook(hook)  # the network's last layer, on the path that runs
    try:
        predictor.predict_probability(rgb_image(30, 40))
    finally:
        handle.remove()
    assert seen == [(True, False, False)]


def test_predictor_rejects_a_non_rgb_image(predictor: Predictor) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        predictor.predict_probability(np.zeros((10, 10), dtype=np.uint8))


def test_upsample_probability_keeps_float32() -> None:
    probability = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert upsample_probability(probability, (3, 4)).dtype == np.float32
    up = upsample_probability(probability, (7, 9))
    assert up.shape == (7, 9)
    assert up.dtype == np.float32


# ------------------------------------------------------------------------------------------------ devices
def _no_gpu() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps and mps.is_available())


@pytest.mark.skipif(not _no_gpu(), reason="a GPU is available here, so auto does not pick the CPU")
def test_auto_device_is_cpu_without_a_gpu() -> None:
    assert select_device("auto") == torch.device("cpu")
    assert select_device("AUTO") == torch.device("cpu")


def test_cpu_device() -> None:
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_an_error(name: str) -> None:
    with pytest.raises(RuntimeError, match="CUDA was requested"):
        select_device(name)


@pytest.mark.parametrize("name", ["tpu", "gpu", ""])
def test_unknown_device_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown device"):
        select_device(name)


# ------------------------------------------------------------------------------------------------ parity
def _trainer_tensor(sample: Sample, preprocessing: Preprocessing, cache_dir: Path) -> torch.Tensor:
    split = CachedSplit([sample], preprocessing, cache_dir)
    image, mask = SegmentationDataset(split)[0]  # no augmentation
    assert mask.shape == (1, *preprocessing.input_size)
    return image


# The paper's 224x224 bicubic resize (no pre-reduction from 256x192), and the tiny weights' 48x64, where a 256x192
# image is first area-reduced to 96x128.
PARITY_SIZES = [(224, 224), (48, 64)]


@pytest.mark.parametrize("input_size", PARITY_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trainer_and_predictor_inputs_are_identical_synthetic(
    tmp_path: Path, rgb_image, input_size: tuple[int, int]
) -> None:
    preprocessing = Preprocessing(input_size=input_size)
    array = rgb_image(192, 256, seed=11)  # the shared data's 256x192 (W x H) images
    image_path, mask_path = tmp_path / "ISIC_9999999.png", tmp_path / "ISIC_9999999_segmentation.png"
    Image.fromarray(array).save(image_path)
    Image.fromarray(np.where(array[..., 0] < 150, 255, 0).astype(np.uint8)).save(mask_path)
    trainer = _trainer_tensor(Sample(image_path, mask_path), preprocessing, tmp_path / "cache")
    predicted = torch.from_numpy(prepare_input(array, preprocessing))
    assert trainer.dtype == predicted.dtype == torch.float32
    assert trainer.shape == (3, *preprocessing.input_size)
    assert torch.equal(trainer, predicted)
    assert torch.equal(predicted, torch.from_numpy(prepare_input(read_image(image_path), preprocessing)))


@pytest.mark.parametrize("input_size", PARITY_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trainer_and_predictor_inputs_are_identical_isic(
    tmp_path: Path, require_isic, input_size: tuple[int, int]
) -> None:
    preprocessing = Preprocessing(input_size=input_size)
    images = require_isic("ISIC-2017_Training_Data")
    masks = require_isic("ISIC-2017_Training_Part1_GroundTruth")
    image_path = sorted(images.glob("ISIC_*.jpg"))[0]
    sample = Sample(image_path, masks / f"{image_path.stem}_segmentation.png")
    trainer = _trainer_tensor(sample, preprocessing, tmp_path / "cache")
    predicted = torch.from_numpy(prepare_input(read_image(image_path), preprocessing))
    assert torch.equal(trainer, predicted)


def test_the_predictor_feeds_its_model_the_trainer_tensor(predictor: Predictor, tmp_path: Path, rgb_image) -> None:
    array = rgb_image(192, 256, seed=12)
    image_path, mask_path = tmp_path / "img.png", tmp_path / "img_segmentation.png"
    Image.fromarray(array).save(image_path)
    Image.fromarray(np.zeros(array.shape[:2], dtype=np.uint8)).save(mask_path)
    trainer = _trainer_tensor(Sample(image_path, mask_path), predictor.info.preprocessing, tmp_path / "cache")
    fed: list[torch.Tensor] = []
    first_stage = predictor.model.encoder[0]  # what the network's first layer is fed, on the path that runs
    handle = first_stage.register_forward_pre_hook(lambda _m, inputs: fed.append(inputs[0].clone()))
    try:
        predictor.predict_probability(array)
    finally:
        handle.remove()
    assert len(fed) == 1
    assert torch.equal(fed[0][0], trainer)
