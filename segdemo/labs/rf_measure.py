"""Receptive fields measured on a real network: autograd's answer to "which input pixels
reach this output pixel" (structural and effective), the cost of dilation (MACs),
and where ASPP's taps land. The theory (the layer recurrence) is
:mod:`segdemo.labs.receptive_field`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segdemo.labs.receptive_field import effective_kernel


# ------------------------------------------------------------------ dilated vs standard


@dataclass(frozen=True)
class ConvCost:
    """A convolution's counts, measured on the real ``nn.Conv2d``."""

    label: str
    kernel: int
    dilation: int
    k_eff: int
    params: int  # sum(p.numel()) of the module
    macs: int  # multiply-accumulates, from torch's FlopCounterMode (flops / 2)
    formula_params: int  # k*k*C_in*C_out (+ C_out)
    formula_macs: int  # H_out*W_out*k*k*C_in*C_out


def measure_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of ``module(x)`` counted by PyTorch (flops / 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops()) // 2


def conv_cost(label: str, c_in: int, c_out: int, kernel: int, dilation: int, size: int,
              bias: bool = True) -> ConvCost:
    """Build the real ``Conv2d`` ("same" padding) and count its parameters and MACs."""
    k_eff = effective_kernel(kernel, dilation)
    conv = nn.Conv2d(c_in, c_out, kernel, dilation=dilation, padding=(k_eff - 1) // 2, bias=bias)
    x = torch.zeros(1, c_in, size, size)
    with torch.no_grad():
        out_h, out_w = conv(x).shape[-2:]
    return ConvCost(
        label=label,
        kernel=kernel,
        dilation=dilation,
        k_eff=k_eff,
        params=sum(p.numel() for p in conv.parameters()),
        macs=measure_macs(conv, x),
        formula_params=kernel * kernel * c_in * c_out + (c_out if bias else 0),
        formula_macs=int(out_h * out_w) * kernel * kernel * c_in * c_out,
    )


def dilated_vs_standard(c_in: int, c_out: int, kernel: int, dilation: int, size: int,
                        bias: bool = True) -> list[ConvCost]:
    """A standard k x k conv, the same conv dilated, and a dense conv as wide as the dilated one."""
    k_eff = effective_kernel(kernel, dilation)
    return [
        conv_cost("standard", c_in, c_out, kernel, 1, size, bias),
        conv_cost("dilated", c_in, c_out, kernel, dilation, size, bias),
        conv_cost("dense_same_field", c_in, c_out, k_eff, 1, size, bias),
    ]


# ------------------------------------------------------------------ real models


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish,
                nn.Tanh, nn.Mish, nn.Dropout, nn.Dropout2d)
_GATES = (nn.Sigmoid, nn.Hardsigmoid)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d,
          nn.SyncBatchNorm)


def _linearise_(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, _ACTIVATIONS) or isinstance(child, _NORMS):
            # Non-linearities and normalisation only rescale (or zero) paths;
            # normalisation over the whole map would even make the field global.
            setattr(module, name, nn.Identity())
        elif isinstance(child, _GATES):
            # Gates multiply features (squeeze-and-excitation, LR-ASPP): a sigmoid
            # keeps them bounded (no squaring blow-up) with a gradient that is
            # never exactly zero, unlike hardsigmoid's flat parts.
            setattr(module, name, nn.Sigmoid())
        elif isinstance(child, nn.MaxPool2d):
            # Max pooling can route the gradient through any pixel of its window.
            setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                               ceil_mode=child.ceil_mode))
        elif isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            with torch.no_grad():
                fan_in = child.weight[0].numel()
                child.weight.fill_(1.0 / fan_in)  # keeps activations near 1: no underflow
                if child.bias is not None:
                    child.bias.zero_()
        else:
            _linearise_(child)


def linearised_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with positive weights and no activations or normalisation.

    Gates (sigmoid, hardsigmoid) become sigmoids so multiplicative attention stays bounded.

    Its gradient support from one output pixel is the set of input pixels that
    are connected to that output through the graph: the theoretical RF of that
    exact architecture (padding, strides, dilations, branches included).
    """
    clone = copy.deepcopy(model).float().eval()
    _linearise_(clone)
    return clone


def _logits(output: object) -> torch.Tensor:
    if isinstance(output, dict):  # torchvision segmentation models
        output = output["out"]
    if not isinstance(output, torch.Tensor):
        raise TypeError("the model must return a logits tensor or torchvision's {'out': ...}")
    return output


def output_position(yx: tuple[int, int], input_hw: tuple[int, int],
                    output_hw: tuple[int, int]) -> tuple[int, int]:
    """The output pixel that covers input pixel ``yx`` (outputs may be coarser)."""
    (y, x), (h, w), (oh, ow) = yx, input_hw, output_hw
    return min(oh - 1, y * oh // h), min(ow - 1, x * ow // w)


def gradient_of_output_pixel(model: nn.Module, x: torch.Tensor, yx: tuple[int, int],
                             class_index: int) -> torch.Tensor:
    """d logits[class, y, x] / d input, summed as |.| over input channels -> (H, W)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = _logits(model(x))
        oy, ox = output_position(yx, tuple(x.shape[-2:]), tuple(logits.shape[-2:]))
        # autograd.grad, not backward(): nothing accumulates in the (shared,
        # cached) model's parameters and no weight gradient is computed.
        (grad,) = torch.autograd.grad(logits[0, class_index, oy, ox], x)
    return grad[0].abs().sum(0).detach().float().cpu()


def structural_rf(model: nn.Module, input_shape: tuple[int, int, int], yx: tuple[int, int],
                  device: str = "cpu") -> np.ndarray:
    """Boolean (H, W): the input pixels connected to output pixel ``yx`` (theoretical RF)."""
    probe = linearised_copy(model).to(device)
    x = torch.ones(1, *input_shape, device=device)
    grad = gradient_of_output_pixel(probe, x, yx, 0)
    return (grad > 0).numpy()


def effective_rf(model: nn.Module, x: torch.Tensor, yx: tuple[int, int],
                 class_index: int) -> np.ndarray:
    """|d score_class(y, x) / d image| with the real weights, normalised to max 1."""
    model = model.eval()
    grad = gradient_of_output_pixel(model, x, yx, class_index).numpy()
    peak = float(grad.max())
    return grad / peak if peak > 0 else grad


def has_global_pooling(model: nn.Module) -> bool:
    """Whether ``model`` pools a whole feature map to 1 x 1 somewhere (ASPP's image pooling,
    squeeze-and-excitation, LR-ASPP's gate): such a branch connects every input pixel to every output.
    """
    for module in model.modules():
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            size = module.output_size
            sizes = size if isinstance(size, tuple) else (size, size)
            if all(s == 1 for s in sizes):
                return True
    return False


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) of the True pixels, or None when there are none."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def mass_radius(erf: np.ndarray, yx: tuple[int, int], fraction: float = 0.9) -> float:
    """Radius (pixels, Chebyshev) around ``yx`` holding ``fraction`` of the gradient mass."""
    total = float(erf.sum())
    if total <= 0:
        return 0.0
    h, w = erf.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.maximum(np.abs(yy - yx[0]), np.abs(xx - yx[1])).ravel()
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(erf.ravel()[order])
    idx = int(np.searchsorted(cum, fraction * total))
    return float(dist[order][min(idx, dist.size - 1)])


# ------------------------------------------------------------------ ASPP taps


DEEPLABV3_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


def find_aspp_rates(model: nn.Module) -> tuple[int, ...]:
    """Dilation rates of the ASPP branches inside ``model`` (empty if it has none)."""
    rates: set[int] = set()
    for name, module in model.named_modules():
        # torchvision's and segdemo's ASPP classes, or a submodule called "aspp";
        # not LR-ASPP, which has no atrous branches (its backbone's are not ASPP's).
        if type(module).__name__.upper() == "ASPP" or name.rsplit(".", 1)[-1].lower() == "aspp":
            for sub in module.modules():
                if isinstance(sub, nn.Conv2d) and sub.dilation[0] > 1:
                    rates.add(int(sub.dilation[0]))
    return tuple(sorted(rates))


@dataclass(frozen=True)
class Tap:
    """One sampling position of a 3x3 atrous kernel, in image pixels."""

    rate: int
    y: float
    x: float
    inside: bool  # False: it falls on the zero padding of the feature map


def aspp_taps(yx: tuple[int, int], image_hw: tuple[int, int], output_stride: int,
              rates: Sequence[int], kernel: int = 3) -> list[Tap]:
    """Where each ASPP branch samples the feature map, drawn in image coordinates.

    The clicked pixel lies in feature pixel (y // OS, x // OS); a branch with rate
    r reads feature pixels r apart, i.e. r * OS image pixels apart. A feature
    pixel's centre is taken at (f + 0.5) * OS - 0.5 in image pixels.
    """
    h, w = image_hw
    fh, fw = math.ceil(h / output_stride), math.ceil(w / output_stride)
    fy, fx = yx[0] // output_stride, yx[1] // output_stride
    half = kernel // 2
    taps = []
    for rate in rates:
        for dy in range(-half, half + 1):
            for dx in range(-half, half + 1):
                ty, tx = fy + dy * rate, fx + dx * rate
                inside = 0 <= ty < fh and 0 <= tx < fw
                taps.append(Tap(int(rate), (ty + 0.5) * output_stride - 0.5,
                                (tx + 0.5) * output_stride - 0.5, inside))
    return taps


def measured_fields(model: nn.Module, x: torch.Tensor, hw: tuple[int, int], yx: tuple[int, int], cls: int,
                    device: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Effective and structural receptive field of output pixel ``yx`` (class ``cls``), cropped
    to the unpadded input ``hw``, and the seconds both took (what the page reports)."""
    start = time.perf_counter()
    erf = effective_rf(model, x, yx, cls)
    support = structural_rf(model, tuple(x.shape[1:]), yx, device)
    h, w = hw
    return erf[:h, :w], support[:h, :w], time.perf_counter() - start
