"""Upsampling a coarse class-score map back to image size, and transposed-conv artefacts.

Methods compared on the same scores (C, h, w) -> (C, h*f, w*f):

* ``nearest``, ``bilinear``, ``bicubic``: ``F.interpolate``;
* ``transposed_bilinear``: ``nn.ConvTranspose2d`` (kernel 2f - f % 2, stride f)
  initialised with FCN's bilinear filter, one class to itself -- the "deconvolution"
  layer FCN starts from before learning;
* ``transposed_random``: the same layer with random weights (what training starts
  from without that initialisation; classes mix);
* ``unpool``: SegNet's max-unpooling, ``F.max_unpool2d`` with the indices recorded
  by a max-pooling: each score goes back to the position that won its window, the
  rest stays 0 (SegNet's next convolutions fill it in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("nearest", "bilinear", "bicubic", "transposed_bilinear", "transposed_random", "unpool")


def bilinear_filter(kernel: int) -> torch.Tensor:
    """FCN's ``get_upsampling_weight`` kernel (kernel x kernel), the tent function."""
    factor = (kernel + 1) // 2
    centre = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = torch.arange(kernel, dtype=torch.float64)
    tent = 1 - (og - centre).abs() / factor
    return torch.outer(tent, tent)


def transposed_upsampler(channels: int, factor: int, init: str = "bilinear",
                         seed: int = 0) -> nn.ConvTranspose2d:
    """``ConvTranspose2d(C, C, 2f - f % 2, stride f, padding f // 2)``: h -> h * f.

    ``init="bilinear"`` puts the bilinear filter on the diagonal (class c -> class c);
    ``init="random"`` uses PyTorch's default initialisation with a fixed seed.
    """
    kernel = 2 * factor - factor % 2
    padding = factor // 2  # output (h - 1) f - 2 (f // 2) + k = h f, for even and odd f
    layer = nn.ConvTranspose2d(channels, channels, kernel, stride=factor, padding=padding, bias=False)
    with torch.no_grad():
        if init == "bilinear":
            layer.weight.zero_()
            filt = bilinear_filter(kernel).to(layer.weight.dtype)
            for c in range(channels):
                layer.weight[c, c] = filt
        elif init == "random":
            gen = torch.Generator().manual_seed(seed)
            bound = 1.0 / np.sqrt(channels * kernel * kernel / factor**2)
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1) * bound)
        else:
            raise ValueError(f"unknown init {init!r}")
    return layer


def pooling_indices(guide: torch.Tensor, factor: int) -> torch.Tensor:
    """Indices of ``F.max_pool2d(guide, factor, factor)``: where each window's maximum is."""
    _, indices = F.max_pool2d(guide, factor, factor, return_indices=True)
    return indices


def unpool(scores: torch.Tensor, indices: torch.Tensor, factor: int) -> torch.Tensor:
    """``F.max_unpool2d`` of (1, C, h, w) scores with (1, 1 or C, h, w) indices."""
    n, c, h, w = scores.shape
    indices = indices.expand(n, c, h, w).contiguous()
    return F.max_unpool2d(scores, indices, factor, factor, output_size=(h * factor, w * factor))


@dataclass(frozen=True)
class Upsampled:
    """One method's result on the (C, h*f, w*f) grid."""

    method: str
    scores: torch.Tensor  # (C, H, W)
    labels: np.ndarray  # argmax, (H, W) int
    filled: np.ndarray  # bool (H, W): False where the method leaves no value (unpooling)


def upsample_scores(scores: torch.Tensor, factor: int, guide: torch.Tensor | None = None,
                    methods: tuple[str, ...] = METHODS, seed: int = 0) -> dict[str, Upsampled]:
    """Upsample (C, h, w) class scores by ``factor`` with each method.

    ``guide`` is the (1, 1, h*f, w*f) map whose max-pooling indices the unpooling
    uses (here the image's brightness, standing in for SegNet's encoder feature map);
    without it, unpooling is skipped.
    """
    x = scores.detach().float().unsqueeze(0)
    c, h, w = scores.shape
    size = (h * factor, w * factor)
    out: dict[str, Upsampled] = {}
    for method in methods:
        filled = np.ones(size, dtype=bool)
        with torch.no_grad():
            if method in ("nearest", "bilinear", "bicubic"):
                kwargs = {} if method == "nearest" else {"align_corners": False}
                y = F.interpolate(x, size=size, mode=method, **kwargs)
            elif method == "transposed_bilinear":
                y = transposed_upsampler(c, factor, "bilinear")(x)
            elif method == "transposed_random":
                y = transposed_upsampler(c, factor, "random", seed)(x)
            elif method == "unpool":
                if guide is None:
                    continue
                idx = pooling_indices(guide.float(), factor)
                y = unpool(x, idx, factor)
                filled = np.zeros(size, dtype=bool)
                filled.reshape(-1)[idx.reshape(-1).numpy()] = True
            else:
                raise ValueError(f"unknown method {method!r}")
        y = y[0]
        labels = y.argmax(0).numpy()
        out[method] = Upsampled(method, y, labels, filled)
    return out


def agreement(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """Fraction of pixels (optionally only ``where``) on which two label maps agree."""
    eq = a == b
    if where is not None:
        eq = eq[where]
    return float(eq.mean()) if eq.size else 0.0


# ------------------------------------------------------------------ checkerboard


def transposed_pattern(kernel: int, stride: int, size: int = 8, weights: str = "ones",
                       seed: int = 0) -> np.ndarray:
    """Output of a real ``ConvTranspose2d(1, 1, kernel, stride)`` on a constant input.

    With weights of one, each output value counts the kernel windows that
    overlap there: uneven overlap (kernel not divisible by stride) is the
    checkerboard of Odena et al. (2016).
    """
    layer = nn.ConvTranspose2d(1, 1, kernel, stride=stride, bias=False).double()
    _set_weights(layer, weights, seed)
    with torch.no_grad():
        return layer(torch.ones(1, 1, size, size, dtype=torch.float64))[0, 0].numpy()


def resize_conv_pattern(kernel: int, stride: int, size: int = 8, weights: str = "ones",
                        seed: int = 0) -> np.ndarray:
    """The remedy: nearest-neighbour resize by ``stride``, then a k x k ``Conv2d`` (no padding)."""
    conv = nn.Conv2d(1, 1, kernel, bias=False).double()
    _set_weights(conv, weights, seed)
    x = F.interpolate(torch.ones(1, 1, size, size, dtype=torch.float64), scale_factor=stride,
                      mode="nearest")
    with torch.no_grad():
        return conv(x)[0, 0].numpy()


def _set_weights(layer: nn.Module, weights: str, seed: int) -> None:
    with torch.no_grad():
        if weights == "ones":
            layer.weight.fill_(1.0)
        elif weights == "random":
            gen = torch.Generator().manual_seed(seed)
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen, dtype=torch.float64))
        else:
            raise ValueError(f"unknown weights {weights!r}")


CHECKER_INPUT_SIDE = 4  # small enough that each output value is readable in a third of the page


def checker_patterns(weights: str = "ones") -> dict[str, np.ndarray]:
    """The page's three layers on a constant CHECKER_INPUT_SIDE² input: k=3 s=2 and k=4 s=2
    transposed convolutions, and the remedy (resize, then k=3 convolution)."""
    n = CHECKER_INPUT_SIDE
    return {"k3s2": transposed_pattern(3, 2, n, weights), "k4s2": transposed_pattern(4, 2, n, weights),
            "resize_conv": resize_conv_pattern(3, 2, n, weights)}


def interior(pattern: np.ndarray, margin: int) -> np.ndarray:
    """The pattern without ``margin`` pixels at each border (where fewer windows reach)."""
    return pattern[margin:-margin, margin:-margin] if margin > 0 else pattern


def is_uniform(values: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether all values are equal (no checkerboard)."""
    return bool(np.ptp(values) <= tol * max(1.0, float(np.abs(values).max())))


# ------------------------------------------------------------------ a real model's coarse scores


def coarse_class_scores(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The model's class scores *before* its final upsampling, and how they were found.

    * segdemo's own networks expose ``coarse_scores``;
    * torchvision's FCN/DeepLabV3 run ``classifier(backbone(x)["out"])`` and
      LR-ASPP ``classifier(backbone(x))`` before ``F.interpolate`` in forward;
    * a network that predicts at full resolution (U-Net) has no coarse map: its
      scores are average-pooled by 8 (``"pooled"``) so the methods can be compared.
    """
    net = getattr(model, "net", model)
    with torch.no_grad():
        if hasattr(net, "coarse_scores"):
            return net.coarse_scores(x), "coarse_scores"
        from torchvision.models.segmentation.lraspp import LRASPP

        if isinstance(net, LRASPP):
            return net.classifier(net.backbone(x)), "lraspp"
        if hasattr(net, "backbone") and hasattr(net, "classifier"):
            return net.classifier(net.backbone(x)["out"]), "backbone_classifier"
        out = model(x)
        if isinstance(out, dict):
            out = out["out"]
        if out.shape[-2:] != x.shape[-2:]:
            return out, "output"
        return F.avg_pool2d(out, 8, 8, ceil_mode=True), "pooled"
