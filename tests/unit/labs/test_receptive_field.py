"""Receptive-field lab: the recurrence vs autograd vs an independent tap count."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from segdemo.labs import receptive_field as rf
from segdemo.labs import rf_measure as rfm



def reachable_offsets(layers: list[rf.Layer], size: int) -> np.ndarray:
    """Independent reference: (size, size) mask of offsets reachable from one output pixel.

    No convolution involved: layer l adds the taps (shift + t * d) * j_in of each
    of its branches (union, centred on the largest one), and the RF is the
    Minkowski sum of all layers' tap sets, built by shifting a boolean array.
    """
    mask = np.zeros((size, size), dtype=bool)
    mask[0, 0] = True
    jump = 1
    for layer in layers:
        steps: set[tuple[int, int]] = set()
        for d in layer.dilations:
            shift = (layer.k_eff - rf.effective_kernel(layer.kernel, d)) // 2
            line = [(shift + t * d) * jump for t in range(layer.kernel)]
            steps |= {(a, b) for a in line for b in line}
        new = np.zeros_like(mask)
        for dy, dx in steps:
            new[dy:, dx:] |= mask[: size - dy, : size - dx]
        mask = new
        jump *= layer.stride
    return mask


def random_stack(seed: int) -> list[rf.Layer]:
    rng = random.Random(seed)
    return [rf.Layer(f"l{i}", rng.choice([1, 2, 3, 5]), rng.choice([1, 1, 2]), rng.choice([1, 2, 3]))
            for i in range(rng.randint(1, 6))]


STACKS = {name: layers for name, layers in rf.PRESETS.items() if not name.startswith("deeplabv3")}
STACKS.update({f"random{s}": random_stack(s) for s in range(8)})
STACKS["strided_dilated"] = [rf.Layer("a", 3, 2), rf.Layer("b", 3, 1, 2), rf.Layer("c", 3, 2, 3),
                             rf.Layer("d", 2, 2, kind="pool"), rf.Layer("e", 3, 1, 4)]


@pytest.mark.parametrize("name", sorted(STACKS))
def test_recurrence_matches_autograd_and_taps(name: str) -> None:
    layers = STACKS[name]
    r, j = rf.theoretical_rf(layers)
    exact = rf.exact_rf(layers)
    top, left, h, w = exact.bbox
    assert (h, w) == (r, r), f"autograd RF {h}x{w} vs recurrence {r}"
    assert (top, left) == (j, j)  # the middle of three outputs starts one jump in
    expected = reachable_offsets(layers, r)
    assert np.array_equal(exact.mask[top:top + h, left:left + w], expected)
    assert exact.holes == int((~expected).sum())


def test_published_receptive_fields() -> None:
    # Values from the literature: VGG16 pool5 212 px, ResNet-50 427 px,
    # Yu & Koltun's basic context module 67x67.
    assert rf.theoretical_rf(rf.PRESETS["vgg16"]) == (212, 32)
    assert rf.theoretical_rf(rf.PRESETS["resnet50"]) == (427, 32)
    assert rf.theoretical_rf(rf.PRESETS["resnet50_os8"]) == (427, 8)
    assert rf.theoretical_rf(rf.PRESETS["context_module"])[0] == 67


def test_gridding_holes_visible_and_hdc_fills_them() -> None:
    grid = rf.exact_rf(rf.PRESETS["gridding_2_2_2"])
    top, left, h, _ = grid.bbox
    inner = grid.mask[top:top + h, left:left + h]
    assert inner[0::2, 0::2].all() and not inner[1::2, :].any() and not inner[:, 1::2].any()
    assert grid.holes == 13 * 13 - 7 * 7
    assert rf.exact_rf(rf.PRESETS["hdc_1_2_3"]).holes == 0
    assert rf.exact_rf(rf.PRESETS["context_module"]).holes == 0
    aspp = rf.exact_rf(rf.PRESETS["aspp_6_12_18"])
    assert aspp.mask.sum() == 1 + 3 * 8  # centre + 8 taps per rate


def test_table_rows_follow_the_recurrence() -> None:
    rows = rf.rf_table([rf.Layer("a", 3, 2), rf.Layer("b", 3, 1, 4)])
    assert (rows[0].k_eff, rows[0].r_out, rows[0].j_out) == (3, 3, 2)
    assert (rows[1].k_eff, rows[1].r_in, rows[1].r_out, rows[1].j_in) == (9, 3, 3 + 8 * 2, 2)


def test_structural_rf_of_torchvision_resnet50_is_427() -> None:
    from torchvision.models import resnet50

    body = nn.Sequential(*list(resnet50(weights=None).children())[:-2])
    size = 480
    c = (size // 32) // 2  # the middle output pixel of the 15 x 15 map
    mask = rfm.structural_rf(body, (3, size, size), (c * 32, c * 32))
    top, left, h, w = rfm.bbox_of(mask)
    row = rf.rf_table(rf.PRESETS["resnet50"])[-1]
    assert (h, w) == (row.r_out, row.r_out) == (427, 427)
    assert top + (h - 1) / 2 == pytest.approx(row.start_out + c * row.j_out)


def test_structural_rf_ignores_activations_and_matches_taps() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=2, dilation=2), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, padding=2, dilation=2), nn.ReLU(),
    ).eval()
    layers = [rf.Layer("a", 3, 1, 2), rf.Layer("p", 2, 2, kind="pool"), rf.Layer("b", 3, 1, 2)]
    r, _ = rf.theoretical_rf(layers)
    mask = rfm.structural_rf(net, (2, 40, 40), (20, 20))
    top, left, h, w = rfm.bbox_of(mask)
    assert (h, w) == (r, r)
    assert np.array_equal(mask[top:top + h, left:left + w], reachable_offsets(layers, r))


def test_effective_rf_lies_inside_the_theoretical_rf() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 5, padding=4, dilation=2)).eval()
    x = torch.randn(1, 3, 32, 32)
    erf = rfm.effective_rf(net, x, (16, 10), class_index=2)
    support = rfm.structural_rf(net, (3, 32, 32), (16, 10))
    assert erf.max() == pytest.approx(1.0)
    assert not (erf[~support] > 0).any()
    assert (erf[support] > 0).mean() > 0.5  # the real weights reach most of it


def test_dilated_and_standard_have_equal_params_and_macs() -> None:
    std, dil, dense = rfm.dilated_vs_standard(8, 16, 3, 4, 20, bias=True)
    assert std.params == dil.params == std.formula_params == 3 * 3 * 8 * 16 + 16
    assert std.macs == dil.macs == std.formula_macs == 20 * 20 * 9 * 8 * 16
    assert dil.k_eff == 9 and std.k_eff == 3
    assert dense.params == dense.formula_params == 9 * 9 * 8 * 16 + 16
    assert dense.macs == dense.formula_macs


def test_aspp_taps_spacing_and_rates_found_in_models() -> None:
    taps = rfm.aspp_taps((60, 120), (240, 320), 8, (6, 12))
    six = [t for t in taps if t.rate == 6]
    xs = sorted({t.x for t in six})
    assert np.diff(xs).tolist() == [48.0, 48.0]  # rate * output stride
    assert all(t.inside for t in six)
    assert not all(t.inside for t in taps if t.rate == 12)  # 12 * 8 = 96 px above row 60: padding
    from segdemo.models.deeplab_slim import deeplab_slim
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    assert rfm.find_aspp_rates(deeplab_slim(num_classes=3, rates=(2, 5, 7))) == (2, 5, 7)
    tv = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    assert rfm.find_aspp_rates(tv) == (12, 24, 36)
    assert rfm.find_aspp_rates(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2))) == ()
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    lr = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    assert any(m.dilation[0] > 1 for m in lr.modules() if isinstance(m, nn.Conv2d))
    assert rfm.find_aspp_rates(lr) == ()  # dilated backbone, but no atrous pyramid


def test_output_position_maps_coarse_outputs() -> None:
    assert rfm.output_position((17, 5), (32, 32), (4, 4)) == (2, 0)
    assert rfm.output_position((31, 31), (32, 32), (32, 32)) == (31, 31)


def test_bad_layers_are_rejected() -> None:
    with pytest.raises(ValueError):
        rf.Layer("x", 0)
    with pytest.raises(ValueError):
        rf.Layer("x", 3, 2, branch_dilations=(2, 4))
    with pytest.raises(ValueError):
        rf.exact_rf([rf.Layer("x", 3, 1, 3000)])


def test_editor_rows_round_trip_and_errors() -> None:
    layers = rf.PRESETS["deeplabv3_os16"]
    parsed, errors = rf.layers_from_rows(rf.layers_to_rows(layers))
    assert parsed == layers and errors == []
    rows = [
        {"layer": "ok", "kernel": 3, "stride": 2, "dilation": 1, "rates": ""},
        {"layer": "bad", "kernel": 2.5, "stride": 1, "dilation": 1, "rates": ""},
        {"layer": "zero", "kernel": 0, "stride": 1, "dilation": 1, "rates": ""},
        {"layer": "r", "kernel": 3, "stride": 1, "dilation": 1, "rates": "6, x"},
        {"layer": "rs", "kernel": 3, "stride": 2, "dilation": 1, "rates": "6,12"},
        {"layer": "empty", "kernel": None},
        {"layer": "aspp", "kernel": 3, "stride": 1, "dilation": 1, "rates": "6;12"},
        {"layer": None, "kernel": 5.0, "stride": None, "dilation": float("nan"), "rates": None},
    ]
    parsed, errors = rf.layers_from_rows(rows)
    assert [l.name for l in parsed] == ["ok", "aspp", "layer8"] and parsed[1].branch_dilations == (6, 12)
    assert (parsed[2].kernel, parsed[2].stride, parsed[2].dilation) == (5, 1, 1)
    assert errors == [(2, "labs.rf.err.number"), (3, "labs.rf.err.number"), (4, "labs.rf.err.rates"),
                      (5, "labs.rf.err.rates_stride")]


def test_structural_rf_with_squeeze_excitation_is_global_and_finite() -> None:
    from torchvision.ops import SqueezeExcitation

    torch.manual_seed(0)
    blocks: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(12):  # repeated gates used to square activations into inf/NaN
        blocks += [nn.Conv2d(8, 8, 3, padding=1), nn.Hardswish(), SqueezeExcitation(8, 4)]
    net = nn.Sequential(*blocks).eval()
    mask = rfm.structural_rf(net, (3, 24, 24), (3, 3))
    assert mask.all()  # global average pooling in the gate reaches every pixel


def test_cli_prints_the_recurrence_and_the_autograd_check(capsys: pytest.CaptureFixture[str]) -> None:
    from segdemo import cli

    assert cli.main(["concepts", "rf", "--layers", "3,2;3,1,2;2,2"]) == 0
    out = capsys.readouterr().out
    r, j = rf.theoretical_rf([rf.Layer("a", 3, 2), rf.Layer("b", 3, 1, 2), rf.Layer("c", 2, 2)])
    assert f"receptive field {r} x {r}, jump {j}; autograd {r} x {r} (agrees)" in out
    assert cli.main(["concepts", "rf", "--layers", "3,x"]) == 2
    assert cli.main(["concepts", "separable", "-C", "8", "-n", "16", "--bias"]) == 0
    assert f"= {3 * 3 * 8 + 8 * 16 + 8 + 16:,}" in capsys.readouterr().out


def test_mass_radius_against_hand_examples() -> None:
    erf = np.zeros((21, 21))
    erf[10, 10] = 1.0
    assert rfm.mass_radius(erf, (10, 10)) == 0.0
    erf[7:14, 7:14] = 1.0  # a uniform 7x7 square: 90 % of 49 pixels needs the full radius 3
    assert rfm.mass_radius(erf, (10, 10), 0.9) == 3.0
    assert rfm.mass_radius(erf, (10, 10), 9 / 49) == 1.0  # the inner 3x3 holds 9 of 49
    assert rfm.mass_radius(np.zeros((3, 3)), (1, 1)) == 0.0


def test_global_pooling_is_found_only_where_a_branch_pools_the_whole_map() -> None:
    """Decides the page's explanation of a field that covers the whole image."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large

    from segdemo.models.deeplab_slim import deeplab_slim
    from segdemo.models.fcn import fcn8s

    assert rfm.has_global_pooling(deeplab_slim(num_classes=3))  # ASPP image pooling
    assert rfm.has_global_pooling(deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3))
    assert rfm.has_global_pooling(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3))
    assert not rfm.has_global_pooling(fcn8s(num_classes=3))
    assert not rfm.has_global_pooling(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(4)))
    # FCN-8s has no global branch, yet one output's field can cover a 96 x 128 input entirely
    net = fcn8s(num_classes=3).eval()
    assert rfm.structural_rf(net, (3, 96, 128), (48, 64)).all()
