"""The numbers of the FC vs 1x1 page computed from an image: the checks each tab shows.

:mod:`segdemo.labs.fc_conv` has the equivalences themselves; here they are
applied to the page's picture, so the page only lays out tables and pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segdemo.labs.fc_conv import ConvolutionalResNet, Equivalence, TinyVGG, class_heat, compare_resnet, compare_vgg
from segdemo.labs.model_inputs import image_tensor


def vgg_window_check(model: TinyVGG, rgb: np.ndarray, size: int) -> tuple[Equivalence, tuple[int, int], float]:
    """The convolutional head on a ``size`` x ``size`` input, and at its centre position the
    FC head applied to that k x k window of the features: (result, position, max |difference|)."""
    x = image_tensor(rgb, (size, size))
    big = compare_vgg(model, x)
    h, w = big.conv_scores.shape[-2:]
    iy, ix, k = h // 2, w // 2, model.feature_size
    with torch.no_grad():
        feats = model.features(x)
        window = model.classifier(torch.flatten(feats[:, :, iy:iy + k, ix:ix + k], 1))
    return big, (iy, ix), float((window[0] - big.conv_scores[0, :, iy, ix]).abs().max())


@dataclass(frozen=True)
class Top5:
    """ResNet's five best categories at 224x224: FC scores next to the mean of the 1x1-conv map."""

    indices: list[int]
    fc_scores: np.ndarray
    conv_mean: np.ndarray
    max_abs_diff: float


def resnet_top5(resnet: nn.Module, rgb: np.ndarray) -> Top5:
    """avgpool + FC against mean(1x1 conv) on the picture at 224x224, for the top-5 categories."""
    with torch.no_grad():
        eq = compare_resnet(resnet, image_tensor(rgb, (224, 224)))
    top = eq.fc_scores[0].softmax(0).topk(5).indices
    conv_mean = eq.conv_scores.mean(dim=(2, 3))[0]
    return Top5(top.tolist(), eq.fc_scores[0, top].numpy(), conv_mean[top].numpy(), eq.max_abs_diff)


def resnet_input_shape(image_hw: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(height, width) with the shorter side ``short_side`` (at least 32 px each)."""
    h, w = image_hw
    scale = short_side / min(h, w)
    return max(32, round(h * scale)), max(32, round(w * scale))


def resnet_score_map(resnet: nn.Module, rgb: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """The 1x1-conv ResNet's class scores ``[K, h, w]`` for the picture at ``shape``."""
    with torch.no_grad():
        return ConvolutionalResNet(resnet).eval().score_map(image_tensor(rgb, shape))[0]


def normalised_heat(scores: torch.Tensor, cls: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """P(cls) per position of ``[K, h, w]`` scores, and upsampled to ``shape`` scaled to a maximum of 1."""
    probs, heat = class_heat(scores[None], cls, shape)
    return probs.numpy(), (heat / max(float(heat.max()), 1e-12)).numpy()
