"""segdemo's own networks: shapes, initialisation, published key layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segdemo.inference.tiling import whole_image_forward
from segdemo.models.builders import BUILDERS
from segdemo.models.deeplab_slim import DilatedSlimDeepLab
from segdemo.models.fcn import CAFFE_OFFSETS, CONVS_PER_BLOCK, FCN, bilinear_kernel, make_upsampler, score_grid_shape
from segdemo.models.unet import (
    UNet,
    UNetSizeError,
    level_shapes,
    nearest_valid_size,
    valid_margin,
    valid_output_size,
)



def tiny_fcn(stride: int, **kw) -> FCN:
    return FCN(num_classes=5, stride=stride, width="slim", batch_norm=True, **kw).eval()


# ------------------------------------------------------------------ FCN


@pytest.mark.parametrize("stride", [32, 16, 8])
@pytest.mark.parametrize("size", [(64, 96), (37, 53), (33, 32), (1, 1)])
def test_fcn_output_shape_odd_and_even(stride: int, size: tuple[int, int]) -> None:
    with torch.no_grad():
        out = tiny_fcn(stride)(torch.randn(2, 3, *size))
    assert out.shape == (2, 5, *size)


@pytest.mark.parametrize("stride", [32, 16, 8])
def test_fcn_coarse_map_has_stride(stride: int) -> None:
    with torch.no_grad():
        coarse = tiny_fcn(stride).coarse_scores(torch.randn(1, 3, 70, 101))
    assert coarse.shape[-2:] == score_grid_shape(stride, 70, 101) == (-(-70 // stride), -(-101 // stride))


def test_caffe_geometry_shapes() -> None:
    model = FCN(num_classes=3, stride=8, width="slim", geometry="caffe").eval()
    with torch.no_grad():
        for size in [(50, 61), (64, 64)]:
            assert model(torch.randn(1, 3, *size)).shape == (1, 3, *size)


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_bilinear_upsampler_equals_interpolate_away_from_borders(factor: int) -> None:
    """The transposed convolution initialised by bilinear_kernel is F.interpolate(bilinear)
    except within one coarse cell of the border (where interpolate clamps)."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 7, 9, dtype=torch.float64)
    up = make_upsampler(4, factor, "same", learnable=False).double()
    with torch.no_grad():
        ours = up(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert ours.shape == ref.shape
    inner = (slice(None), slice(None), slice(factor, -factor), slice(factor, -factor))
    torch.testing.assert_close(ours[inner], ref[inner], rtol=0, atol=1e-10)
    # ...and it really differs at the border (zero padding vs clamping), so the test can fail
    assert not torch.allclose(ours, ref)


def test_bilinear_kernel_is_the_tent() -> None:
    k = bilinear_kernel(2, 4)
    np.testing.assert_allclose(k[0, 0, 0].numpy(), np.array([0.25, 0.75, 0.75, 0.25]) * 0.25)
    assert torch.count_nonzero(k[0, 1]) == 0


@pytest.mark.parametrize("parent_stride,child_stride", [(32, 16), (16, 8)])
def test_child_fcn_starts_from_parent(parent_stride: int, child_stride: int) -> None:
    """Zero-initialised skips: the child reproduces its parent at initialisation.

    Exactly, the child's stride-32 scores are the parent's and the new skip adds
    nothing; its output equals the parent's stride-32 scores upsampled by the
    child's chain of bilinear steps (x2 then x16 for FCN-16s). A x32 step and
    x2-then-x16 steps are both bilinear but not the same function: at each kink
    of the coarse piecewise-linear surface the chain cuts the corner by at most
    |second difference| / 8 per axis. We check against that hand-derived bound.
    """
    torch.manual_seed(1)
    parent = tiny_fcn(parent_stride)
    # give the parent's own skip non-zero weights, as after training
    if parent_stride == 16:
        torch.nn.init.normal_(parent.score_pool4.weight, std=0.1)
    child = tiny_fcn(child_stride)
    child.init_from_parent(parent)
    assert torch.count_nonzero(getattr(child, f"score_pool{3 if child_stride == 8 else 4}").weight) == 0
    x = torch.randn(1, 3, 192, 256)
    with torch.no_grad():
        f = parent.features(x)
        parent_coarse = parent._coarse(f)
        child_coarse = child._coarse(child.features(x))
        # the child's extra stage only upsamples the parent's coarse scores x2
        up = child.upscore_pool4 if child_stride == 8 else child.upscore2
        rows, cols = child_coarse.shape[-2:]
        torch.testing.assert_close(child_coarse, up(parent_coarse)[..., :rows, :cols])
        p_out, c_out = parent(x), child(x)
    second_diff = (parent_coarse[..., 2:, :] - 2 * parent_coarse[..., 1:-1, :] + parent_coarse[..., :-2, :]).abs().max() \
        + (parent_coarse[..., :, 2:] - 2 * parent_coarse[..., :, 1:-1] + parent_coarse[..., :, :-2]).abs().max()
    margin = parent_stride  # one coarse cell: zero-padded borders of the transposed convolutions
    inner = (..., slice(margin, -margin), slice(margin, -margin))
    diff = (p_out[inner] - c_out[inner]).abs().max()
    assert diff <= second_diff / 8 + 1e-5
    agree = (p_out[inner].argmax(1) == c_out[inner].argmax(1)).float().mean()
    assert agree > 0.8


def published_vgg16_fcn_state_dict(stride: int, num_classes: int = 21) -> dict[str, torch.Tensor]:
    """Key names and shapes of the PyTorch conversions of the Caffe FCN models
    (VGG16 conv1_1..conv5_3, fc6 7x7x512x4096, fc7, score_fr, skips, upscore*),
    written out by hand from the Caffe prototxt; random values.

    fc6/fc7 (118M values) repeat a random block along the input channels, which
    keeps the test fast on a busy CPU while every output filter stays distinct.
    """
    g = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}
    convs = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
             ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
             ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
             ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)]
    for name, cin, cout in convs:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.01
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01
    sd["fc6.weight"] = (torch.randn(4096, 8, 7, 7, generator=g) * 0.001).repeat(1, 64, 1, 1)
    sd["fc6.bias"] = torch.zeros(4096)
    sd["fc7.weight"] = (torch.randn(4096, 64, 1, 1, generator=g) * 0.01).repeat(1, 64, 1, 1)
    sd["fc7.bias"] = torch.zeros(4096)
    sd["score_fr.weight"] = torch.randn(num_classes, 4096, 1, 1, generator=g) * 0.01
    sd["score_fr.bias"] = torch.zeros(num_classes)
    if stride == 32:
        sd["upscore.weight"] = torch.randn(num_classes, num_classes, 64, 64, generator=g)
    else:
        sd["score_pool4.weight"] = torch.randn(num_classes, 512, 1, 1, generator=g)
        sd["score_pool4.bias"] = torch.zeros(num_classes)
        sd["upscore2.weight"] = torch.randn(num_classes, num_classes, 4, 4, generator=g)
        if stride == 16:
            sd["upscore16.weight"] = torch.randn(num_classes, num_classes, 32, 32, generator=g)
        else:
            sd["score_pool3.weight"] = torch.randn(num_classes, 256, 1, 1, generator=g)
            sd["score_pool3.bias"] = torch.zeros(num_classes)
            sd["upscore_pool4.weight"] = torch.randn(num_classes, num_classes, 4, 4, generator=g)
            sd["upscore8.weight"] = torch.randn(num_classes, num_classes, 16, 16, generator=g)
    return sd


@pytest.mark.parametrize("stride", [32, 16, 8])
def test_published_vgg16_fcn_state_dict_loads_into_full_width(stride: int) -> None:
    sd = published_vgg16_fcn_state_dict(stride)
    with torch.device("meta"):  # skip the random initialisation of 134M parameters
        model = FCN(num_classes=21, stride=stride, width="full", geometry="caffe")
    result = model.load_state_dict(sd, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.fc6.weight is sd["fc6.weight"] or torch.equal(model.fc6.weight[:2], sd["fc6.weight"][:2])
    assert torch.equal(model.conv1_1.bias, sd["conv1_1.bias"])
    assert model.conv1_1.padding == (100, 100) and model.fc6.padding == (0, 0)
    # (a forward pass in the Caffe geometry is checked on the slim width, which is fast)


def test_published_checkpoint_wrappers_are_mapped(tmp_path) -> None:
    """A checkpoint saved as {"model_state_dict": {"module.conv1_1.weight": ...}} loads by key mapping."""
    from segdemo.models.fcn import load_published_fcn, published_state_dict

    src = FCN(num_classes=21, stride=8, width="slim", geometry="caffe")
    wrapped = {"epoch": 3, "model_state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}
    path = tmp_path / "fcn8s_from_caffe.pth"
    torch.save(wrapped, path)
    loaded = load_published_fcn(str(path), stride=8, width="slim")
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert set(published_state_dict(published_vgg16_fcn_state_dict(8))) == set(published_vgg16_fcn_state_dict(8))


def test_builders_registered() -> None:
    assert {"fcn32s", "fcn16s", "fcn8s", "unet", "deeplab_slim"} <= set(BUILDERS)


# ------------------------------------------------------------------ U-Net


def test_unet_valid_sizes_match_the_paper() -> None:
    assert valid_output_size(572, 4) == 388  # Figure 1
    assert valid_margin(4) == 92
    assert valid_output_size(573, 4) is None
    shapes = level_shapes(UNet(base=64, depth=4, padding="valid"), 572, 572)
    by = {(s.name, s.level): (s.channels, s.height) for s in shapes}
    assert by[("down", 0)] == (64, 568)
    assert by[("pool", 4)] == (512, 32)
    assert by[("bottleneck", 4)] == (1024, 28)
    assert by[("upconv", 3)] == (512, 56)
    assert by[("up", 0)] == (64, 388)
    assert by[("output", 0)] == (2, 388)


@pytest.mark.parametrize("size", [(64, 80), (33, 47), (92, 92)])
def test_unet_output_shape_odd_and_even(size: tuple[int, int]) -> None:
    """Whole images of any size come back at their size (overlap-tile inference around the bare net)."""
    torch.manual_seed(0)
    same = UNet(base=4, depth=3, padding="same", tile_output=32).eval()
    with torch.no_grad():
        assert whole_image_forward(same, torch.randn(1, 1, *size)).shape == (1, 2, *size)
    valid = UNet(base=4, depth=2, padding="valid", tile_output=20).eval()
    with torch.no_grad():
        assert whole_image_forward(valid, torch.randn(1, 1, *size)).shape == (1, 2, *size)


def test_unet_size_error_names_the_fix() -> None:
    net = UNet(base=4, depth=4, padding="same")
    with pytest.raises(UNetSizeError) as err:
        net(torch.zeros(1, 1, 100, 64))
    assert err.value.suggestion == (112, 64)
    assert "112" in str(err.value)
    valid = UNet(base=4, depth=4, padding="valid")
    with pytest.raises(UNetSizeError) as err:
        valid(torch.zeros(1, 1, 570, 572))
    assert err.value.suggestion == (572, 572)
    assert nearest_valid_size(570, 4, "valid") == 572


def test_level_shapes_match_a_real_forward() -> None:
    net = UNet(base=4, depth=3, padding="valid")
    n = nearest_valid_size(100, 3, "valid")
    recorded: list = []
    with torch.no_grad():
        out = net(torch.zeros(1, 1, n, n), shapes=recorded)
    assert recorded == level_shapes(net, n, n)
    assert out.shape[-1] == valid_output_size(n, 3)


# ------------------------------------------------------------------ DeepLab


@pytest.mark.parametrize("size", [(48, 64), (37, 51)])
def test_deeplab_shapes(size: tuple[int, int]) -> None:
    net = DilatedSlimDeepLab(num_classes=4, aspp_channels=16).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, *size)).shape == (1, 4, *size)
        assert net.coarse_scores(torch.randn(1, 3, *size)).shape[-2:] == (-(-size[0] // 8), -(-size[1] // 8))


# ------------------------------------------------------------------ crop alignment (Caffe's coord_map)


def _coord_map(layer: torch.nn.Module) -> tuple[float, float]:
    """(a, b) such that output coordinate y of ``layer`` sits at input coordinate a*y + b
    (the centre of its window), as Caffe's ``coord_map.py`` computes it."""
    k, s, p = (layer.kernel_size, layer.stride, layer.padding)
    k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
    d = layer.dilation[0] if isinstance(getattr(layer, "dilation", 1), tuple) else getattr(layer, "dilation", 1)
    if isinstance(layer, torch.nn.ConvTranspose2d):  # the inverse of a convolution with the same parameters
        return 1 / s, (p - d * (k - 1) / 2) / s
    return s, d * (k - 1) / 2 - p


def _to_data(model: FCN, path: list[str]) -> tuple[float, float]:
    """Compose the coordinate maps of the layers ``path`` (from the image onwards)."""
    a, b = 1.0, 0.0
    for name in path:
        la, lb = _coord_map(getattr(model, name))
        a, b = a * la, a * lb + b
    return a, b


def _then(ab: tuple[float, float], layer: torch.nn.Module) -> tuple[float, float]:
    la, lb = _coord_map(layer)
    return ab[0] * la, ab[0] * lb + ab[1]


def _backbone(until: str) -> list[str]:
    names = []
    for block, n in enumerate(CONVS_PER_BLOCK, start=1):
        names += [f"conv{block}_{i}" for i in range(1, n + 1)] + [f"pool{block}"]
        if f"pool{block}" == until:
            return names
    return names + ["fc6", "fc7", "score_fr"]


@pytest.mark.parametrize("geometry", ["same", "caffe"])
def test_crop_offsets_follow_from_the_layer_geometry(geometry: str) -> None:
    """Every crop lines up the fused maps on the same image positions: offsets derived
    from each layer's kernel, stride and padding (Caffe's coord_map) equal the model's
    (0 in the "same" geometry; 5, 9 and 19/27/31 in the Caffe nets)."""
    expected = {"same": {"score_pool4": 0, "score_pool3": 0, 32: 0, 16: 0, 8: 0}, "caffe": CAFFE_OFFSETS}[geometry]
    fr = _backbone("score_fr")
    nets = {s: FCN(num_classes=3, stride=s, width="slim", geometry=geometry) for s in (32, 16, 8)}
    up2 = _to_data(nets[8], fr + ["upscore2"])
    pool4 = _to_data(nets[8], _backbone("pool4") + ["score_pool4"])
    assert up2[0] == pool4[0] == 16
    assert (up2[1] - pool4[1]) / 16 == expected["score_pool4"]  # score_pool4 cropped to upscore2
    up4 = _then(up2, nets[8].upscore_pool4)
    pool3 = _to_data(nets[8], _backbone("pool3") + ["score_pool3"])
    assert up4[0] == pool3[0] == 8
    assert (up4[1] - pool3[1]) / 8 == expected["score_pool3"]
    finals = {32: _to_data(nets[32], fr + ["upscore"]),
              16: _then(_to_data(nets[16], fr + ["upscore2"]), nets[16].upscore16),
              8: _then(up4, nets[8].upscore8)}
    for stride, (a, b) in finals.items():
        assert a == 1  # output pixels are image pixels
        assert -b == expected[stride]  # the final crop starts where image pixel 0 lands
