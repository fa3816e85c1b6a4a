"""The training loss: per-pixel cross-entropy on hard label maps or soft (MixUp) labels.

Hard targets [N, H, W] go to :func:`torch.nn.functional.cross_entropy` unchanged
(class weights, ``ignore_index`` for void; the weighted mean
``sum_i w[y_i] * -log p_i[y_i] / sum_i w[y_i]`` over the non-void pixels).

Soft targets [N, C, H, W] (probabilities per pixel) use the same formula with the
one-hot row replaced by the soft row t_i:

    L = sum_i sum_c w_c t_ic (-log p_ic) / sum_i sum_c w_c t_ic

For a one-hot t this is exactly the hard-label loss. Void is explicit: a void pixel
has an all-zero row (see :func:`segdemo.training.mixing.one_hot`) and so adds
nothing to either sum; a pixel void in one MixUp source only counts with the other
source's mass. (PyTorch's own soft-target cross-entropy would count void rows in the
mean's denominator and ignores ``ignore_index``, hence this function.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                      ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy of ``logits`` [N, C, H, W] against hard [N, H, W] or soft [N, C, H, W] targets."""
    if target.dim() == logits.dim() - 1:
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    if target.shape != logits.shape:
        raise ValueError(f"soft target {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    target = target.to(logits.dtype)
    if weight is not None:
        target = target * weight.to(logits.dtype).view(1, -1, *([1] * (logits.dim() - 2)))
    num = -(target * F.log_softmax(logits, dim=1)).sum()
    # all-void batch: 0 with a gradient path, as cross_entropy gives for no valid pixel (nan there)
    return num / target.sum().clamp_min(1e-12)


class SegmentationLoss(nn.Module):
    """:func:`segmentation_loss` with fixed class weights and void index (the criterion of the loops)."""

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = -100) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, target, self.weight, self.ignore_index)
