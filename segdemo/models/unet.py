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
    """The input size does not fit the network; the message says how to fix it."""

    def __init__(self, message: str, suggestion: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


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
        tile_output: if set, :meth:`forward` segments a whole image of any size by
            the overlap-tile strategy with output tiles of this size (needed by the
            unpadded net, whose output is smaller than its input);
            :meth:`forward_tile` is the network itself.
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
                suggestion=fix,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores; with ``tile_output`` set, at the input's size for any input size."""
        if self.tile_output:
            return overlap_tile_forward(self, x, self.tile_output)
        return self.forward_tile(x)

    def forward_tile(self, x: torch.Tensor, shapes: list[LevelShape] | None = None) -> torch.Tensor:
        """The network on one tile; ``shapes``, if given, receives every stage's output shape."""
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
        meta.forward_tile(torch.empty(1, meta.down[0][0].in_channels, height, width, device="meta"),
                          shapes=shapes)
    return shapes


def tile_margin(net: UNet, context: int = 32) -> int:
    """Pixels of context around each output tile: the lost border (unpadded) or ``context``."""
    return valid_margin(net.depth) if net.padding == "valid" else context


def tile_input_size(net: UNet, out_tile: int, context: int = 32) -> int:
    """Input tile length that yields ``out_tile`` valid output pixels."""
    size = out_tile + 2 * tile_margin(net, context)
    net.check_size(size, size)
    return size


@dataclass(frozen=True)
class Tile:
    """One overlap tile: its input window in the mirrored image and its output window."""

    in_top: int
    in_left: int
    in_size: int
    out_top: int
    out_left: int
    out_size: int


def tile_plan(height: int, width: int, out_tile: int, margin: int) -> list[Tile]:
    """Tiles whose output windows cover ``height`` x ``width`` seamlessly (row-major).

    Input windows are in the coordinates of the image mirror-padded by ``margin``
    (plus the extra right/bottom padding that makes the grid whole), so the input
    of tile (r, c) starts at (r*out_tile, c*out_tile) and is ``out_tile + 2*margin`` long.
    """
    rows, cols = -(-height // out_tile), -(-width // out_tile)
    return [
        Tile(r * out_tile, c * out_tile, out_tile + 2 * margin, r * out_tile, c * out_tile, out_tile)
        for r in range(rows)
        for c in range(cols)
    ]


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Pad by mirroring at the borders (as the paper), even when the pad exceeds the image."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        step = [min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1)]
        if h == 1 or w == 1:
            x = torch.nn.functional.pad(x, (left, right, top, bottom), mode="replicate")
            break
        x = torch.nn.functional.pad(x, tuple(step), mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def overlap_tile_forward(net: UNet, x: torch.Tensor, out_tile: int, context: int = 32,
                         batch: int = 4) -> torch.Tensor:
    """Segment a whole image tile by tile (the paper's overlap-tile strategy, Fig. 2).

    The image is mirror-padded by the net's margin; each tile's input carries that
    context and its output covers exactly its ``out_tile`` square, so the outputs
    tile the image without seams. Returns scores at the input's size.
    """
    n, _, height, width = x.shape
    margin = tile_margin(net, context)
    size = tile_input_size(net, out_tile, context)
    plan = tile_plan(height, width, out_tile, margin)
    rows, cols = -(-height // out_tile), -(-width // out_tile)
    padded = mirror_pad(x, margin, margin + rows * out_tile - height, margin, margin + cols * out_tile - width)
    out: torch.Tensor | None = None
    for start in range(0, len(plan), batch):
        chunk = plan[start : start + batch]
        inputs = torch.cat([padded[..., t.in_top : t.in_top + size, t.in_left : t.in_left + size] for t in chunk])
        scores = net.forward_tile(inputs)
        if net.padding == "same":
            scores = scores[..., margin : margin + out_tile, margin : margin + out_tile]
        if out is None:
            out = scores.new_zeros(n, scores.shape[1], rows * out_tile, cols * out_tile)
        for i, t in enumerate(chunk):
            out[..., t.out_top : t.out_top + out_tile, t.out_left : t.out_left + out_tile] = scores[i * n : (i + 1) * n]
    assert out is not None
    return out[..., :height, :width]


def unet(**kwargs: object) -> UNet:
    """Builder used by model cards."""
    return UNet(**kwargs)  # type: ignore[arg-type]
