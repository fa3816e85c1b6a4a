"""Fully connected layers as convolutions: why a fully convolutional network takes any size.

Two classifier heads, each converted into an equivalent convolution with the
same weights (Long et al., 2015, "convolutionalization"):

* VGG style -- ``Flatten`` then ``Linear(C*k*k, K)`` over a k x k feature map
  becomes ``Conv2d(C, K, kernel_size=k)``: the FC weight row of class K, reshaped
  to (C, k, k), is that class's filter;
* ResNet style -- global average pooling then ``Linear(C, K)`` becomes a 1 x 1
  ``Conv2d(C, K, 1)`` *before* the pooling (both are linear, so they commute).

and, the other way round, segdemo's own *trained* FCN-32s (CamVid): its head
fc6 (a k x k convolution over pool5) -> fc7 -> score_fr (1 x 1 convolutions) is
rewritten as ``Linear`` layers over the flattened k x k pool5 window
(:class:`FullyConnectedHead`). At the input size whose pool5 map is k x k the
FC head gives the conv head's scores; on a larger input the conv head returns
a coarse class-score map that means something, because the weights are trained.

At the training size both give one score vector, identical to the FC head; on
a larger input the convolution slides and returns a class-score map.

The 1 x 1 convolution itself is a per-pixel linear map H x W x N -> H x W x M:
``y[:, i, j] = W @ x[:, i, j] + b`` with N * M + M parameters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
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


# ------------------------------------------------------------------ trained FCN-32s head as FC layers
FCN_NAME = "fcn32s_camvid"
CAMVID_DEFAULT_CLASS = 3  # Road
POOL5_STRIDE = 32  # five 2x2 max poolings (ceil_mode) in segdemo's "same" geometry
_FCN_LOCK = threading.Lock()  # the cached network is shared by all sessions


def conv_to_linear(conv: nn.Conv2d) -> nn.Linear:
    """The ``Linear(C*kh*kw, K)`` computing ``conv`` on one C x kh x kw window (flattened c, y, x)."""
    if conv.groups != 1 or conv.dilation != (1, 1):
        raise ValueError("only ungrouped, undilated convolutions are fully connected layers")
    out_ch = conv.out_channels
    linear = nn.Linear(conv.weight[0].numel(), out_ch, bias=conv.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(out_ch, -1))
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear.to(conv.weight.dtype)


class FullyConnectedHead(nn.Module):
    """FCN's head ``fc6 -> ReLU -> fc7 -> ReLU -> score_fr`` as the classifier it came from.

    fc6 is ``Linear(C*k*k, F)`` over a flattened k x k pool5 window, fc7 and the
    score layer are ``Linear(F, F)`` and ``Linear(F, K)``; the weights are the
    trained convolutions' weights, reshaped. Dropout keeps the network's
    probability and, like the network in eval mode, does nothing.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.kernel = tuple(net.fc6.kernel_size)
        self.padding = tuple(net.fc6.padding)
        self.in_channels = net.fc6.in_channels
        self.fc6 = conv_to_linear(net.fc6)
        self.drop6 = nn.Dropout(net.drop6.p)
        self.fc7 = conv_to_linear(net.fc7)
        self.drop7 = nn.Dropout(net.drop7.p)
        self.score = conv_to_linear(net.score_fr)
        self.train(net.training)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """(N, K) class scores of (N, C, k, k) pool5 windows (or their (N, C*k*k) flattening)."""
        h = torch.relu(self.fc6(torch.flatten(window, 1)))
        h = torch.relu(self.fc7(self.drop6(h)))
        return self.score(self.drop7(h))

    def windows(self, pool5: torch.Tensor) -> torch.Tensor:
        """(N, K, h', w'): the FC head on every k x k window of pool5, zero-padded like fc6.

        ``F.unfold`` cuts the windows; no convolution is involved.
        """
        (kh, kw), (ph, pw) = self.kernel, self.padding
        padded = F.pad(pool5, (pw, pw, ph, ph))
        out_h, out_w = padded.shape[-2] - kh + 1, padded.shape[-1] - kw + 1
        cols = F.unfold(padded, (kh, kw))  # (N, C*kh*kw, h'*w'), columns in row-major order
        n, d, count = cols.shape
        scores = self.forward(cols.transpose(1, 2).reshape(n * count, d))
        return scores.reshape(n, count, -1).permute(0, 2, 1).reshape(n, -1, out_h, out_w)


def load_trained_fcn32s(dtype: torch.dtype = torch.float64) -> tuple[nn.Module, bool] | None:
    """segdemo's FCN-32s (CamVid) on the CPU in eval mode, and whether its weights are random.

    float64 by default: a 7x7x128 window sums 6272 products, and in float32 the
    conv and the matrix product round differently (about 1e-5 on scores near 20);
    in float64 what is left is ~1e-13 and the check shows the identity itself.
    BatchNorm uses its running statistics and dropout is off (eval mode).
    None when the weights file is missing and random weights are not allowed.
    """
    from segdemo.models import weights

    try:
        model = weights.load_model(FCN_NAME, device="cpu")
    except weights.WeightsMissingError:
        return None
    return model.net.to(dtype).eval(), model.random_weights


def fcn_window_input(net: nn.Module) -> tuple[int, int]:
    """The input (height, width) whose pool5 map is exactly fc6's k x k window."""
    kh, kw = net.fc6.kernel_size
    return kh * POOL5_STRIDE, kw * POOL5_STRIDE


def fcn_pool5_and_scores(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One real forward pass of the network: (pool5, coarse class scores ``score_fr``).

    pool5 is caught as it enters fc6, so both come from the same call of ``net.features``.
    """
    caught: list[torch.Tensor] = []
    with _FCN_LOCK, torch.inference_mode():
        handle = net.fc6.register_forward_pre_hook(lambda _m, args: caught.append(args[0].clone()))
        try:
            scores = net.features(x)["score_fr"]
        finally:
            handle.remove()
    return caught[0].contiguous(), scores.contiguous()


@dataclass(frozen=True)
class HeadCheck:
    """The trained FCN's conv head against its FC version on one input."""

    conv_scores: torch.Tensor  # (1, K, h', w') score_fr of the real network
    window_scores: torch.Tensor  # (1, K, h', w') the FC head on every (padded) pool5 window
    pool5_shape: tuple[int, int]
    map_diff: float  # max |window_scores - conv_scores|
    fc_scores: torch.Tensor | None  # (1, K) the FC head on the whole pool5 map when it is k x k
    centre: tuple[int, int] | None  # the conv map position whose window is the whole pool5 map
    centre_diff: float  # max |fc_scores - conv_scores[centre]|; NaN without fc_scores


def fcn_head_check(net: nn.Module, x: torch.Tensor) -> HeadCheck:
    """Run the real FCN-32s on ``x`` (1, 3, H, W) and its FC head on the same pool5."""
    pool5, conv = fcn_pool5_and_scores(net, x.to(net.fc6.weight.dtype))
    head = FullyConnectedHead(net).eval()
    with torch.inference_mode():
        windows = head.windows(pool5)
        fc = centre = None
        centre_diff = float("nan")
        if tuple(pool5.shape[-2:]) == head.kernel:
            fc = head(pool5)
            centre = head.padding
            centre_diff = float((fc - conv[:, :, centre[0], centre[1]]).abs().max())
    return HeadCheck(conv, windows, tuple(pool5.shape[-2:]), float((windows - conv).abs().max()), fc, centre,
                     centre_diff)


def class_heat(scores: torch.Tensor, cls: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the classes at each position of (1, K, h, w) scores: (P(cls) coarse, bilinear to size)."""
    probs = scores.float().softmax(1)[0, cls]
    big = F.interpolate(probs[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return probs, big


def centre_square(rgb):
    """The central square of an (H, W, 3) image (the window-size input is square, not squeezed)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top:top + side, left:left + side]


def street_images(limit: int = 12) -> list[Path]:
    """CamVid validation frames in the data directory (empty without it)."""
    from segdemo.data import datasets

    try:
        return [image for image, _ in datasets.camvid_files("val")[:limit]]
    except datasets.DatasetMissingError:
        return []
