"""Overlap-tile inference: mirror padding, seamless tiles, and that the U-Net itself is bare."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segdemo.inference.tiling import mirror_pad, overlap_tile_forward, tile_plan, whole_image_forward
from segdemo.models.unet import UNet, UNetSizeError, nearest_valid_size, valid_margin, valid_output_size


def test_mirror_pad_matches_numpy_reflect() -> None:
    x = torch.arange(12.0).view(1, 1, 3, 4)
    ours = mirror_pad(x, 5, 2, 7, 1)[0, 0].numpy()
    ref = np.pad(x[0, 0].numpy(), ((5, 2), (7, 1)), mode="reflect")
    np.testing.assert_array_equal(ours, ref)


def test_overlap_tile_equals_the_net_on_each_mirrored_window() -> None:
    """Each output tile is the net's valid output on its own window of the mirrored image."""
    torch.manual_seed(0)
    net = UNet(base=4, depth=2, padding="valid").eval()
    margin = valid_margin(2)
    out_tile = valid_output_size(nearest_valid_size(40, 2, "valid"), 2)
    x = torch.randn(1, 1, 45, 50)
    with torch.no_grad():
        whole = overlap_tile_forward(net, x, out_tile)
    plan = tile_plan(45, 50, out_tile, margin)
    rows, cols = -(-45 // out_tile), -(-50 // out_tile)
    assert len(plan) == rows * cols
    padded = torch.from_numpy(np.pad(x[0, 0].numpy(), ((margin, margin + rows * out_tile - 45),
                                                       (margin, margin + cols * out_tile - 50)), mode="reflect"))
    t = plan[-1]
    window = padded[t.in_top : t.in_top + t.in_size, t.in_left : t.in_left + t.in_size][None, None]
    with torch.no_grad():
        tile_out = net(window)
    h = min(out_tile, 45 - t.out_top)
    w = min(out_tile, 50 - t.out_left)
    torch.testing.assert_close(whole[..., t.out_top :, t.out_left :], tile_out[..., :h, :w])
    # the output windows cover the image exactly once
    cover = np.zeros((rows * out_tile, cols * out_tile), int)
    for t in plan:
        cover[t.out_top : t.out_top + t.out_size, t.out_left : t.out_left + t.out_size] += 1
    assert (cover == 1).all()


def test_whole_image_forward_tiles_only_a_net_with_an_output_tile() -> None:
    """UNet.forward is Figure 1 alone (a whole slice of the wrong size is an error); the
    tiling is inference's, chosen by the card's ``tile_output``."""
    torch.manual_seed(0)
    net = UNet(base=4, depth=2, padding="valid", tile_output=20).eval()
    x = torch.randn(1, 1, 45, 50)
    with pytest.raises(UNetSizeError):
        net(x)
    with torch.no_grad():
        torch.testing.assert_close(whole_image_forward(net, x), overlap_tile_forward(net, x, 20))
        assert whole_image_forward(net, x).shape[-2:] == (45, 50)
        plain = UNet(base=4, depth=2, padding="same").eval()
        y = torch.randn(1, 1, 32, 48)
        torch.testing.assert_close(whole_image_forward(plain, y), plain(y))
