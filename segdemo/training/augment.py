"""Paired augmentation of an image and its label map, the one implementation that
training (CLI and the in-app lab) and the pages' previews share.

Photometric changes (``jitter``) touch the image only; geometric ones resample
the labels with nearest neighbour, so no new class can appear, and pixels a
rotation brings in from outside the image become void (ignored by the loss).
U-Net's elastic deformation (:func:`elastic_deform`) is here too; the U-Net page's
demo draws the same field.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

# The switches the training command and the lab offer, in the order they are applied.
AUGMENTATIONS = ("scale", "flip", "rotate", "jitter", "elastic")
BASIC = frozenset({"scale", "flip"})  # what segdemo's shipped CamVid models were trained with
ROTATE_DEGREES = 10.0
JITTER = {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.05}
ELASTIC = {"alpha": 1.0, "sigma": 6.0, "grid": 3}


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator))


def rotate_pair(image: torch.Tensor, labels: torch.Tensor, degrees: float,
                void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate ``image`` [N, 3, H, W] bilinearly and ``labels`` [N, H, W] by nearest neighbour;
    label pixels coming from outside the image become ``void``."""
    out = TF.rotate(image, degrees, interpolation=TF.InterpolationMode.BILINEAR)
    lbl = TF.rotate(labels[:, None], degrees, interpolation=TF.InterpolationMode.NEAREST, fill=void)[:, 0]
    return out, lbl


def jitter_image(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue (uint8 image [N, 3, H, W]); labels unchanged."""
    b = _uniform(generator, 1 - JITTER["brightness"], 1 + JITTER["brightness"])
    c = _uniform(generator, 1 - JITTER["contrast"], 1 + JITTER["contrast"])
    s = _uniform(generator, 1 - JITTER["saturation"], 1 + JITTER["saturation"])
    h = _uniform(generator, -JITTER["hue"], JITTER["hue"])
    image = TF.adjust_brightness(image, b)
    image = TF.adjust_contrast(image, c)
    image = TF.adjust_saturation(image, s)
    return TF.adjust_hue(image, h)


def augment_crop(image: torch.Tensor, labels: torch.Tensor, enabled: frozenset[str] | set[str],
                 generator: torch.Generator, void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmentations after cropping (flip, rotate, jitter, elastic) on one uint8 crop
    [1, 3, H, W] and its labels [1, H, W]; scale/crop happen while cutting the window."""
    if "flip" in enabled and float(torch.rand(1, generator=generator)) < 0.5:
        image, labels = image.flip(-1), labels.flip(-1)
    if "rotate" in enabled:
        image, labels = rotate_pair(image, labels, _uniform(generator, -ROTATE_DEGREES, ROTATE_DEGREES), void)
    if "jitter" in enabled:
        image = jitter_image(image, generator)
    if "elastic" in enabled:
        warped, labels = elastic_deform(image.float(), labels, generator=generator, **ELASTIC)
        image = warped.clamp(0, 255).round().to(torch.uint8)
    return image, labels


def scaled_window(height: int, width: int, crop: tuple[int, int], store_scale: float, scale: float,
                  generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, window height, window width) of a random window that becomes a ``crop``
    = (width, height) patch at ``scale`` of full resolution (images stored at ``store_scale``)."""
    crop_w, crop_h = crop
    win_h = min(int(round(crop_h * store_scale / scale)), height)
    win_w = min(int(round(crop_w * store_scale / scale)), width)
    top = int(torch.randint(0, height - win_h + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - win_w + 1, (1,), generator=generator))
    return top, left, win_h, win_w


def resize_pair(image: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize a uint8 image (antialiased bilinear) and labels (nearest) to ``size`` = (height, width)."""
    # uint8 in, uint8 out: torch's fast path for antialiased bilinear resizing
    image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    labels = F.interpolate(labels[:, None], size=size, mode="nearest")[:, 0]
    return image, labels


def random_scale(enabled: frozenset[str] | set[str], generator: torch.Generator) -> float:
    """The scale of full resolution a training crop is taken at: 0.5-0.75 with ``scale``, else 0.5."""
    return 0.5 * (1.0 + 0.5 * float(torch.rand(1, generator=generator))) if "scale" in enabled else 0.5


def parse_augmentations(text: str) -> frozenset[str]:
    """``"scale,flip"`` -> frozenset; ``"none"`` or ``""`` -> empty; unknown names raise ValueError."""
    names = {t.strip() for t in text.split(",") if t.strip() and t.strip() != "none"}
    unknown = names - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; choose from {', '.join(AUGMENTATIONS)}")
    return frozenset(names)


def describe(enabled: frozenset[str] | set[str]) -> str:
    """A model card's wording of the augmentations used."""
    if not enabled:
        return "none (fixed-scale random crop only)"
    parts = {"scale": "random scale + crop", "flip": "horizontal flip",
             "rotate": f"rotation ±{ROTATE_DEGREES:g}° (void fill)",
             "jitter": "colour jitter (brightness/contrast/saturation {brightness}/{contrast}/{saturation}, "
                       "hue {hue})".format(**JITTER),
             "elastic": "elastic warp (sigma {sigma} px on a {grid}x{grid} grid)".format(**ELASTIC)}
    return ", ".join(parts[a] for a in AUGMENTATIONS if a in enabled)


# ------------------------------------------------------------------ elastic deformation (U-Net)


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
