"""A weights file is untrusted input: every field of its metadata and every tensor is checked before it is used.

The metadata decides how large a network is built and how large an input it is run on, so it is checked against
fixed bounds *before* anything is built or allocated (a claimed input of 100000x100000 pixels or a base width of a
million is refused from the header alone). The tensors must be finite floating-point numbers where the network
has floats, and a forward pass on a fixed image must give finite logits: a file of NaNs, integers or a zero
standard deviation would otherwise segment every image as "no lesion" without a word.

Each check raises :class:`MetadataProblem` with a plain reason; :mod:`segmentation.weights` adds the file's name.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from segmentation.network import VARIANTS, NetworkConfig, SummarisedNetwork
from segmentation.preprocessing import INTERPOLATIONS, Preprocessing, prepare_input
from segmentation.quality import QualityEstimator

#: Bounds on what a weights file may ask for. The bundled model is base width 16 at 128x160; the paper's is 224x224.
MAX_BASE_WIDTH = 64
MAX_REDUCTION_RATIO = 256
INPUT_SIDE_RANGE = (8, 1024)
#: base width x input pixels: one forward pass of width 16 at 512x512 peaks at about 335 MB and takes 3 s on the
#: project's busy 2-core CPU (measured with ``ru_maxrss``); anything costlier is refused before it is built.
MAX_WIDTH_TIMES_PIXELS = 16 * 512 * 512
MAX_NAME_LENGTH = 200
MIN_STD = 1e-3
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MetadataProblem(ValueError):
    """What is wrong with a weights file's metadata or tensors (without the file's name)."""


def _type_name(value: object) -> str:
    return {dict: "a JSON object", list: "a JSON list", str: "a string", type(None): "null", bool: "true/false"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _int(value: object, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MetadataProblem(f"{name} must be a whole number, not {_type_name(value)}")
    if not low <= value <= high:
        raise MetadataProblem(f"{name} {value} is outside {low}-{high}")
    return value


def _floats(value: object, name: str, low: float, high: float) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise MetadataProblem(f"{name} must be a list of 3 numbers (R, G, B), not {_type_name(value)}")
    result = []
    for item in value:
        if not isinstance(item, int | float) or isinstance(item, bool) or not math.isfinite(item):
            raise MetadataProblem(f"{name} holds {item!r}, not a finite number")
        if not low <= item <= high:
            raise MetadataProblem(f"{name} value {item} is outside {low}-{high}")
        result.append(float(item))
    return result[0], result[1], result[2]


def _missing(raw: dict, key: str) -> None:
    if key not in raw:
        raise MetadataProblem(f"metadata is incomplete or invalid: field {key!r} is missing")


def _object(raw: dict, key: str, *, required: bool = True) -> dict:
    if required:
        _missing(raw, key)
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise MetadataProblem(f"metadata field {key!r} must be a JSON object, not {_type_name(value)}")
    return value


def _string(raw: dict, key: str, *, required: bool = False, limit: int = 1000) -> str:
    if required:
        _missing(raw, key)
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise MetadataProblem(f"metadata field {key!r} must be a string, not {_type_name(value)}")
    if len(value) > limit:
        raise MetadataProblem(f"metadata field {key!r} is {len(value)} characters long (at most {limit})")
    return value


def check_header(raw: object, format_name: str, format_version: int, architecture: str) -> None:
    """The fields that say whether this is a LesionLens weights file at all, and of a version this code reads."""
    if not isinstance(raw, dict):
        raise MetadataProblem(f"not a LesionLens weights file (its metadata is {_type_name(raw)}, not a JSON object)")
    if raw.get("format") != format_name or raw.get("architecture") != architecture:
        raise MetadataProblem(
            f"weights are for architecture {raw.get('architecture')!r}, LesionLens expects {architecture!r}"
        )
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MetadataProblem(f"format_version must be a whole number of at least 1, not {version!r}")
    if version > format_version:
        raise MetadataProblem(f"made by a newer LesionLens (format {version}); please update")


def check_network(values: dict) -> NetworkConfig:
    unknown = set(values) - {"variant", "base_width", "reduction_ratio", "in_channels"}
    if unknown:
        raise MetadataProblem(f"network has unknown fields {', '.join(sorted(map(str, unknown)))}")
    variant = values.get("variant", "full")
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise MetadataProblem(f"unknown network variant {variant!r}; LesionLens knows {', '.join(VARIANTS)}")
    return NetworkConfig(
        variant=variant,
        base_width=_int(values.get("base_width", 16), "base_width", 1, MAX_BASE_WIDTH),
        reduction_ratio=_int(values.get("reduction_ratio", 16), "reduction_ratio", 1, MAX_REDUCTION_RATIO),
        in_channels=_int(values.get("in_channels", 3), "in_channels", 3, 3),
    )


def check_preprocessing(values: dict) -> Preprocessing:
    unknown = set(values) - {"input_size", "interpolation", "mean", "std", "extra"}
    if unknown:
        raise MetadataProblem(f"preprocessing has unknown fields {', '.join(sorted(map(str, unknown)))}")
    size = values.get("input_size")
    if not isinstance(size, list) or len(size) != 2:
        raise MetadataProblem(f"input_size must be a list of 2 whole numbers (height, width), not {size!r}")
    low, high = INPUT_SIDE_RANGE
    height, width = (_int(side, "input_size", low, high) for side in size)
    interpolation = values.get("interpolation", "bicubic")
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        raise MetadataProblem(f"unknown interpolation {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
    extra = values.get("extra", {})
    if not isinstance(extra, dict):
        raise MetadataProblem(f"preprocessing extra must be a JSON object, not {_type_name(extra)}")
    return Preprocessing(
        input_size=(height, width),
        interpolation=interpolation,
        mean=_floats(values.get("mean"), "mean", 0.0, 1.0),
        std=_floats(values.get("std"), "std (standard deviation)", MIN_STD, 1.0),
        extra=extra,
    )


def check_cost(network: NetworkConfig, preprocessing: Preprocessing) -> None:
    height, width = preprocessing.input_size
    if network.base_width * height * width > MAX_WIDTH_TIMES_PIXELS:
        raise MetadataProblem(
            f"a base width of {network.base_width} at {height}x{width} pixels is too costly to run "
            f"(base width x pixels at most {MAX_WIDTH_TIMES_PIXELS})"
        )


def check_metadata(raw: dict) -> dict:
    """Every field's type and range; returns the checked values for :class:`ModelInfo`."""
    name = _string(raw, "name", required=True, limit=MAX_NAME_LENGTH)
    if not name.strip():
        raise MetadataProblem("the model's name is empty")
    network = check_network(_object(raw, "network"))
    preprocessing = check_preprocessing(_object(raw, "preprocessing"))
    check_cost(network, preprocessing)
    sha256 = _string(raw, "sha256", required=True, limit=64)
    if not _SHA256.fullmatch(sha256):
        raise MetadataProblem("sha256 is not 64 lower-case hexadecimal digits")
    return {
        "name": name,
        "network": network,
        "preprocessing": preprocessing,
        "training": _object(raw, "training", required=False),
        "validation": _object(raw, "validation", required=False),
        "code_version": _string(raw, "code_version", limit=MAX_NAME_LENGTH),
        "created": _string(raw, "created", limit=MAX_NAME_LENGTH),
        "sha256": sha256,
        "quality": check_quality(raw.get("quality")),
    }


def check_quality(value: object) -> QualityEstimator | None:
    """The optional estimated-Dice model (``segmentation.quality``): absent, or complete and finite."""
    if value is None:
        return None
    try:
        return QualityEstimator.from_dict(value)  # type: ignore[arg-type]
    except ValueError as error:
        raise MetadataProblem(f"quality: {error}") from error


def check_tensors(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Float where the network has floats (finite), whole numbers where it counts; batch-norm variances >= 0."""
    for key, reference in expected.items():
        tensor = state.get(key)
        if tensor is None:
            continue  # load_state_dict names missing tensors
        if reference.is_floating_point():
            if not tensor.is_floating_point():
                raise MetadataProblem(f"tensor {key} holds {tensor.dtype} values where the network needs floats")
            if not bool(torch.isfinite(tensor).all()):
                raise MetadataProblem(f"tensor {key} holds NaN or infinite values")
            if key.endswith("running_var") and bool((tensor < 0).any()):
                raise MetadataProblem(f"tensor {key} holds a negative variance")
        elif tensor.is_floating_point() or tensor.is_complex():
            raise MetadataProblem(f"tensor {key} holds {tensor.dtype} values where the network counts whole numbers")


def smoke_image(height: int, width: int) -> np.ndarray:
    """A fixed skin-coloured image with a darker blob: any working model gives finite logits on it."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    blob = np.exp(-(((yy - height / 2) ** 2 + (xx - width / 2) ** 2) / (2 * (0.25 * min(height, width)) ** 2)))
    image = np.array([200.0, 160.0, 140.0], np.float32) - blob[..., None] * np.array([120.0, 100.0, 80.0], np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def check_forward_pass(
    model: torch.nn.Module, preprocessing: Preprocessing, quality: QualityEstimator | None = None
) -> None:
    """One forward pass on :func:`smoke_image` through the file's own preprocessing; non-finite logits refuse, and
    so does a plain-skin check (``quality.plain_skin``) that does not read as many numbers as the network gives."""
    batch = torch.from_numpy(prepare_input(smoke_image(*preprocessing.input_size), preprocessing))[None]
    if not bool(torch.isfinite(batch).all()):
        raise MetadataProblem("the preprocessing (mean, std) turns an image into non-finite numbers")
    with torch.inference_mode():
        logits, summary = SummarisedNetwork(model)(batch)
    if not bool(torch.isfinite(logits).all()):
        raise MetadataProblem("the model gives NaN or infinite output on a test image (broken weights)")
    probe = quality.plain_skin if quality is not None else None
    if probe is not None and len(probe.weights) != summary.shape[1]:
        raise MetadataProblem(
            f"quality: the plain-skin check reads {len(probe.weights)} numbers, this network gives {summary.shape[1]}"
        )
