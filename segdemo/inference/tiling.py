"""U-Net's overlap-tile strategy (Ronneberger et al. 2015, Fig. 2): segmenting a whole image
of any size with a network whose output is smaller than its input.

The image is mirror-padded by the net's margin; each tile's input carries that
context and its output covers exactly its square, so the outputs tile the image
without seams. :func:`whole_image_forward` is how segdemo runs any of its networks
on a whole image: overlap-tile for a network that names an output tile (the U-Net
card's ``tile_output``), the plain forward otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from segdemo.models.unet import UNet, valid_margin


def whole_image_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores for whole images ``x``: overlap-tile when ``net`` has an output tile, else ``net(x)``."""
    tile_output = getattr(net, "tile_output", None)
    return overlap_tile_forward(net, x, tile_output) if tile_output else net(x)


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
        scores = net(inputs)
        if net.padding == "same":
            scores = scores[..., margin : margin + out_tile, margin : margin + out_tile]
        if out is None:
            out = scores.new_zeros(n, scores.shape[1], rows * out_tile, cols * out_tile)
        for i, t in enumerate(chunk):
            out[..., t.out_top : t.out_top + out_tile, t.out_left : t.out_left + out_tile] = scores[i * n : (i + 1) * n]
    assert out is not None
    return out[..., :height, :width]


