"""FC vs convolution lab: identical outputs, score maps on larger inputs, 1x1 as matmul."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segdemo.concepts import fc_conv

torch.set_num_threads(1)


def test_vgg_fc_equals_kxk_conv_at_training_size() -> None:
    model = fc_conv.tiny_vgg(seed=3)
    x = torch.randn(4, 3, 32, 32)
    eq = fc_conv.compare_vgg(model, x)
    assert eq.conv_scores.shape == (4, 10, 1, 1)
    assert eq.max_abs_diff <= 1e-5
    assert eq.fc_scores is not None and eq.fc_scores.abs().max() > 1e-3  # not trivially zero


def test_vgg_conv_gives_a_map_where_fc_fails() -> None:
    model = fc_conv.tiny_vgg()
    x = torch.randn(1, 3, 64, 96)
    eq = fc_conv.compare_vgg(model, x)
    assert eq.fc_scores is None and "shapes cannot be multiplied" in (eq.fc_error or "")
    assert eq.conv_scores.shape == (1, 10, 64 // 8 - 3, 96 // 8 - 3)
    # each map position is the FC head applied to that 4x4 window of the features
    feats = model.features(x)
    with torch.no_grad():
        window = model.classifier(torch.flatten(feats[:, :, 2:6, 5:9], 1))
    assert torch.allclose(eq.conv_scores[0, :, 2, 5], window[0], atol=1e-5)


def test_resnet_fc_equals_1x1_conv_then_mean() -> None:
    model, _, categories = fc_conv.resnet18_classifier(seed=1)
    assert len(categories) == 1000
    eq = fc_conv.compare_resnet(model, torch.randn(1, 3, 96, 128))
    assert eq.conv_scores.shape == (1, 1000, 3, 4)
    assert eq.max_abs_diff <= 1e-5


def test_linear_to_conv_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        fc_conv.linear_to_conv(nn.Linear(10, 2), 3, 2)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_is_a_per_pixel_matmul(bias: bool) -> None:
    check = fc_conv.pointwise_as_matmul(12, 5, 6, 7, bias=bias)
    assert check.params == check.formula_params == 12 * 5 + (5 if bias else 0)
    assert check.conv_out.shape == (1, 5, 6, 7)
    assert check.max_abs_diff <= 1e-5
