"""Augmentation of an image and its label map together: U-Net's elastic deformation.

The same field moves image and labels (bilinear for the image, nearest for the
labels, so no new class appears); the U-Net page's demo uses these functions too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def elastic_displacement(height: int, width: int, sigma: float, grid: int, generator: torch.Generator,
                         n: int = 1, alpha: float = 1.0) -> torch.Tensor:
    """Dense displacement fields ``[n, 2, H, W]`` (x then y, in pixels).

    As in the U-Net paper: random vectors on a coarse ``grid`` x ``grid`` lattice,
    drawn from a Gaussian with ``sigma`` pixels standard deviation, interpolated
    bicubically to every pixel. ``alpha`` scales the whole field.
    """
    coarse = torch.randn(n, 2, grid, grid, generator=generator) * sigma * alpha
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)


def warp(images: torch.Tensor, labels: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images (bilinear) and labels (nearest) at ``p + flow(p)``, mirrored at borders."""
    n, _, h, w = images.shape
    flow = flow.to(images.device)
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device), torch.arange(w, device=images.device),
                            indexing="ij")
    px = xs[None].float() + flow[:, 0]
    py = ys[None].float() + flow[:, 1]
    grid = torch.stack([2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    warped_labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="reflection",
                                  align_corners=True)[:, 0]
    return warped, warped_labels.round().to(labels.dtype)


def elastic_deform(images: torch.Tensor, labels: torch.Tensor, alpha: float, sigma: float,
                   grid: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random elastic deformation of images ``[N, C, H, W]`` and their labels ``[N, H, W]``
    with one shared field per sample (the augmentation segdemo's U-Net trains with)."""
    n, _, h, w = images.shape
    flow = elastic_displacement(h, w, sigma, grid, generator, n=n, alpha=alpha)
    return warp(images, labels, flow)
