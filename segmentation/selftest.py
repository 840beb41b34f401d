"""``lesionlens --self-test``: prove that this installation segments like the Python build, without a display.

It loads the bundled model (the whole file checked against the SHA-256 pinned beside it, see
``segmentation.bundled_model``), segments the bundled sample and compares the mask with the reference mask that the
regenerate-all command (``scripts/publish_model.py``) wrote from the Python build for that sample. A PyInstaller
bundle that lost a library, a data file or numerical agreement fails here, on the clinic's machine, before a
clinician sees a wrong outline.

Exit status: 0 when Dice >= ``MIN_DICE``; 1 when the mask differs; 2 when a file is missing or unusable.
``$LESIONLENS_WEIGHTS`` is ignored on purpose: the reference belongs to the bundled model only. Qt-free.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from segmentation import bundled_model
from segmentation.imageio import ImageReadError, read_image, read_mask
from segmentation.inference import DEVICE_CHOICES, Predictor
from segmentation.metrics import ConfusionCounts, dice
from segmentation.plain_text import plain_text
from segmentation.resources import DEFAULT_WEIGHTS_NAME, resources_dir
from segmentation.weights import WeightsError

SAMPLE_NAME = "ISIC_0012126.jpg"
MIN_DICE = 0.99


class SelfTestError(Exception):
    """A file the self-test needs is missing or unusable; the message names it."""


@dataclass(frozen=True)
class SelfTestFiles:
    weights: Path
    sample: Path
    reference: Path


def selftest_files(resources: Path | None = None) -> SelfTestFiles:
    """The bundled weights, the sample and its reference mask under ``resources`` (default: the bundled ones)."""
    base = resources or resources_dir()
    return SelfTestFiles(
        weights=base / "models" / DEFAULT_WEIGHTS_NAME,
        sample=base / "samples" / SAMPLE_NAME,
        reference=reference_path(base),
    )


def reference_path(resources: Path | None = None) -> Path:
    """Where the regenerate-all command (``scripts/publish_model.py``) writes the sample's reference mask."""
    return (resources or resources_dir()) / "selftest" / f"{Path(SAMPLE_NAME).stem}_reference.png"


@dataclass(frozen=True)
class SelfTestResult:
    model_name: str
    model_sha256: str
    file_sha256: str
    device: str
    dice: float
    image_size: tuple[int, int]
    load_seconds: float
    segment_seconds: float

    @property
    def passed(self) -> bool:
        return self.dice >= MIN_DICE


def run_self_test(resources: Path | None = None, device: str = "auto") -> SelfTestResult:
    """Load the pinned model, segment the sample and score its mask against the reference; raises SelfTestError."""
    files = selftest_files(resources)
    pin = bundled_model.bundled_sha256(files.weights)
    if pin is None:
        raise SelfTestError(f"no model is bundled ({bundled_model.pin_path(files.weights)}: no pinned SHA-256)")
    for path, what in ((files.weights, "bundled weights"), (files.sample, "sample"), (files.reference, "reference")):
        if not path.is_file():
            raise SelfTestError(f"{path}: {what} file not found")
    image = _read(read_image, files.sample)  # the cheap checks first: loading the model takes seconds
    reference = _read(read_mask, files.reference)
    if reference.shape != image.shape[:2]:
        raise SelfTestError(
            f"{files.reference}: reference mask is {reference.shape[1]}x{reference.shape[0]} but the sample "
            f"{files.sample.name} is {image.shape[1]}x{image.shape[0]}"
        )
    started = time.perf_counter()
    try:
        predictor = Predictor(files.weights, device, expected_sha256=pin)
    except WeightsError as error:
        raise SelfTestError(str(error)) from error
    except (RuntimeError, ValueError) as error:  # a device or backend asked for that is not there
        raise SelfTestError(f"cannot run the model on {device!r}: {error}") from error
    loaded = time.perf_counter()
    mask = predictor.predict(image).mask
    score = dice(ConfusionCounts.from_masks(mask, reference))
    return SelfTestResult(
        model_name=predictor.info.name,
        model_sha256=predictor.info.sha256,
        file_sha256=pin,
        device=predictor.device_description,
        dice=score,
        image_size=(image.shape[1], image.shape[0]),
        load_seconds=loaded - started,
        segment_seconds=time.perf_counter() - loaded,
    )


def _read(reader, path: Path):
    try:
        return reader(path)
    except ImageReadError as error:
        raise SelfTestError(f"{path}: unreadable ({error})") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesionlens --self-test",
        description=f"Segment the bundled sample with the bundled model and compare the mask with the Python "
        f"build's reference (pass: Dice >= {MIN_DICE}). Exit 0 pass, 1 fail, 2 missing or unusable files.",
    )
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--resources", type=Path, help="a resources folder to test (default: the bundled one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    build = "PyInstaller bundle" if getattr(sys, "frozen", False) else "Python source"
    print(f"LesionLens self-test ({build}); resources: {args.resources or resources_dir()}")
    try:
        result = run_self_test(args.resources, args.device)
    except SelfTestError as error:
        print(f"lesionlens --self-test: error: {error}", file=sys.stderr)
        print("FAIL")
        return 2
    width, height = result.image_size
    print(
        f"model: {plain_text(result.model_name)} (weights {result.model_sha256[:12]}; "
        f"file SHA-256 {result.file_sha256[:12]} matches the pin)"
    )
    print(f"device: {result.device}")
    print(f"sample: {SAMPLE_NAME} ({width}x{height})")
    print(f"Dice against the Python build's reference: {result.dice:.4f} (pass: >= {MIN_DICE})")
    print(
        f"time: load {result.load_seconds:.2f} s, segment {result.segment_seconds:.2f} s, "
        f"self-test {time.perf_counter() - started:.2f} s"
    )
    print("PASS" if result.passed else "FAIL")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
