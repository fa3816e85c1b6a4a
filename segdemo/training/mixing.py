"""CutMix and MixUp for segmentation: two samples mixed, their label maps mixed the same way.

* CutMix pastes a box of image b (and the same box of its label map) into image a;
  the label map stays a hard map, mixed exactly: each pixel's label is that of the
  image its colour came from, so the share of each source is its pixel count.
* MixUp blends the images, ``alpha * a + (1 - alpha) * b``; the target is the soft
  label ``alpha * onehot(a) + (1 - alpha) * onehot(b)`` per pixel (a class
  probability map [N, C, H, W]).

Void: a void pixel of a source contributes no probability mass (its one-hot row is
all zeros), so a pixel void in a only keeps ``1 - alpha`` of b's class and a pixel
void in both has an all-zero row. :func:`segdemo.training.losses.segmentation_loss`
weights each pixel by its mass, so the void share of a pixel is ignored exactly as a
hard void pixel is.

In training (:func:`mix_batch`) each sample of a batch is mixed with probability p
with the next sample of the batch (a cyclic shift, so every crop is used as is once
and as a partner once); the mixing runs on the already augmented crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CUTMIX = {"p": 0.5}  # the box's area share is uniform in (0, 1): CutMix's Beta(1, 1)
MIXUP = {"p": 0.5, "low": 0.5}  # alpha uniform in [low, 1]: the crop keeps the larger weight


@dataclass(frozen=True)
class Box:
    """A box in pixels: rows ``top:top + height``, columns ``left:left + width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def area(self) -> int:
        return self.height * self.width


def cutmix_box(height: int, width: int, share: float, cy: float, cx: float) -> Box:
    """A box of about ``share`` of the image (sides sqrt(share) of each side) centred at
    relative position (``cy``, ``cx``) in 0..1, kept inside the image."""
    bh = min(height, max(0, round(height * math.sqrt(share))))
    bw = min(width, max(0, round(width * math.sqrt(share))))
    top = min(max(round(cy * height - bh / 2), 0), height - bh)
    left = min(max(round(cx * width - bw / 2), 0), width - bw)
    return Box(top, left, bh, bw)


def random_box(height: int, width: int, generator: torch.Generator) -> Box:
    """CutMix's box: area share uniform in (0, 1), centre uniform in the image."""
    share, cy, cx = torch.rand(3, generator=generator).tolist()
    return cutmix_box(height, width, share, cy, cx)


def cutmix_pair(image_a: torch.Tensor, labels_a: torch.Tensor, image_b: torch.Tensor, labels_b: torch.Tensor,
                box: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """Image a with ``box`` of image b pasted in (images [..., 3, H, W], labels [..., H, W])."""
    image, labels = image_a.clone(), labels_a.clone()
    rows, cols = slice(box.top, box.top + box.height), slice(box.left, box.left + box.width)
    image[..., rows, cols] = image_b[..., rows, cols]
    labels[..., rows, cols] = labels_b[..., rows, cols]
    return image, labels


def one_hot(labels: torch.Tensor, num_classes: int, void: int) -> torch.Tensor:
    """Labels [N, H, W] -> float one-hot [N, C, H, W]; void pixels get an all-zero row."""
    valid = labels != void
    safe = torch.where(valid, labels.long(), torch.zeros_like(labels, dtype=torch.long))
    hot = torch.nn.functional.one_hot(safe, num_classes).permute(0, 3, 1, 2).float()
    return hot * valid[:, None].float()


def mixup_pair(image_a: torch.Tensor, labels_a: torch.Tensor, image_b: torch.Tensor, labels_b: torch.Tensor,
               alpha: float, num_classes: int, void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha * a + (1 - alpha) * b`` (uint8 images [N, 3, H, W], rounded) and the soft label
    ``alpha * onehot(a) + (1 - alpha) * onehot(b)`` [N, C, H, W]."""
    mixed = (alpha * image_a.float() + (1 - alpha) * image_b.float()).round().clamp(0, 255).to(image_a.dtype)
    soft = alpha * one_hot(labels_a, num_classes, void) + (1 - alpha) * one_hot(labels_b, num_classes, void)
    return mixed, soft


def mix_batch(images: torch.Tensor, labels: torch.Tensor, enabled: frozenset[str] | set[str],
              generator: torch.Generator, num_classes: int, void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix and/or MixUp on a batch of uint8 crops [N, 3, H, W] and labels [N, H, W].

    Returns hard labels [N, H, W] (CutMix only) or soft labels [N, C, H, W] (with MixUp).
    Draws from ``generator`` only for the switches that are on.
    """
    partner = torch.roll(torch.arange(len(images)), -1).tolist()
    src_x, src_y = images, labels
    images, labels = images.clone(), labels.clone()
    h, w = images.shape[-2:]
    if "cutmix" in enabled:
        for i, j in enumerate(partner):
            if float(torch.rand(1, generator=generator)) < CUTMIX["p"]:
                box = random_box(h, w, generator)
                images[i], labels[i] = cutmix_pair(src_x[i], src_y[i], src_x[j], src_y[j], box)
    if "mixup" not in enabled:
        return images, labels
    base_x, base_y = images.clone(), labels.clone()
    soft = one_hot(labels, num_classes, void)
    for i, j in enumerate(partner):
        if float(torch.rand(1, generator=generator)) < MIXUP["p"]:
            alpha = MIXUP["low"] + (1 - MIXUP["low"]) * float(torch.rand(1, generator=generator))
            x, t = mixup_pair(base_x[i : i + 1], base_y[i : i + 1], base_x[j : j + 1], base_y[j : j + 1], alpha,
                              num_classes, void)
            images[i], soft[i] = x[0], t[0]
    return images, soft


def label_shares(labels: torch.Tensor, num_classes: int, void: int) -> torch.Tensor:
    """Per-class share of the valid pixels [C] of a hard [.., H, W] or soft [.., C, H, W] label."""
    soft = labels if labels.is_floating_point() else one_hot(labels.reshape(-1, *labels.shape[-2:]),
                                                             num_classes, void)
    mass = soft.reshape(-1, num_classes, *soft.shape[-2:]).sum(dim=(0, 2, 3))
    return mass / mass.sum().clamp_min(1e-12)
