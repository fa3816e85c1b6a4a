"""Paired augmentation of an image and its label map, the one implementation that
training (CLI and the in-app lab) and the pages' previews share.

Photometric changes (``jitter``: brightness, contrast, saturation, hue) touch the
image only; geometric ones (scale + crop, flip, rotation, affine and perspective
warps, elastic) resample the labels with nearest neighbour, so no new class can
appear, and pixels a warp brings in from outside the image become void (ignored
by the loss). CutMix and MixUp need two samples: they live in
:mod:`segdemo.training.mixing` and run on a whole batch. U-Net's elastic
deformation (:func:`elastic_deform`, mirrored at the borders) is here too; the
U-Net page's demo draws the same field.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

# The switches the training command and the lab offer, in the order they are applied.
AUGMENTATIONS = ("scale", "flip", "rotate", "affine", "perspective", "jitter", "elastic", "cutmix", "mixup")
BASIC = frozenset({"scale", "flip"})  # what segdemo's shipped CamVid models were trained with
MIXING = frozenset({"cutmix", "mixup"})  # batch level: each mixes a sample with another one
ROTATE_DEGREES = 10.0
# random affine warp: rotation ±degrees, shift ±translate of the size, zoom range, shear ±shear degrees
AFFINE = {"degrees": 10.0, "translate": 0.1, "scale": (0.9, 1.1), "shear": 8.0}
PERSPECTIVE = 0.2  # each corner moves up to this share of the half-size (torchvision's distortion_scale)
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


def photometric(image: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
                hue: float = 0.0) -> torch.Tensor:
    """Brightness, contrast and saturation factors (1 = unchanged) and a hue shift (turns, -0.5..0.5)
    on a uint8 image [N, 3, H, W], in that order (torchvision's functional ops); labels never change."""
    image = TF.adjust_brightness(image, brightness)
    image = TF.adjust_contrast(image, contrast)
    image = TF.adjust_saturation(image, saturation)
    return TF.adjust_hue(image, hue)


def jitter_image(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue (uint8 image [N, 3, H, W]); labels unchanged."""
    b = _uniform(generator, 1 - JITTER["brightness"], 1 + JITTER["brightness"])
    c = _uniform(generator, 1 - JITTER["contrast"], 1 + JITTER["contrast"])
    s = _uniform(generator, 1 - JITTER["saturation"], 1 + JITTER["saturation"])
    h = _uniform(generator, -JITTER["hue"], JITTER["hue"])
    return photometric(image, b, c, s, h)


def affine_pair(image: torch.Tensor, labels: torch.Tensor, angle: float, translate: tuple[float, float],
                scale: float, shear: float, void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An affine warp about the centre: rotation ``angle`` degrees, shift ``translate`` = (dx, dy)
    pixels, zoom ``scale``, shear ``shear`` degrees (x); image bilinear, labels nearest, void outside."""
    kw = dict(angle=angle, translate=[float(translate[0]), float(translate[1])], scale=scale, shear=[shear, 0.0])
    out = TF.affine(image, interpolation=TF.InterpolationMode.BILINEAR, **kw)
    lbl = TF.affine(labels[:, None], interpolation=TF.InterpolationMode.NEAREST, fill=void, **kw)[:, 0]
    return out, lbl


def random_affine(height: int, width: int, generator: torch.Generator) -> dict[str, object]:
    """Parameters of :func:`affine_pair` drawn from the ranges in :data:`AFFINE`."""
    t = AFFINE["translate"]
    return {"angle": _uniform(generator, -AFFINE["degrees"], AFFINE["degrees"]),
            "translate": (round(_uniform(generator, -t, t) * width), round(_uniform(generator, -t, t) * height)),
            "scale": _uniform(generator, *AFFINE["scale"]),
            "shear": _uniform(generator, -AFFINE["shear"], AFFINE["shear"])}


def perspective_corners(height: int, width: int, distortion: float,
                        generator: torch.Generator) -> list[list[int]]:
    """Where the four corners (top-left, top-right, bottom-right, bottom-left) move: each inwards by
    up to ``distortion`` of half the size, as torchvision's RandomPerspective draws them."""
    dx, dy = distortion * width / 2, distortion * height / 2

    def r(limit: float) -> int:
        return int(round(_uniform(generator, 0, limit)))

    return [[r(dx), r(dy)], [width - 1 - r(dx), r(dy)], [width - 1 - r(dx), height - 1 - r(dy)],
            [r(dx), height - 1 - r(dy)]]


def perspective_pair(image: torch.Tensor, labels: torch.Tensor, corners: list[list[int]],
                     void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The perspective warp that moves the image corners to ``corners``; labels nearest, void outside."""
    h, w = image.shape[-2:]
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    out = TF.perspective(image, start, corners, interpolation=TF.InterpolationMode.BILINEAR)
    lbl = TF.perspective(labels[:, None], start, corners, interpolation=TF.InterpolationMode.NEAREST,
                         fill=void)[:, 0]
    return out, lbl


def augment_crop(image: torch.Tensor, labels: torch.Tensor, enabled: frozenset[str] | set[str],
                 generator: torch.Generator, void: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmentations after cropping (flip, rotate, affine, perspective, jitter, elastic) on one
    uint8 crop [1, 3, H, W] and its labels [1, H, W]; scale/crop happen while cutting the window.

    Each switch draws from ``generator`` only when it is on, so adding a switch leaves
    the random stream (and the results) of the others unchanged."""
    h, w = image.shape[-2:]
    if "flip" in enabled and float(torch.rand(1, generator=generator)) < 0.5:
        image, labels = image.flip(-1), labels.flip(-1)
    if "rotate" in enabled:
        image, labels = rotate_pair(image, labels, _uniform(generator, -ROTATE_DEGREES, ROTATE_DEGREES), void)
    if "affine" in enabled:
        image, labels = affine_pair(image, labels, void=void, **random_affine(h, w, generator))  # type: ignore[arg-type]
    if "perspective" in enabled:
        image, labels = perspective_pair(image, labels, perspective_corners(h, w, PERSPECTIVE, generator), void)
    if "jitter" in enabled:
        image = jitter_image(image, generator)
    if "elastic" in enabled:
        warped, labels = elastic_deform(image.float(), labels, generator=generator, void=void, **ELASTIC)
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


def crop_scale_pair(image: torch.Tensor, labels: torch.Tensor, zoom: float, top: float, left: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A window of 1/``zoom`` of the size at relative position (``top``, ``left``) in 0..1, resized
    back to the full size (the lab's view of the training crop: image bilinear, labels nearest)."""
    h, w = image.shape[-2:]
    win_h, win_w = max(1, min(h, round(h / zoom))), max(1, min(w, round(w / zoom)))
    y0, x0 = round(top * (h - win_h)), round(left * (w - win_w))
    return resize_pair(image[..., y0 : y0 + win_h, x0 : x0 + win_w], labels[..., y0 : y0 + win_h, x0 : x0 + win_w],
                       (h, w))


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
             "affine": "affine warp (rotation ±{degrees:g}°, shift ±{translate:g}, zoom {scale[0]:g}-{scale[1]:g}, "
                       "shear ±{shear:g}°; void fill)".format(**AFFINE),
             "perspective": f"perspective warp (distortion {PERSPECTIVE:g}; void fill)",
             "elastic": "elastic warp (sigma {sigma} px on a {grid}x{grid} grid; void fill)".format(**ELASTIC),
             "cutmix": "CutMix (p {p:g}: a box from another image of the batch, labels pasted with it)".format(
                 **_mixing().CUTMIX),
             "mixup": "MixUp (p {p:g}: images blended with alpha {low:g}-1, soft labels "
                      "alpha*onehot(a) + (1-alpha)*onehot(b))".format(**_mixing().MIXUP)}
    return ", ".join(parts[a] for a in AUGMENTATIONS if a in enabled)


def _mixing():  # noqa: ANN202 - the mixing module imports this one
    from segdemo.training import mixing

    return mixing


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


def warp(images: torch.Tensor, labels: torch.Tensor, flow: torch.Tensor,
         void: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images (bilinear) and labels (nearest) at ``p + flow(p)``: mirrored at the borders
    (U-Net's tiles), or with ``void`` where the sample point leaves the image (black image there)."""
    n, _, h, w = images.shape
    flow = flow.to(images.device)
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device), torch.arange(w, device=images.device),
                            indexing="ij")
    px = xs[None].float() + flow[:, 0]
    py = ys[None].float() + flow[:, 1]
    grid = torch.stack([2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(images.float(), grid, mode="bilinear",
                           padding_mode="reflection" if void is None else "zeros", align_corners=True)
    warped_labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest",
                                  padding_mode="reflection" if void is None else "border",
                                  align_corners=True)[:, 0].round().to(labels.dtype)
    if void is not None:
        # nearest neighbour reads pixel round(p): outside when that index leaves 0..size-1
        outside = (px.round() < 0) | (px.round() > w - 1) | (py.round() < 0) | (py.round() > h - 1)
        warped_labels[outside] = void
    return warped, warped_labels


def elastic_deform(images: torch.Tensor, labels: torch.Tensor, alpha: float, sigma: float,
                   grid: int, generator: torch.Generator, void: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random elastic deformation of images ``[N, C, H, W]`` and their labels ``[N, H, W]``
    with one shared field per sample (the augmentation segdemo's U-Net trains with, mirrored
    at the borders; with ``void``, label pixels sampled from outside the image are void)."""
    n, _, h, w = images.shape
    flow = elastic_displacement(h, w, sigma, grid, generator, n=n, alpha=alpha)
    return warp(images, labels, flow, void)
