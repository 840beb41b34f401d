"""Who runs the network: PyTorch, or ONNX Runtime when it is installed and faster on this machine.

Both backends take the preprocessed float32 batch (Nx3xHxW) and return the logits (Nx1xHxW) and, from the same
pass, the summary of the network's stages that the plain-skin check reads (``segmentation.network.summarise``);
everything before and after (resizing, normalising, sigmoid, upsampling) is shared, so the choice changes speed and
nothing else.

- PyTorch runs on the CPU in channels-last memory layout (faster than contiguous for the bundled model, see
  ``docs/BENCHMARKS.md``), and on a GPU as it is.
- ONNX Runtime (the optional ``onnx`` extra: onnxruntime, and onnx for the export) runs a graph exported in memory
  from the very model the weights file rebuilt, so nothing but the verified safetensors file is ever read.
  ``auto`` exports it, checks that its logits match PyTorch's on a fixed input, times both and keeps the faster.
  Any failure falls back to PyTorch with a log line: the optional extra can make LesionLens faster, never broken.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import os
import time
import warnings
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch

from segmentation.network import SummarisedNetwork

log = logging.getLogger("lesionlens.backends")

BACKEND_CHOICES = ("auto", "torch", "onnxruntime")
BACKEND_ENV = "LESIONLENS_BACKEND"
#: ONNX Runtime's logits may differ from PyTorch's by float rounding only; more than this means a broken export.
AGREEMENT_TOLERANCE = 1e-3
CALIBRATION_RUNS = 2  # after the agreement probe, which is each backend's warm-up


class Backend(Protocol):
    """Runs the network: ``outputs(batch)`` with batch float32 Nx3xHxW returns the float32 logits (Nx1xHxW) and
    the stages' summary (NxS); ``logits(batch)`` the logits alone."""

    name: str

    def logits(self, batch: np.ndarray) -> np.ndarray: ...

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class TorchBackend:
    """The network in PyTorch, channels-last on the CPU, under ``inference_mode``."""

    def __init__(self, model: torch.nn.Module, device: torch.device, *, channels_last: bool | None = None) -> None:
        self.device = device
        self.channels_last = device.type == "cpu" if channels_last is None else channels_last
        self.model = SummarisedNetwork(model.to(device).eval())
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.name = "PyTorch" + (" channels-last" if self.channels_last else "")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            if self.channels_last:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            logits, summary = self.model(tensor)
            return logits.float().cpu().numpy(), summary.float().cpu().numpy()


class OnnxRuntimeBackend:
    """The same network exported to ONNX in memory and run by ONNX Runtime on the CPU."""

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int], *, threads: int | None = None) -> None:
        import onnxruntime

        graph = export_onnx_bytes(model, input_size)
        threads = threads or torch.get_num_threads()
        # Two sessions over one graph. While the network runs alone (the GUI, one image), idle worker threads may
        # spin: the lowest latency. In the batch engine, decoding and writing share the two cores with the network,
        # and spinning threads starve them: ``spinning = False`` (set by the engine) uses the session whose threads
        # sleep (batch of 100 at 768x576 on this project's 2-core machine: 11.3-11.8 images/s against 4.7-9.0).
        self.sessions = {spin: self._session(onnxruntime, graph, threads, spin=spin) for spin in (True, False)}
        self.spinning = True
        self.input_name = self.sessions[True].get_inputs()[0].name
        self.name = f"ONNX Runtime {onnxruntime.__version__}"

    @staticmethod
    def _session(onnxruntime, graph: bytes, threads: int, *, spin: bool):
        onnxruntime.disable_telemetry_events()  # see segmentation/__init__.py: nothing is collected or sent
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the clinician's business
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        session = self.sessions[self.spinning]
        logits, summary = session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return logits, summary


@contextlib.contextmanager
def sharing_the_cores(backend: Backend) -> Iterator[None]:
    """While other threads work beside the network (the batch engine), its idle threads sleep rather than spin."""
    if not hasattr(backend, "spinning"):
        yield
        return
    before, backend.spinning = backend.spinning, False
    try:
        yield
    finally:
        backend.spinning = before


def export_onnx_bytes(model: torch.nn.Module, input_size: tuple[int, int]) -> bytes:
    """The model and its stages' summary as an ONNX graph (opset 17, dynamic batch, outputs ``logits`` and
    ``summary``), exported without touching the caller's model."""
    model = SummarisedNetwork(copy.deepcopy(model).cpu().float().eval().to(memory_format=torch.contiguous_format))
    height, width = input_size
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter (it needs the onnx package, not onnxscript)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros(1, 3, height, width),
            buffer,
            input_names=["image"],
            output_names=["logits", "summary"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "summary": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def requested_backend(requested: str | None = None) -> str:
    """The explicit choice, else ``$LESIONLENS_BACKEND``, else ``auto``; an unknown name is an error."""
    name = (requested or os.environ.get(BACKEND_ENV) or "auto").lower()
    if name not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    return name


def build_backend(
    model: torch.nn.Module, device: torch.device, input_size: tuple[int, int], requested: str | None = None
) -> Backend:
    """The backend for ``requested`` (see :func:`requested_backend`); ``auto`` measures which is faster here."""
    choice = requested_backend(requested)
    if choice == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"the ONNX Runtime backend runs on the CPU only, not on {device.type}")
        if not onnxruntime_installed():
            raise RuntimeError("the ONNX Runtime backend was requested but onnxruntime is not installed")
        return OnnxRuntimeBackend(model, input_size)
    reference = TorchBackend(model, device)
    if choice == "torch" or device.type != "cpu" or not onnxruntime_installed():
        return reference
    try:
        candidate = OnnxRuntimeBackend(model, input_size)
    except Exception as error:  # an old onnxruntime, an export problem: PyTorch still works
        log.warning("ONNX Runtime unavailable (%s); using PyTorch", error)
        return reference
    return faster_of(reference, candidate, input_size)


def faster_of(reference: Backend, candidate: Backend, input_size: tuple[int, int]) -> Backend:
    """``candidate`` if its logits match ``reference`` on a fixed input and it is faster; else ``reference``."""
    probe = np.random.default_rng(0).standard_normal((1, 3, *input_size)).astype(np.float32)
    difference = float(np.abs(candidate.logits(probe) - reference.logits(probe)).max())
    if not difference <= AGREEMENT_TOLERANCE:
        log.warning(
            "%s disagrees with %s (max logit difference %.3g); using the latter",
            candidate.name,
            reference.name,
            difference,
        )
        return reference
    timings = {backend.name: seconds_per_call(backend, probe) for backend in (reference, candidate)}
    chosen = candidate if timings[candidate.name] < timings[reference.name] else reference
    log.info("backend %s chosen (%s)", chosen.name, ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in timings.items()))
    return chosen


def seconds_per_call(backend: Backend, batch: np.ndarray, runs: int = CALIBRATION_RUNS) -> float:
    """Best of ``runs`` timed calls (the minimum is the least disturbed by other work); call it warmed up."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        backend.logits(batch)
        best = min(best, time.perf_counter() - started)
    return best
