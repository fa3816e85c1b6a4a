"""What a model costs on one image: per-stage time, peak forward memory, parameters, FLOPs.

Timing is :func:`segdemo.inference.predict`'s own per-stage timing
(the numbers the Segment page shows): the first call on a freshly loaded model
("cold": one-off work such as oneDNN kernel selection or CUDA context set-up),
then ``warmup`` untimed calls, then ``repeats`` timed calls whose median is
reported per stage (and the median of the per-call totals).

Peak memory of the forward pass:

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``,
  minus what was allocated before the call (weights and input): the tensors the
  forward itself needs at its worst moment;
* CPU (Linux): the kernel's resident-set high-water mark. Free heap memory is
  handed back first (glibc ``malloc_trim``), the mark is reset by writing ``5``
  to ``/proc/self/clear_refs``, and ``VmHWM`` after the forward minus ``VmRSS``
  before it is reported. It counts every page the forward touched (activations,
  oneDNN scratch space), not only tensors; another thread allocating at the
  same time would be counted too. Elsewhere the figure is left out.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the
network input actually used (a multiply-add is 2 FLOPs; convolutions and
matrix products are counted, element-wise operations and interpolation are not).
"""

from __future__ import annotations

import ctypes
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from segdemo.inference.pipeline import predict, preprocess
from segdemo.models.registry import ModelEntry

STAGES = ("preprocess", "forward", "postprocess")
DEFAULT_WARMUP = 1
DEFAULT_REPEATS = 5
_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")

MEMORY_CUDA = "cuda_max_allocated"
MEMORY_RSS = "rss_high_water_mark"
MEMORY_NONE = "unavailable"


# ---------------------------------------------------------------- parameters and FLOPs


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts of ``model`` (trainable: ``requires_grad``)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` as ``FlopCounterMode`` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


# ---------------------------------------------------------------- peak memory


def _status_bytes(field_name: str) -> int:
    for line in _PROC_STATUS.read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field_name)


def rss_peak_supported() -> bool:
    """Whether the resident-set high-water mark can be reset and read here (Linux)."""
    try:
        _status_bytes("VmHWM")
        _CLEAR_REFS.write_text("5")
        return True
    except (OSError, KeyError):
        return False


def memory_method(device: str) -> str:
    """How :func:`peak_memory` measures on ``device`` (one of the ``MEMORY_*`` names)."""
    if torch.device(device).type == "cuda":
        return MEMORY_CUDA
    if torch.device(device).type == "cpu" and rss_peak_supported():
        return MEMORY_RSS
    return MEMORY_NONE


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn: Callable[[], Any], device: str) -> tuple[Any, int | None]:
    """Run ``fn()``; return its result and the peak memory it needed on ``device`` (bytes; None if unmeasurable)."""
    method = memory_method(device)
    if method == MEMORY_CUDA:
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        out = fn()
        torch.cuda.synchronize(dev)
        return out, int(torch.cuda.max_memory_allocated(dev) - before)
    if method == MEMORY_RSS:
        _trim_heap()
        _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
        before = _status_bytes("VmRSS")
        out = fn()
        return out, max(0, _status_bytes("VmHWM") - before)
    return fn(), None


class _PeakMemoryProbe(nn.Module):
    """Wraps a model so that its forward (only the forward) is measured by :func:`peak_memory`."""

    def __init__(self, model: nn.Module, device: str) -> None:
        super().__init__()
        self.model = model
        self.device = device
        self.peak_bytes: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out, self.peak_bytes = peak_memory(lambda: self.model(x), self.device)
        return out


# ---------------------------------------------------------------- the measurement


@dataclass
class Cost:
    """What one model costs on one image on one device (times in milliseconds)."""

    model: str
    device: str
    threads: int
    half: bool
    image_size: tuple[int, int]  # (height, width) of the image
    input_size: tuple[int, int]  # (height, width) fed to the network, padding excluded
    padded_size: tuple[int, int]  # (height, width) of the tensor the network ran on
    warmup: int
    repeats: int
    cold_ms: dict[str, float]
    warm_ms: dict[str, float]  # median per stage over the repeats
    cold_total_ms: float
    warm_total_ms: float  # median of the per-call totals
    peak_forward_bytes: int | None
    memory_method: str
    params_trainable: int
    params_total: int
    flops: int
    published_miou: float | None
    published_source: str
    random_weights: bool
    samples_ms: list[float] = field(default_factory=list)  # per-call totals of the repeats
    labels: np.ndarray | None = field(default=None, repr=False)  # the cold call's label map (not exported)

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict (with ``gflops``)."""
        d = asdict(self)
        d.pop("labels")
        d["gflops"] = self.gflops
        return d


def _ms(timings: dict[str, float]) -> dict[str, float]:
    return {k: timings[k] * 1000.0 for k in STAGES}


def measure_cost(load_model: Callable[[], nn.Module], entry: ModelEntry, rgb: np.ndarray,
                 inference_size: int | None, device: str = "cpu", half: bool = False,
                 warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS) -> Cost:
    """Measure ``entry`` on ``rgb`` (see the module docstring).

    ``load_model`` returns a freshly loaded model on ``device`` (its first call is
    the cold one). Runs ``1 + warmup + repeats + 1`` forward passes through
    :func:`~segdemo.inference.predict` (the last one measures memory)
    and one more under the FLOP counter.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    model = load_model()
    cold = predict(model, entry, rgb, inference_size, device, half)
    for _ in range(warmup):
        predict(model, entry, rgb, inference_size, device, half)
    runs = [predict(model, entry, rgb, inference_size, device, half).timings for _ in range(repeats)]
    probe = _PeakMemoryProbe(model, device)
    predict(probe, entry, rgb, inference_size, device, half)
    dtype = torch.float16 if half else torch.float32
    with torch.inference_mode():
        x, _ = preprocess(rgb, entry, inference_size, device, dtype)
    flops = count_flops(model, x)
    trainable, total = count_parameters(getattr(model, "net", model))
    totals = [sum(t[k] for k in STAGES) * 1000.0 for t in runs]
    return Cost(
        model=entry.name, device=device, threads=torch.get_num_threads(), half=half,
        image_size=(int(rgb.shape[0]), int(rgb.shape[1])), input_size=cold.input_size,
        padded_size=(int(x.shape[-2]), int(x.shape[-1])), warmup=warmup, repeats=repeats,
        cold_ms=_ms(cold.timings), warm_ms={k: statistics.median(t[k] for t in runs) * 1000.0 for k in STAGES},
        cold_total_ms=sum(cold.timings[k] for k in STAGES) * 1000.0, warm_total_ms=statistics.median(totals),
        peak_forward_bytes=probe.peak_bytes, memory_method=memory_method(device),
        params_trainable=trainable, params_total=total, flops=flops,
        published_miou=entry.metrics.get("miou"), published_source=entry.metrics_source,
        random_weights=bool(getattr(model, "random_weights", False)), samples_ms=totals, labels=cold.labels,
    )
