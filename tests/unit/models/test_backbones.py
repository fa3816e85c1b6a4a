"""The shipped ImageNet MobileNetV2 backbone and the segmentation models built on it.

Independent references: torchvision's own ``mobilenet_v2`` + its ImageNet
transforms loaded from the same file; the original fp32 ``.pth`` from
``../shared/weights`` when it is there; ``sum(p.numel() ...)`` for parameter counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from segdemo.models.builders import BUILDERS
from segdemo.models.backbones import (MOBILENET_V2_CARD, get_backbone, list_backbones, mobilenet_v2_weights_path,
                                      sha256_of)
from segdemo.models.mobilenet_v2 import load_imagenet_features, mobilenet_v2_features
from segdemo.labs import transfer

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "assets" / "samples"
ORIGINAL = REPO.parent / "shared" / "weights" / "mobilenet_v2-b0353104.pth"
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / f"{name}.jpg").convert("RGB"))


def test_card_says_where_the_weights_come_from() -> None:
    card = json.loads(MOBILENET_V2_CARD.read_text(encoding="utf-8"))
    assert card["source"] == "torchvision MobileNet_V2_Weights.IMAGENET1K_V1"
    assert card["source_sha256"] == "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
    assert card["imagenet_top1"] == pytest.approx(71.878)
    assert "BSD-3-Clause" in card["licence"] and "ImageNet" in card["licence"]
    assert len(card["categories"]) == 1000 and card["categories"][285] == "Egyptian cat"
    assert mobilenet_v2_weights_path().stat().st_size < 8e6


def test_registry_lists_shipped_and_online_backbones() -> None:
    names = [b.name for b in list_backbones()]
    assert names[0] == "mobilenet_v2_imagenet"
    assert {"resnet50_imagenet", "resnet101_imagenet", "mobilenet_v3_large_imagenet"} <= set(names)
    shipped = get_backbone("mobilenet_v2_imagenet")
    assert shipped.offline and shipped.feature_strides[-1] == 32 and shipped.feature_channels[-1] == 320
    online = get_backbone("resnet50_imagenet")
    assert not online.offline and online.url.startswith("https://download.pytorch.org/")
    assert online.imagenet_top1 == pytest.approx(76.13)
    with pytest.raises(KeyError, match="known"):
        get_backbone("vgg99")


@pytest.mark.parametrize(("photo", "expected"), [("cat", CAT_CLASSES), ("coffee", {"espresso"})])
def test_backbone_classifies_the_shipped_photos(photo: str, expected: set[str]) -> None:
    top = transfer.imagenet_topk(rgb(photo), 5)
    assert top[0][0] in expected
    assert sum(p for _, p in top) <= 1.0 + 1e-6 and top[0][1] >= top[-1][1]


def test_logits_equal_torchvisions_classifier_on_the_same_file() -> None:
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    net = mobilenet_v2()
    net.load_state_dict({k: v.float() for k, v in load_file(str(mobilenet_v2_weights_path())).items()})
    net.eval()
    photo = rgb("coffee")
    x = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()(torch.from_numpy(photo.copy()).permute(2, 0, 1))[None]
    with torch.no_grad():
        expected = net(x)[0]
    assert torch.equal(transfer.imagenet_logits(photo), expected)


@pytest.mark.skipif(not ORIGINAL.is_file(), reason="../shared/weights not here")
def test_fp16_file_is_the_original_up_to_rounding() -> None:
    assert sha256_of(ORIGINAL) == json.loads(MOBILENET_V2_CARD.read_text())["source_sha256"]
    original = torch.load(ORIGINAL, map_location="cpu", weights_only=True)
    shipped = load_file(str(mobilenet_v2_weights_path()))
    assert set(original) == set(shipped)
    for k, v in original.items():
        if v.is_floating_point():
            assert torch.equal(shipped[k], v.half()), k
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2()
    net.load_state_dict(original)
    x = transfer.classification_input(rgb("cat"))
    with torch.no_grad():
        ref = net.eval()(x)[0]
    ours = transfer.imagenet_logits(rgb("cat"))
    assert ours.argmax() == ref.argmax()
    assert (ours - ref).abs().max() < 0.1


@pytest.mark.parametrize("builder", ["deeplabv3_mobilenet_v2", "lraspp_mobilenet_v2"])
def test_heads_give_full_size_scores_at_output_stride_16(builder: str) -> None:
    model = BUILDERS[builder](num_classes=11).eval()
    x = torch.randn(1, 3, 180, 240)
    with torch.no_grad():
        assert model(x).shape == (1, 11, 180, 240)
        assert model.backbone(x).shape == (1, 320, 12, 15)  # ceil(180/16), ceil(240/16)


def test_dilated_backbone_keeps_imagenet_weights_and_is_stride_16() -> None:
    features = mobilenet_v2_features(16)
    load_imagenet_features(features, mobilenet_v2_weights_path())
    state = load_file(str(mobilenet_v2_weights_path()))
    assert torch.equal(features[14].conv[1][0].weight, state["features.14.conv.1.0.weight"].float())
    assert features[14].conv[1][0].stride == (1, 1) and features[15].conv[1][0].dilation == (2, 2)
    assert mobilenet_v2_features(32)(torch.randn(1, 3, 224, 224)).shape[-1] == 7
