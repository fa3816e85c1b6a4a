"""FC vs convolution lab: identical outputs, score maps on larger inputs, 1x1 as matmul."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from segdemo.labs import fc_conv
from segdemo.inference.pipeline import network_input_size



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


# ------------------------------------------------------------ segdemo's trained FCN-32s head as FC layers
def test_conv_to_linear_on_one_window() -> None:
    conv = nn.Conv2d(5, 4, 3, padding=0).double()
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    linear = fc_conv.conv_to_linear(conv)
    assert linear.in_features == 5 * 3 * 3 and linear.out_features == 4
    with torch.no_grad():
        assert (linear(x.flatten(1)) - conv(x)[:, :, 0, 0]).abs().max() < 1e-12
    with pytest.raises(ValueError):
        fc_conv.conv_to_linear(nn.Conv2d(4, 4, 3, dilation=2))


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    loaded = fc_conv.load_trained_fcn32s()
    assert loaded is not None, "the shipped FCN-32s weights must load"
    net, random_weights = loaded
    assert not random_weights
    return net


def _image() -> np.ndarray:
    from PIL import Image

    from segdemo.data import samples

    paths = fc_conv.street_images(1) or [s.path for s in samples.shipped_samples()]
    return np.asarray(Image.open(paths[0]).convert("RGB"))


def _tensor(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    from PIL import Image

    img = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.float64) / 255
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return torch.from_numpy((img - mean) / std).permute(2, 0, 1)[None].contiguous()


def _reference_head(net: nn.Module, window: torch.Tensor) -> torch.Tensor:
    """fc6 -> ReLU -> fc7 -> ReLU -> score as explicit matrix products with the conv weights (no nn.Linear)."""
    w6 = net.fc6.weight.reshape(net.fc6.out_channels, -1)
    h = torch.relu(w6 @ window.reshape(-1) + net.fc6.bias)
    h = torch.relu(net.fc7.weight[:, :, 0, 0] @ h + net.fc7.bias)
    return net.score_fr.weight[:, :, 0, 0] @ h + net.score_fr.bias


def _pool5(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    h = x
    for block in range(1, 6):
        h = net._block(h, block)
    return h


def test_trained_fcn32s_is_in_eval_mode_with_the_expected_head(trained: nn.Module) -> None:
    assert not trained.training and not any(m.training for m in trained.modules())  # BN running stats, no dropout
    assert trained.batch_norm and trained.num_classes == 11
    assert tuple(trained.fc6.kernel_size) == (7, 7) and tuple(trained.fc6.padding) == (3, 3)
    assert fc_conv.fcn_window_input(trained) == (224, 224)


def test_trained_fc_head_equals_conv_head_at_the_window_size(trained: nn.Module) -> None:
    x = _tensor(fc_conv.centre_square(_image()), (224, 224))
    check = fc_conv.fcn_head_check(trained, x)
    assert check.pool5_shape == (7, 7) and check.centre == (3, 3)
    with torch.no_grad():
        real = trained.coarse_scores(x)  # the real module, no hook
        pool5 = _pool5(trained, x)
        reference = _reference_head(trained, pool5[0])
    assert torch.equal(check.conv_scores, real)
    assert check.fc_scores is not None and check.fc_scores.shape == (1, 11)
    assert (check.fc_scores[0] - reference).abs().max() < 1e-10  # the FC head = independent matmuls
    assert (reference - real[0, :, 3, 3]).abs().max() < 1e-10  # = the trained conv head's centre
    assert check.centre_diff <= 1e-5 and check.map_diff <= 1e-5
    assert check.fc_scores.abs().max() > 0.5  # not trivially zero
    again = fc_conv.fcn_head_check(trained, x)  # eval mode: deterministic (dropout off)
    assert torch.equal(again.conv_scores, check.conv_scores)
    # float64 changes nothing but rounding: the shipped float32 network gives the same scores
    from segdemo.models import weights

    net32 = weights.load_model(fc_conv.FCN_NAME, device="cpu").net
    with torch.no_grad():
        assert (net32.coarse_scores(x.float()).double() - real).abs().max() < 1e-3


def test_trained_fc_head_on_every_padded_window_is_the_conv_map(trained: nn.Module) -> None:
    x = _tensor(_image(), (240, 320))
    check = fc_conv.fcn_head_check(trained, x)
    assert check.pool5_shape == (8, 10) and check.conv_scores.shape == (1, 11, 8, 10)
    assert check.fc_scores is None and check.map_diff <= 1e-5
    with torch.no_grad():
        padded = torch.nn.functional.pad(_pool5(trained, x), (3, 3, 3, 3))
        for y, xx in [(0, 0), (4, 5), (7, 9), (2, 8)]:
            ref = _reference_head(trained, padded[0, :, y:y + 7, xx:xx + 7])
            assert (ref - check.conv_scores[0, :, y, xx]).abs().max() < 1e-10
            assert (ref - check.window_scores[0, :, y, xx]).abs().max() < 1e-10


def test_class_heat_is_the_softmax_probability() -> None:
    scores = torch.randn(1, 11, 3, 4, dtype=torch.float64)
    probs, big = fc_conv.class_heat(scores, 3, (96, 128))
    expected = (scores.exp()[0, 3] / scores.exp()[0].sum(0)).float()
    assert torch.allclose(probs, expected) and big.shape == (96, 128)
    # bilinear upsampling stays within the coarse values (convex combinations)
    assert probs.min() - 1e-6 <= big.min() and big.max() <= probs.max() + 1e-6


def test_trained_score_map_is_meaningful_on_camvid(trained: nn.Module) -> None:
    """The heat map means something: the coarse map's classes agree with CamVid's ground truth."""
    from PIL import Image

    frames = fc_conv.street_images(3)
    if not frames:
        pytest.skip("CamVid not in $SEGDEMO_DATA_DIR")
    for frame in frames:
        rgb = np.asarray(Image.open(frame).convert("RGB"))
        truth = np.asarray(Image.open(frame.parent.parent / "valannot" / frame.name))
        shape = network_input_size(rgb.shape[:2], 240)
        check = fc_conv.fcn_head_check(trained, _tensor(rgb, shape))
        up = torch.nn.functional.interpolate(check.conv_scores, size=truth.shape, mode="bilinear",
                                             align_corners=False)[0].argmax(0).numpy()
        valid = truth != 11
        assert (up[valid] == truth[valid]).mean() > 0.6
        _, sky = fc_conv.class_heat(check.conv_scores, 0, shape)
        _, road = fc_conv.class_heat(check.conv_scores, 3, shape)
        third = shape[0] // 3
        assert sky[:third].mean() > sky[-third:].mean() and road[-third:].mean() > road[:third].mean()
