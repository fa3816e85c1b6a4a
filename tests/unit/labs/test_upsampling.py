"""Upsampling lab: each method vs its PyTorch definition, checkerboards vs overlap counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segdemo.labs import upsampling as up



def overlap_count(kernel: int, stride: int, size: int) -> np.ndarray:
    """Independent reference: how many kernel windows of a transposed conv cover each pixel."""
    n = (size - 1) * stride + kernel
    line = np.zeros(n)
    for i in range(size):
        line[i * stride : i * stride + kernel] += 1
    return np.outer(line, line)


@pytest.mark.parametrize("kernel,stride", [(3, 2), (4, 2), (3, 1), (5, 3)])
def test_transposed_pattern_counts_overlaps(kernel: int, stride: int) -> None:
    assert np.array_equal(up.transposed_pattern(kernel, stride, 6), overlap_count(kernel, stride, 6))


def test_checkerboard_and_remedy() -> None:
    k3 = up.interior(up.transposed_pattern(3, 2, 8), 3)
    k4 = up.interior(up.transposed_pattern(4, 2, 8), 3)
    assert not up.is_uniform(k3) and set(np.unique(k3)) == {1.0, 2.0, 4.0}
    assert up.is_uniform(k4) and k4[0, 0] == 4.0
    # random weights: even k4s2 has a stride-periodic pattern; resize-then-conv does not
    assert not up.is_uniform(up.interior(up.transposed_pattern(4, 2, 8, "random"), 3))
    assert up.is_uniform(up.resize_conv_pattern(3, 2, 8, "random"))
    assert up.is_uniform(up.resize_conv_pattern(3, 2, 8)) and up.resize_conv_pattern(3, 2, 8)[0, 0] == 9.0


@pytest.mark.parametrize("factor", [2, 3, 8])
def test_methods_match_their_definitions(factor: int) -> None:
    torch.manual_seed(0)
    scores = torch.randn(4, 5, 6)
    guide = torch.rand(1, 1, 5 * factor, 6 * factor)
    out = up.upsample_scores(scores, factor, guide)
    assert set(out) == set(up.METHODS)
    for method in ("nearest", "bilinear", "bicubic"):
        kwargs = {} if method == "nearest" else {"align_corners": False}
        ref = F.interpolate(scores[None], scale_factor=factor, mode=method, **kwargs)[0]
        assert torch.allclose(out[method].scores, ref, atol=1e-5)
        assert np.array_equal(out[method].labels, ref.argmax(0).numpy())
    # FCN's bilinear-initialised deconvolution is bilinear interpolation away from the border
    m = factor
    diff = (out["transposed_bilinear"].scores - out["bilinear"].scores)[:, m:-m, m:-m]
    assert diff.abs().max() < 1e-5
    assert (out["transposed_random"].scores - out["bilinear"].scores).abs().max() > 0.1
    # unpooling: every score lands where its window's maximum was, zeros elsewhere
    un = out["unpool"]
    assert un.filled.sum() == 5 * 6
    pooled, idx = F.max_pool2d(guide, factor, factor, return_indices=True)
    flat = un.scores.reshape(4, -1)
    assert torch.equal(flat[:, idx.reshape(-1)], scores.reshape(4, -1))
    assert (un.scores[:, torch.from_numpy(~un.filled)] == 0).all()


def test_bilinear_filter_is_fcn_kernel() -> None:
    k = up.bilinear_filter(4)
    assert torch.allclose(k[0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625], dtype=torch.float64))
    assert float(k.sum()) == pytest.approx(4.0)  # stride^2: each output gets weight 1


def test_coarse_scores_of_real_architectures_are_what_forward_upsamples() -> None:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    from segdemo.models.deeplab_slim import deeplab_slim

    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 96)
    for net, how in ((lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3), "lraspp"),
                     (deeplab_slim(num_classes=3), "coarse_scores")):
        net.eval()
        coarse, found = up.coarse_class_scores(net, x)
        assert found == how and coarse.shape[-1] < 96
        with torch.no_grad():
            full = net(x)
        full = full["out"] if isinstance(full, dict) else full
        ref = F.interpolate(coarse, size=(64, 96), mode="bilinear", align_corners=False)
        assert torch.allclose(ref, full, atol=1e-5)
