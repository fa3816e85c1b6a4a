"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), read next to Figure 1.

Contracting path: at each level two 3x3 convolutions + ReLU, then a 2x2 max pool
(stride 2) that halves the size; the channels double at every level
(64, 128, 256, 512, 1024 in the paper). Expanding path: a 2x2 up-convolution
halving the channels, concatenation with the contracting path's feature map
of the same level (the skip, cropped in the unpadded variant), two 3x3
convolutions; finally a 1x1 convolution to the class scores.

``padding="valid"`` is the paper's: convolutions are unpadded, each one loses a
one-pixel border, so the output is smaller than the input (572 -> 388) and
the skips are centre-cropped. ``padding="same"`` pads the convolutions so the
output has the input's size; the input must then be divisible by ``2**depth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Padding = Literal["valid", "same"]


class UNetSizeError(ValueError):
    """The input size does not fit the network; the message says how to fix it.

    ``key`` / ``values`` are the catalogue message a page shows (in the user's language).
    """

    def __init__(self, message: str, suggestion: tuple[int, int] | None = None,
                 size: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion
        if size is not None and suggestion is not None:
            self.key = "unet.size_error.any"
            self.values = {"height": size[0], "width": size[1], "fix_h": suggestion[0], "fix_w": suggestion[1]}


def valid_output_size(n: int, depth: int) -> int | None:
    """Output length of an unpadded U-Net for input length ``n``; None if ``n`` does not fit.

    Going down, each level's two convolutions take 4 pixels and the pool needs an
    even length; going up, the up-convolution doubles and two convolutions take 4.
    """
    for _ in range(depth):
        n -= 4
        if n <= 0 or n % 2:
            return None
        n //= 2
    n -= 4  # bottleneck
    if n <= 0:
        return None
    for _ in range(depth):
        n = 2 * n - 4
    return n if n > 0 else None


def nearest_valid_size(n: int, depth: int, padding: Padding) -> int:
    """The smallest input length >= ``n`` that the network accepts."""
    if padding == "same":
        m = 2**depth
        return -(-n // m) * m
    k = max(n, 1)
    while valid_output_size(k, depth) is None:
        k += 1
    return k


def valid_margin(depth: int) -> int:
    """Pixels lost on each side by an unpadded U-Net (92 for depth 4: 572 -> 388)."""
    n = nearest_valid_size(200, depth, "valid")
    out = valid_output_size(n, depth)
    assert out is not None
    return (n - out) // 2


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre ``height`` x ``width`` of ``x`` (the paper's cropped skip connection)."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by (BatchNorm and) ReLU."""

    def __init__(self, in_ch: int, out_ch: int, padding: Padding, batch_norm: bool) -> None:
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=pad, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


@dataclass(frozen=True)
class LevelShape:
    """Shape of one named tensor inside the U-Net."""

    name: str
    level: int
    channels: int
    height: int
    width: int


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and ``base`` channels at the first level.

    Args:
        in_channels: 1 for EM slices.
        num_classes: 2 (membrane, cell) for ISBI 2012.
        base: channels of level 0 (64 in the paper; 16 for the slim CPU model).
        depth: number of 2x2 poolings (4 in the paper).
        padding: ``"valid"`` (the paper) or ``"same"``.
        batch_norm: BatchNorm after each convolution (not in the paper; speeds up training).
        tile_output: the output tile size with which whole images are segmented by
            the overlap-tile strategy (:mod:`segdemo.inference.tiling`; needed by the
            unpadded net, whose output is smaller than its input). The network
            itself (:meth:`forward`) ignores it.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base: int = 64,
        depth: int = 4,
        padding: Padding = "valid",
        batch_norm: bool = False,
        tile_output: int | None = None,
    ) -> None:
        super().__init__()
        self.tile_output = tile_output
        if padding not in ("valid", "same"):
            raise ValueError("padding must be 'valid' or 'same'")
        self.depth = depth
        self.padding = padding
        widths = [base * 2**i for i in range(depth + 1)]
        self.widths = widths
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.down.append(DoubleConv(c, w, padding, batch_norm))
            c = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], padding, batch_norm)
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for level in reversed(range(depth)):
            # 2x2 up-convolution halves the channels; concatenation with the skip restores them.
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.up_conv.append(DoubleConv(2 * widths[level], widths[level], padding, batch_norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_size(self, height: int, width: int) -> None:
        """Raise :class:`UNetSizeError` (with the padding fix) if the size does not fit."""
        bad = []
        for n in (height, width):
            if self.padding == "same":
                if n % 2**self.depth:
                    bad.append(n)
            elif valid_output_size(n, self.depth) is None:
                bad.append(n)
        if bad:
            fix = (nearest_valid_size(height, self.depth, self.padding),
                   nearest_valid_size(width, self.depth, self.padding))
            if self.padding == "same":
                why = f"with {self.depth} poolings each side must be divisible by 2^{self.depth} = {2**self.depth}"
            else:
                why = ("in the unpadded U-Net every length before a pooling must be even "
                       "after its two 3x3 convolutions")
            raise UNetSizeError(
                f"input {height}x{width} does not fit: {why}. Pad it (mirror) to {fix[0]}x{fix[1]}.",
                suggestion=fix, size=(height, width),
            )

    def forward(self, x: torch.Tensor, shapes: list[LevelShape] | None = None) -> torch.Tensor:
        """Figure 1: class scores for one input (tile); ``shapes``, if given, receives every stage's output shape."""
        self.check_size(x.shape[-2], x.shape[-1])

        def note(name: str, level: int, t: torch.Tensor) -> None:
            if shapes is not None:
                shapes.append(LevelShape(name, level, t.shape[1], t.shape[2], t.shape[3]))

        note("input", 0, x)
        skips = []
        h = x
        for level, block in enumerate(self.down):
            h = block(h)
            note("down", level, h)
            skips.append(h)
            h = self.pool(h)
            note("pool", level + 1, h)
        h = self.bottleneck(h)
        note("bottleneck", self.depth, h)
        for i, (up, conv) in enumerate(zip(self.up, self.up_conv)):
            level = self.depth - 1 - i
            h = up(h)
            note("upconv", level, h)
            skip = center_crop(skips[level], h.shape[-2], h.shape[-1])
            note("skip_crop", level, skip)
            h = conv(torch.cat([skip, h], dim=1))
            note("up", level, h)
        out = self.head(h)
        note("output", 0, out)
        return out


def level_shapes(model: UNet, height: int, width: int) -> list[LevelShape]:
    """Shapes of every stage for a ``height`` x ``width`` input, from a real forward pass.

    Runs on the ``meta`` device (shapes only, no arithmetic), so it is instant at any size.
    """
    meta = UNet(
        in_channels=model.down[0][0].in_channels,
        num_classes=model.head.out_channels,
        base=model.widths[0],
        depth=model.depth,
        padding=model.padding,
        batch_norm=any(isinstance(m, nn.BatchNorm2d) for m in model.modules()),
    ).to("meta")
    shapes: list[LevelShape] = []
    with torch.no_grad():
        meta(torch.empty(1, meta.down[0][0].in_channels, height, width, device="meta"),
                          shapes=shapes)
    return shapes


def unet(**kwargs: object) -> UNet:
    """Builder used by model cards."""
    return UNet(**kwargs)  # type: ignore[arg-type]
