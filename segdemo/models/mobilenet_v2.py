"""Segmentation heads on an ImageNet MobileNetV2 backbone (torchvision's parts).

* Backbone: torchvision's ``mobilenet_v2().features`` (Sandler et al. 2018), the
  network whose ImageNet weights segdemo ships. Classification ends at output
  stride 32; for segmentation the last stride-2 block (the first 160-channel
  block) keeps stride 1 and the depthwise convolutions after it are dilated by 2,
  so the output stride is 16 and the receptive field still grows (DeepLab's
  "atrous" trick). The final 1x1 conv to 1280 channels is ImageNet-specific and
  left out: the heads read the 320-channel features.
* DeepLabV3 (Chen et al. 2017): torchvision's ``DeepLabHead`` — ASPP with 1x1,
  three dilated 3x3 and an image-pooling branch — on the stride-16 features.
  The paper's rates (6, 12, 18) are for 513-px crops (33x33 features); at
  segdemo's 240x180 (15x12 features) they would fall outside the map, so the
  rates are scaled down to (3, 6, 9).
* LR-ASPP (Howard et al. 2019, MobileNetV3): torchvision's ``LRASPPHead`` — a
  1x1 branch gated by a global-pooling branch on the stride-16 features, plus a
  1x1 classifier on the stride-8 features.

* The distillation lab's student (:func:`lraspp_mobilenet_v2_slim`): the same
  LR-ASPP head on a *truncated* MobileNetV2 — ``features[:14]``, which ends with
  the 96-channel stage at stride 16 (no dilation needed), so the 160- and
  320-channel stages, about 70 % of the backbone's parameters, are left out; a
  64-channel head instead of 128. It keeps the shipped ImageNet weights of the
  blocks it has.

All return logits at the input's size, upsampled bilinearly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2
from torchvision.models.segmentation.deeplabv3 import DeepLabHead
from torchvision.models.segmentation.lraspp import LRASPPHead

# Indices into ``mobilenet_v2().features``: the stage that ends at each stride.
STRIDE8_END = 7  # features[:7] -> 32 channels at stride 8
DILATE_FROM = 14  # features[14] is the stride-2 block of the 160-channel stage
FEATURES_END = 18  # features[:18] -> 320 channels (features[18] is the 1280-ch 1x1 conv)
SLIM_FEATURES_END = 14  # features[:14] -> 96 channels at stride 16 (the student's truncated backbone)
LOW_CHANNELS, HIGH_CHANNELS = 32, 320


def mobilenet_v2_features(output_stride: int = 16, end: int = FEATURES_END) -> nn.Sequential:
    """MobileNetV2 ``features[:end]`` at ``output_stride`` 16 (dilated) or 32, randomly initialised.

    With ``end <= DILATE_FROM`` the backbone stops before the last stride-2 block,
    so it is at stride 16 without any dilation.
    """
    if not STRIDE8_END < end <= FEATURES_END:
        raise ValueError(f"end must be in {STRIDE8_END + 1}..{FEATURES_END}")
    features = tv_mobilenet_v2(weights=None).features[:end]
    if output_stride == 16:
        for block in features[DILATE_FROM:]:
            for m in block.modules():
                if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                    if m.stride == (2, 2):
                        m.stride = (1, 1)  # the stride is dropped here ...
                    else:
                        m.dilation, m.padding = (2, 2), (2, 2)  # ... and made up for by dilation
    elif output_stride != 32:
        raise ValueError("output_stride must be 16 or 32")
    return features


def load_imagenet_features(features: nn.Sequential, weights_path: str | Path) -> None:
    """Copy an ImageNet ``mobilenet_v2`` state dict's ``features.*`` into ``features`` (strict).

    ``weights_path``: safetensors, or a ``.pth`` read with ``weights_only=True``;
    the classifier and the 1280-channel conv in it are not used.
    """
    from segdemo.models.backbones import read_backbone_state

    state = read_backbone_state(weights_path)
    own = {f"features.{k}": k for k in features.state_dict()}
    features.load_state_dict({own[k]: v for k, v in state.items() if k in own}, strict=True)


class DeepLabV3MobileNetV2(nn.Module):
    """MobileNetV2 (output stride 16) -> ASPP head -> bilinear upsampling."""

    def __init__(self, num_classes: int = 11, atrous_rates: tuple[int, ...] = (3, 6, 9)) -> None:
        super().__init__()
        self.backbone = mobilenet_v2_features(16)
        self.classifier = DeepLabHead(HIGH_CHANNELS, num_classes, atrous_rates=tuple(atrous_rates))

    def coarse_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores at output stride 16, before the final upsampling."""
        return self.classifier(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.interpolate(self.coarse_scores(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class LRASPPMobileNetV2(nn.Module):
    """MobileNetV2: stride-8 features (low) and stride-16 features (high) -> LR-ASPP head."""

    def __init__(self, num_classes: int = 11, inter_channels: int = 128, features_end: int = FEATURES_END) -> None:
        super().__init__()
        self.backbone = mobilenet_v2_features(16, features_end)
        high = self.backbone[-1].out_channels  # 320 for the full backbone, 96 when truncated at 14
        self.classifier = LRASPPHead(LOW_CHANNELS, high, num_classes, inter_channels)

    def coarse_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores at output stride 8 (the low branch's resolution), before the final upsampling."""
        low = self.backbone[:STRIDE8_END](x)
        high = self.backbone[STRIDE8_END:](low)
        return self.classifier({"low": low, "high": high})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.interpolate(self.coarse_scores(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def deeplabv3_mobilenet_v2(num_classes: int = 11, atrous_rates: tuple[int, ...] = (3, 6, 9)) -> DeepLabV3MobileNetV2:
    """DeepLabV3 on MobileNetV2, randomly initialised (see :func:`load_imagenet_features`)."""
    return DeepLabV3MobileNetV2(num_classes, atrous_rates)


def lraspp_mobilenet_v2(num_classes: int = 11, inter_channels: int = 128) -> LRASPPMobileNetV2:
    """LR-ASPP on MobileNetV2, randomly initialised (see :func:`load_imagenet_features`)."""
    return LRASPPMobileNetV2(num_classes, inter_channels)


def lraspp_mobilenet_v2_slim(num_classes: int = 11, inter_channels: int = 64,
                             features_end: int = SLIM_FEATURES_END) -> LRASPPMobileNetV2:
    """The distillation student: LR-ASPP on MobileNetV2 truncated at ``features_end`` (random init)."""
    return LRASPPMobileNetV2(num_classes, inter_channels, features_end)
