"""Fully connected layers as convolutions: why a fully convolutional network takes any size.

Two classifier heads, each converted into an equivalent convolution with the
same weights (Long et al., 2015, "convolutionalization"):

* VGG style -- ``Flatten`` then ``Linear(C*k*k, K)`` over a k x k feature map
  becomes ``Conv2d(C, K, kernel_size=k)``: the FC weight row of class K, reshaped
  to (C, k, k), is that class's filter;
* ResNet style -- global average pooling then ``Linear(C, K)`` becomes a 1 x 1
  ``Conv2d(C, K, 1)`` *before* the pooling (both are linear, so they commute).

At the training size both give one score vector, identical to the FC head; on
a larger input the convolution slides and returns a class-score map.

The 1 x 1 convolution itself is a per-pixel linear map H x W x N -> H x W x M:
``y[:, i, j] = W @ x[:, i, j] + b`` with N * M + M parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class TinyVGG(nn.Module):
    """A small VGG-like classifier: three conv-ReLU-maxpool blocks, then one FC layer.

    ``train_size`` 32 gives a 4 x 4 feature map, which the FC layer flattens.
    """

    def __init__(self, num_classes: int = 10, width: int = 16, train_size: int = 32):
        super().__init__()
        chans = (3, width, 2 * width, 2 * width)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        self.feature_channels = chans[-1]
        self.feature_size = train_size // 8
        self.train_size = train_size
        self.classifier = nn.Linear(self.feature_channels * self.feature_size**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def linear_to_conv(linear: nn.Linear, in_channels: int, kernel: int) -> nn.Conv2d:
    """The ``Conv2d(in_channels, K, kernel)`` computing ``linear`` on a kernel x kernel map.

    ``Flatten`` orders features channel-major (c, y, x), the same order as a
    conv weight (K, C, k, k), so the weight is a reshape, not a permutation.
    """
    out_features, in_features = linear.weight.shape
    if in_features != in_channels * kernel * kernel:
        raise ValueError(f"Linear takes {in_features} inputs, not {in_channels}x{kernel}x{kernel}")
    conv = nn.Conv2d(in_channels, out_features, kernel, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(out_features, in_channels, kernel, kernel))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv.to(linear.weight.dtype)


class ConvolutionalVGG(nn.Module):
    """``TinyVGG`` with its FC layer replaced by the equivalent k x k convolution."""

    def __init__(self, model: TinyVGG):
        super().__init__()
        self.features = model.features
        self.classifier = linear_to_conv(model.classifier, model.feature_channels, model.feature_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, h', w') class scores; 1 x 1 at the training size."""
        return self.classifier(self.features(x))


class ConvolutionalResNet(nn.Module):
    """A torchvision ResNet whose ``avgpool -> fc`` became ``1x1 conv`` (map) then mean."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        self.body = nn.Sequential(*list(resnet.children())[:-2])  # up to layer4
        fc: nn.Linear = resnet.fc
        self.classifier = linear_to_conv(fc, fc.in_features, 1)

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, h', w') class scores, one vector per feature-map position."""
        return self.classifier(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K): the mean of the score map, equal to the FC head's output."""
        return self.score_map(x).mean(dim=(2, 3))


def tiny_vgg(seed: int = 0, num_classes: int = 10) -> TinyVGG:
    """A ``TinyVGG`` with reproducible random weights."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return TinyVGG(num_classes).eval()
    finally:
        torch.random.set_rng_state(gen_state)


@dataclass(frozen=True)
class Equivalence:
    """FC head vs its convolution on the same input."""

    fc_scores: torch.Tensor | None  # (N, K); None when the FC head rejects the input size
    conv_scores: torch.Tensor  # (N, K, h', w')
    max_abs_diff: float  # NaN unless both give one score vector
    fc_error: str | None = None  # PyTorch's message when the FC head fails


def compare_vgg(model: TinyVGG, x: torch.Tensor) -> Equivalence:
    """Run the FC model and the convolutional one on ``x``.

    At the training size both give one score vector; on any other size the FC
    layer raises (its input length is fixed) and the convolution gives a map.
    """
    conv_model = ConvolutionalVGG(model).eval()
    fc: torch.Tensor | None = None
    error: str | None = None
    with torch.no_grad():
        conv = conv_model(x)
        try:
            fc = model(x)
        except RuntimeError as exc:  # "mat1 and mat2 shapes cannot be multiplied"
            error = str(exc).splitlines()[0]
    diff = float("nan")
    if fc is not None and conv.shape[-2:] == (1, 1):
        diff = float((fc - conv.flatten(1)).abs().max())
    return Equivalence(fc, conv, diff, error)


def compare_resnet(resnet: nn.Module, x: torch.Tensor) -> Equivalence:
    """Run the torchvision ResNet (avgpool + fc) and its 1x1-conv version on ``x``."""
    conv_model = ConvolutionalResNet(resnet).eval()
    resnet = resnet.eval()
    with torch.no_grad():
        fc = resnet(x)
        score_map = conv_model.score_map(x)
    diff = float((fc - score_map.mean(dim=(2, 3))).abs().max())
    return Equivalence(fc, score_map, diff)


# ------------------------------------------------------------------ 1x1 convolution


@dataclass(frozen=True)
class PointwiseCheck:
    """A 1 x 1 conv against the per-pixel matrix product with the same weights."""

    params: int  # sum(p.numel()) of the Conv2d
    formula_params: int  # N * M (+ M)
    conv_out: torch.Tensor  # (1, M, H, W)
    matmul_out: torch.Tensor  # (1, M, H, W)
    max_abs_diff: float


def pointwise_as_matmul(n_in: int, m_out: int, height: int, width: int, bias: bool = True,
                        seed: int = 0) -> PointwiseCheck:
    """Build ``Conv2d(N, M, 1)`` and compare it with ``einsum('mn,bnhw->bmhw')`` + bias."""
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(n_in, m_out, 1, bias=bias)
    x = torch.randn(1, n_in, height, width, generator=gen)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        if bias:
            conv.bias.copy_(torch.randn(m_out, generator=gen))
        y_conv = conv(x)
        w = conv.weight[:, :, 0, 0]
        y_mm = torch.einsum("mn,bnhw->bmhw", w, x)
        if bias:
            y_mm = y_mm + conv.bias.view(1, -1, 1, 1)
    return PointwiseCheck(
        params=sum(p.numel() for p in conv.parameters()),
        formula_params=n_in * m_out + (m_out if bias else 0),
        conv_out=y_conv,
        matmul_out=y_mm,
        max_abs_diff=float((y_conv - y_mm).abs().max()),
    )


def resnet18_classifier(seed: int = 0) -> tuple[nn.Module, bool, list[str]]:
    """torchvision's ResNet-18 with ImageNet weights if they are in the torch cache.

    Returns (model, has_real_weights, category names). Without the cached file the
    weights are random (seeded): the equivalence still holds exactly, but the
    scores mean nothing. Nothing is downloaded.
    """
    from pathlib import Path

    from torchvision.models import ResNet18_Weights, resnet18

    from segdemo import config

    weights = ResNet18_Weights.IMAGENET1K_V1
    filename = weights.url.rsplit("/", 1)[-1]
    categories = list(weights.meta["categories"])
    for folder in (config.weights_dir(), config.torch_hub_checkpoints_dir()):
        path = Path(folder) / filename
        if path.is_file():
            model = resnet18(weights=None)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), True, categories
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = resnet18(weights=None)
    finally:
        torch.random.set_rng_state(state)
    return model.eval(), False, categories
