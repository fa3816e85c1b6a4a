"""Depthwise-separable convolution (MobileNet, Xception, DeepLabV3+), counted and timed.

The lecture's parameter count for a layer with an H x W *kernel* (H, W are the
kernel's height and width, not the feature map's), C input channels and n
output channels (filters):

* standard convolution:        H * W * C * n
* depthwise-separable:         H * W * C      (depthwise: one H x W filter per channel)
                             +         C * n  (pointwise: a 1 x 1 convolution)

With biases add n (standard), C + n (separable). Multiply-accumulates for an
output map of F_h x F_w pixels are those counts (without bias) times F_h * F_w,
so the ratio separable / standard = 1 / n + 1 / (H * W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from segdemo.labs.rf_measure import measure_macs
from segdemo.models.builders import count_params


def standard_conv(c: int, n: int, kh: int, kw: int, bias: bool) -> nn.Conv2d:
    """``Conv2d(C, n, (H, W))`` with "same" padding (odd kernels)."""
    return nn.Conv2d(c, n, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)


def separable_conv(c: int, n: int, kh: int, kw: int, bias: bool) -> nn.Sequential:
    """Depthwise ``Conv2d(C, C, (H, W), groups=C)`` then pointwise ``Conv2d(C, n, 1)``."""
    return nn.Sequential(
        nn.Conv2d(c, c, (kh, kw), padding=(kh // 2, kw // 2), groups=c, bias=bias),
        nn.Conv2d(c, n, 1, bias=bias),
    )


@dataclass(frozen=True)
class SeparableReport:
    """Counts by the lecture's formula and measured on the real modules."""

    kernel_h: int
    kernel_w: int
    channels: int
    filters: int
    bias: bool
    map_h: int
    map_w: int
    standard_formula: int  # H*W*C*n (+ n)
    separable_formula: int  # H*W*C + C*n (+ C + n)
    standard_params: int  # measured
    depthwise_params: int
    pointwise_params: int
    separable_params: int
    standard_macs: int  # FlopCounterMode / 2
    separable_macs: int
    depthwise_macs: int
    pointwise_macs: int
    standard_macs_formula: int  # F_h*F_w*H*W*C*n
    separable_macs_formula: int  # F_h*F_w*(H*W*C + C*n)
    standard_ms: float | None = None  # measured median time per call
    separable_ms: float | None = None
    output_shape: tuple[int, ...] = ()

    @property
    def param_ratio(self) -> float:
        return self.separable_params / self.standard_params

    @property
    def mac_ratio(self) -> float:
        return self.separable_macs / self.standard_macs


def time_module(module: nn.Module, x: torch.Tensor, min_run_time: float = 0.2) -> float:
    """Median milliseconds per call by ``torch.utils.benchmark`` (syncs CUDA, 1 CPU thread)."""
    from torch.utils import benchmark  # imported here: it pulls in the C++ extension loader

    with torch.no_grad():
        module(x)  # warm-up (cuDNN/oneDNN pick their algorithm here)
        timer = benchmark.Timer(stmt="module(x)", globals={"module": module, "x": x})
        return float(timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)


def separable_report(kh: int, kw: int, c: int, n: int, map_h: int, map_w: int, bias: bool = False,
                     measure_time: bool = False, device: str = "cpu",
                     min_run_time: float = 0.2) -> SeparableReport:
    """Build both real layers, count parameters and MACs, and optionally time them."""
    std = standard_conv(c, n, kh, kw, bias).to(device).eval()
    sep = separable_conv(c, n, kh, kw, bias).to(device).eval()
    x = torch.randn(1, c, map_h, map_w, device=device)
    with torch.no_grad():
        shape = tuple(std(x).shape)
        x_mid = sep[0](x)
        if tuple(sep(x).shape) != shape:
            raise AssertionError("both layers must give the same output shape")
    extra_std, extra_sep = (n, c + n) if bias else (0, 0)
    report = SeparableReport(
        kernel_h=kh, kernel_w=kw, channels=c, filters=n, bias=bias, map_h=map_h, map_w=map_w,
        standard_formula=kh * kw * c * n + extra_std,
        separable_formula=kh * kw * c + c * n + extra_sep,
        standard_params=count_params(std),
        depthwise_params=count_params(sep[0]),
        pointwise_params=count_params(sep[1]),
        separable_params=count_params(sep),
        standard_macs=measure_macs(std, x),
        separable_macs=measure_macs(sep, x),
        depthwise_macs=measure_macs(sep[0], x),
        pointwise_macs=measure_macs(sep[1], x_mid),
        standard_macs_formula=shape[-2] * shape[-1] * kh * kw * c * n,
        separable_macs_formula=shape[-2] * shape[-1] * (kh * kw * c + c * n),
        output_shape=shape,
    )
    if measure_time:
        report = SeparableReport(**{**report.__dict__,
                                    "standard_ms": time_module(std, x, min_run_time),
                                    "separable_ms": time_module(sep, x, min_run_time)})
    return report
