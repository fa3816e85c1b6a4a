"""Receptive fields, dilated (atrous) convolution and gridding.

Two independent ways to find the receptive field (RF) of a stack of layers:

* the lecture's recurrence, layer by layer (:func:`rf_table`)::

      k_eff = d * (k - 1) + 1            # a dilated kernel's extent
      r_out = r_in + (k_eff - 1) * j_in  # RF size, in input pixels
      j_out = j_in * s                   # jump: input pixels between outputs

* autograd on a real ``nn.Sequential`` of ``Conv2d`` with every weight set to
  one (:func:`exact_rf`): the input pixels whose gradient from one output pixel
  is non-zero are exactly the RF. Positive weights cannot cancel, so a zero
  gradient means "no path", which makes the holes of repeated equal dilations
  ("gridding") visible.

For a real segmentation network, :func:`structural_rf` applies the same idea to a
copy of the model whose weights are positive and whose non-linearities are
removed (its gradient support is the theoretical RF of that exact graph), and
:func:`effective_rf` is the gradient magnitude of a class score with respect to
the image with the real weights (Luo et al., 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    """One layer of a stack: a k x k convolution (or pooling window).

    ``branch_dilations`` makes the layer a set of parallel k x k branches with
    these dilation rates (DeepLab's ASPP; its 1 x 1 branch sees only the centre,
    which every other branch also sees). Pooling has the RF of its window.
    """

    name: str
    kernel: int
    stride: int = 1
    dilation: int = 1
    kind: str = field(default="conv", compare=False)  # "conv" | "pool" | "aspp": a label only
    branch_dilations: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.stride < 1 or self.dilation < 1:
            raise ValueError(f"{self.name}: kernel, stride and dilation must be >= 1")
        if any(d < 1 for d in self.branch_dilations):
            raise ValueError(f"{self.name}: dilation rates must be >= 1")
        if self.branch_dilations and self.stride != 1:
            raise ValueError(f"{self.name}: parallel branches need stride 1")

    @property
    def dilations(self) -> tuple[int, ...]:
        """The dilation of each parallel branch (one entry for a plain layer)."""
        return self.branch_dilations or (self.dilation,)

    @property
    def k_eff(self) -> int:
        """Extent of the (largest) dilated kernel: d * (k - 1) + 1."""
        return max(effective_kernel(self.kernel, d) for d in self.dilations)

    @property
    def padding(self) -> int:
        """The usual "same" padding: (k_eff - 1) // 2 (0 for 2 x 2 pooling)."""
        return (self.k_eff - 1) // 2

    def describe_dilation(self) -> str:
        return ",".join(str(d) for d in self.dilations)


def effective_kernel(kernel: int, dilation: int) -> int:
    """k_eff = d * (k - 1) + 1: the extent of a k-tap kernel with gaps of d - 1."""
    return dilation * (kernel - 1) + 1


@dataclass(frozen=True)
class RFRow:
    """The recurrence after one layer (sizes in input pixels)."""

    index: int
    name: str
    kernel: int
    stride: int
    dilation: str
    k_eff: int
    j_in: int
    r_in: int
    r_out: int
    j_out: int
    start_out: float  # centre of output pixel 0's RF, in input pixel coordinates


def rf_table(layers: Sequence[Layer]) -> list[RFRow]:
    """The lecture's recurrence, layer by layer, starting from r = 1, j = 1.

    ``start_out`` follows the "same" padding of each layer:
    start_out = start_in + ((k_eff - 1) / 2 - padding) * j_in.
    """
    rows: list[RFRow] = []
    r, j, start = 1, 1, 0.0
    for i, layer in enumerate(layers):
        k_eff = layer.k_eff
        r_out = r + (k_eff - 1) * j
        j_out = j * layer.stride
        start_out = start + ((k_eff - 1) / 2 - layer.padding) * j
        rows.append(RFRow(i + 1, layer.name, layer.kernel, layer.stride, layer.describe_dilation(),
                          k_eff, j, r, r_out, j_out, start_out))
        r, j, start = r_out, j_out, start_out
    return rows


def theoretical_rf(layers: Sequence[Layer]) -> tuple[int, int]:
    """(RF size r, total jump j) of the whole stack."""
    rows = rf_table(layers)
    return (rows[-1].r_out, rows[-1].j_out) if rows else (1, 1)


# ------------------------------------------------------------------ exact RF by autograd


class ParallelBranches(nn.Module):
    """Sum of parallel k x k convolutions with different dilations, centres aligned.

    Without padding a branch with a smaller extent gives a larger output; it is
    cropped symmetrically so that output pixel i of every branch is centred on
    the same input pixel (stride 1 only, as in ASPP).
    """

    def __init__(self, branches: Sequence[nn.Conv2d]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        h = min(o.shape[-2] for o in outs)
        w = min(o.shape[-1] for o in outs)
        total = torch.zeros_like(outs[0][..., :h, :w])
        for o in outs:
            cy, cx = (o.shape[-2] - h) // 2, (o.shape[-1] - w) // 2
            total = total + o[..., cy : cy + h, cx : cx + w]
        return total


def _ones_conv(kernel: int, stride: int, dilation: int, dtype: torch.dtype) -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, kernel, stride=stride, dilation=dilation, padding=0, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return conv.to(dtype)


def probe_network(layers: Sequence[Layer], dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A real ``nn.Sequential`` of single-channel ``Conv2d`` (no padding, weights = 1).

    Pooling becomes a convolution over its window: average pooling is exactly
    that (up to a constant), and max pooling can pick any pixel of its window.
    """
    modules: list[nn.Module] = []
    for layer in layers:
        if layer.branch_dilations:
            modules.append(ParallelBranches(
                [_ones_conv(layer.kernel, 1, d, dtype) for d in layer.branch_dilations]))
        else:
            modules.append(_ones_conv(layer.kernel, layer.stride, layer.dilation, dtype))
    return nn.Sequential(*modules)


@dataclass(frozen=True)
class ExactRF:
    """The autograd result for the middle output pixel of a (r + 2j)-sized input."""

    gradient: np.ndarray  # d out / d input: number of paths from each input pixel
    margin: int  # input pixels around the RF in the grid (= the total jump j)
    output_size: tuple[int, int]

    @property
    def mask(self) -> np.ndarray:
        return self.gradient != 0

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the non-zero gradient."""
        ys, xs = np.nonzero(self.mask)
        return int(ys.min()), int(xs.min()), int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)

    @property
    def holes(self) -> int:
        """Pixels inside the RF's bounding box that no path reaches (gridding)."""
        top, left, h, w = self.bbox
        return int((~self.mask[top : top + h, left : left + w]).sum())

    @property
    def coverage(self) -> float:
        """Fraction of the bounding box that is reached."""
        _, _, h, w = self.bbox
        return 1.0 - self.holes / float(h * w)


def exact_rf(layers: Sequence[Layer], max_size: int = 4096) -> ExactRF:
    """Which input pixels get a non-zero gradient from one output pixel.

    The input is (r + 2j) pixels wide, r and j from the recurrence, so three
    output pixels per axis exist; we back-propagate from the middle one, whose RF
    then sits j pixels from each edge. The size found is measured from the
    gradient, not assumed: tests compare it with the recurrence.
    """
    if not layers:
        return ExactRF(np.ones((1, 1)), 0, (1, 1))
    r, j = theoretical_rf(layers)
    size = r + 2 * j
    if size > max_size:
        raise ValueError(f"receptive field too large to draw ({size} > {max_size} pixels)")
    net = probe_network(layers)
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        y = net(x)
        oy, ox = y.shape[-2] // 2, y.shape[-1] // 2
        (grad,) = torch.autograd.grad(y[0, 0, oy, ox], x)
    return ExactRF(grad[0, 0].numpy().copy(), j, (int(y.shape[-2]), int(y.shape[-1])))


# ------------------------------------------------------------------ presets


def _convs(prefix: str, n: int, dilation: int = 1) -> list[Layer]:
    return [Layer(f"{prefix}_{i + 1}", 3, 1, dilation) for i in range(n)]


def vgg16() -> list[Layer]:
    """VGG16's 13 3x3 convolutions and 5 2x2/2 max-poolings (RF 212 after pool5)."""
    layers: list[Layer] = []
    for block, n in enumerate((2, 2, 3, 3, 3), start=1):
        layers += _convs(f"conv{block}", n)
        layers.append(Layer(f"pool{block}", 2, 2, kind="pool"))
    return layers


def resnet50(dilate_layer3: bool = False, dilate_layer4: bool = False) -> list[Layer]:
    """ResNet-50's longest path (torchvision v1.5: the stride sits in the 3x3 conv).

    With dilation the stride of a stage becomes 1 and its 3x3 convolutions get
    dilation 2 (layer3) or 2 then 4 (layer4); as in torchvision, the first block
    of a dilated stage keeps the previous dilation. The 1x1 shortcut branches see
    a subset of this path's field, so the chain has the network's RF.
    """
    layers = [Layer("conv1", 7, 2), Layer("maxpool", 3, 2, kind="pool")]
    dilation = 1
    for stage, blocks, dilate in ((1, 3, False), (2, 4, False), (3, 6, dilate_layer3),
                                  (4, 3, dilate_layer4)):
        stride = 1 if stage == 1 else 2
        previous = dilation
        if dilate:
            dilation *= stride
            stride = 1
        for b in range(blocks):
            d = previous if b == 0 else dilation
            layers += [
                Layer(f"layer{stage}.{b}.conv1", 1),
                Layer(f"layer{stage}.{b}.conv2", 3, stride if b == 0 else 1, d),
                Layer(f"layer{stage}.{b}.conv3", 1),
            ]
    return layers


def context_module(dilations: Sequence[int] = (1, 1, 2, 4, 8, 16, 1)) -> list[Layer]:
    """Yu & Koltun's basic context module: 3x3 convolutions with these dilations, then 1x1."""
    layers = [Layer(f"ctx{i + 1}", 3, 1, d) for i, d in enumerate(dilations)]
    return layers + [Layer(f"ctx{len(dilations) + 1}", 1)]


def aspp(rates: Sequence[int]) -> Layer:
    """DeepLab's ASPP: parallel 3x3 branches with these rates (the 1x1 branch is the centre)."""
    return Layer("aspp", 3, 1, kind="aspp", branch_dilations=tuple(rates))


PRESETS: dict[str, list[Layer]] = {
    "context_module": context_module(),
    "gridding_2_2_2": [Layer(f"conv{i + 1}", 3, 1, 2) for i in range(3)],
    "hdc_1_2_3": [Layer(f"conv{i + 1}", 3, 1, d) for i, d in enumerate((1, 2, 3))],
    "aspp_6_12_18": [aspp((6, 12, 18))],
    "aspp_12_24_36": [aspp((12, 24, 36))],
    "vgg16": vgg16(),
    "resnet50": resnet50(),
    "resnet50_os16": resnet50(dilate_layer4=True),
    "resnet50_os8": resnet50(dilate_layer3=True, dilate_layer4=True),
    "deeplabv3_os16": resnet50(dilate_layer4=True) + [aspp((6, 12, 18))],
    "deeplabv3_os8": resnet50(dilate_layer3=True, dilate_layer4=True) + [aspp((12, 24, 36))],
}
"""Named stacks for the layer editor (ASPP presets alone are in feature-map pixels)."""


# ------------------------------------------------------------------ the layer editor


MAX_KERNEL, MAX_STRIDE, MAX_DILATION = 15, 4, 64


def layers_from_rows(rows: Sequence[dict]) -> tuple[list[Layer], list[tuple[int, str]]]:
    """Parse the editor's rows (layer, kernel, stride, dilation, rates) into layers.

    Returns the valid layers and, for each rejected row, (row number, error key):
    ``labs.rf.err.number`` (kernel/stride/dilation not an integer in range),
    ``labs.rf.err.rates`` (rates not a comma-separated list of integers >= 1),
    ``labs.rf.err.rates_stride`` (parallel branches with stride != 1).
    Empty rows (no kernel) are skipped silently; an empty stride or dilation is 1.
    """
    layers: list[Layer] = []
    errors: list[tuple[int, str]] = []
    for i, row in enumerate(rows, start=1):
        kernel = row.get("kernel")
        if kernel is None or (isinstance(kernel, float) and math.isnan(kernel)):
            continue
        try:
            values = [_as_int(_or_default(row.get(name), default)) for name, default in
                      (("kernel", 1), ("stride", 1), ("dilation", 1))]
        except ValueError:
            errors.append((i, "labs.rf.err.number"))
            continue
        k, s, d = values
        if not (1 <= k <= MAX_KERNEL and 1 <= s <= MAX_STRIDE and 1 <= d <= MAX_DILATION):
            errors.append((i, "labs.rf.err.number"))
            continue
        text = str(row.get("rates") or "").strip()
        rates: tuple[int, ...] = ()
        if text and text.lower() not in ("nan", "none"):
            try:
                rates = tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
            except ValueError:
                errors.append((i, "labs.rf.err.rates"))
                continue
            if any(not 1 <= r <= MAX_DILATION for r in rates):
                errors.append((i, "labs.rf.err.rates"))
                continue
            if s != 1:
                errors.append((i, "labs.rf.err.rates_stride"))
                continue
        name = str(row.get("layer") or f"layer{i}")
        layers.append(Layer(name, k, s, d, "aspp" if rates else "conv", rates))
    return layers, errors


def _or_default(value: object, default: int) -> object:
    """An empty cell (None or NaN, as a new editor row has) takes the default."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _as_int(value: object) -> int:
    if value is None or isinstance(value, bool):
        raise ValueError("not an integer")
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number) or number != int(number):
        raise ValueError("not an integer")
    return int(number)


def layers_to_rows(layers: Sequence[Layer]) -> list[dict]:
    """The editor's rows for a stack (inverse of :func:`layers_from_rows`)."""
    return [{"layer": l.name, "kernel": l.kernel, "stride": l.stride, "dilation": l.dilation,
             "rates": ",".join(str(r) for r in l.branch_dilations)} for l in layers]
