"""Logic of the augmentation lab: each transform of :mod:`segdemo.training.augment` and
:mod:`segdemo.training.mixing` (the ones training uses) applied to an image and its
label map together, with explicit parameters, a seeded random draw, and for CutMix /
MixUp the label shares, the per-class probability map and the loss the soft label implies.

Images here are RGB uint8 H x W x 3 arrays, label maps H x W uint8 in CamVid's 11
classes (11 = void); the lab works at most at :data:`MAX_SIDE` pixels.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.data.labels import CAMVID
from segdemo.training import augment as A
from segdemo.training import mixing as M
from segdemo.training.losses import segmentation_loss

MAX_SIDE = 480  # CamVid's label resolution (480x360); uploads are scaled down to it
VOID = CAMVID.ignore_index
LOSS_MODEL = "lraspp_mobilenet_v2_camvid"  # the shipped CamVid default scores the MixUp image
RESULTS_FILE = Path(__file__).resolve().parents[2] / "assets" / "results" / "augmentation_fewlabel.json"
_lock = threading.Lock()


@dataclass(frozen=True)
class Param:
    """One control: range, default and step (an integer control when ``step`` is an int)."""

    name: str
    low: float
    high: float
    default: float
    step: float


OPS: dict[str, tuple[Param, ...]] = {
    "photometric": (Param("brightness", 0.4, 1.6, 1.3, 0.05), Param("contrast", 0.4, 1.6, 1.0, 0.05),
                    Param("saturation", 0.0, 2.0, 1.0, 0.05), Param("hue", -0.5, 0.5, 0.0, 0.01)),
    "crop_scale": (Param("zoom", 1.0, 3.0, 1.6, 0.1), Param("top", 0.0, 1.0, 0.5, 0.05),
                   Param("left", 0.0, 1.0, 0.5, 0.05)),
    "flip": (Param("horizontal", 0, 1, 1, 1),),
    "rotate": (Param("degrees", -45.0, 45.0, 15.0, 1.0),),
    "affine": (Param("angle", -30.0, 30.0, 10.0, 1.0), Param("dx", -0.3, 0.3, 0.1, 0.01),
               Param("dy", -0.3, 0.3, 0.0, 0.01), Param("scale", 0.6, 1.4, 1.1, 0.05),
               Param("shear", -25.0, 25.0, 8.0, 1.0)),
    "perspective": (Param("distortion", 0.0, 0.8, 0.4, 0.05), Param("seed", 0, 999, 0, 1)),
    "elastic": (Param("sigma", 0.0, 30.0, 10.0, 1.0), Param("grid", 2, 8, 3, 1), Param("seed", 0, 999, 0, 1)),
    "cutmix": (Param("share", 0.0, 1.0, 0.3, 0.01), Param("cy", 0.0, 1.0, 0.5, 0.01),
               Param("cx", 0.0, 1.0, 0.5, 0.01)),
    "mixup": (Param("alpha", 0.0, 1.0, 0.6, 0.01),),
}
MIXING_OPS = ("cutmix", "mixup")


def defaults(op: str) -> dict[str, float]:
    """The default parameters of ``op``."""
    return {p.name: p.default for p in OPS[op]}


def random_params(op: str, seed: int) -> dict[str, float]:
    """A seeded random draw of ``op``'s parameters, uniform in each control's range, on its step."""
    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    for p in OPS[op]:
        value = p.low + (p.high - p.low) * float(torch.rand(1, generator=gen))
        value = p.low + round((value - p.low) / p.step) * p.step
        out[p.name] = (int(round(value)) if isinstance(p.step, int)
                       else round(min(max(value, p.low), p.high), 4))
    return out


@lru_cache(maxsize=8)
def camvid_frame(index: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CamVid ``split`` frame ``index`` (sorted-name order) and its label map at 480x360."""
    from segdemo.data import datasets

    images, labels, _ = datasets.load_camvid(split, indices=[int(index)])
    return images[0], labels[0]


@lru_cache(maxsize=2)
def camvid_count(split: str = "train") -> int:
    """How many frames the CamVid split has (raises DatasetMissingError without the data)."""
    from segdemo.data import datasets

    return len(datasets.camvid_files(split))


def fit(rgb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale an image and its label map (nearest) down so that the longer side is at most MAX_SIDE."""
    h, w = labels.shape
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return rgb, labels
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return to_numpy(*A.resize_pair(*to_torch(rgb, labels), size))


def match(rgb: np.ndarray, labels: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The second image of CutMix / MixUp resized to the first one's size (labels nearest)."""
    if labels.shape == hw:
        return rgb, labels
    return to_numpy(*A.resize_pair(*to_torch(rgb, labels), hw))


def to_torch(rgb: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].contiguous(),
            torch.from_numpy(np.ascontiguousarray(labels))[None])


def to_numpy(image: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    image = image.float().clamp(0, 255).round().to(torch.uint8)
    return image[0].permute(1, 2, 0).numpy(), labels[0].to(torch.uint8).numpy()


def apply(op: str, rgb: np.ndarray, labels: np.ndarray, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """One single-image transform (not CutMix / MixUp) on the image and its labels."""
    image, lbl = to_torch(rgb, labels)
    h, w = labels.shape
    p = {**defaults(op), **params}
    if op == "photometric":
        image = A.photometric(image, p["brightness"], p["contrast"], p["saturation"], p["hue"])
    elif op == "crop_scale":
        image, lbl = A.crop_scale_pair(image, lbl, p["zoom"], p["top"], p["left"])
    elif op == "flip":
        if int(p["horizontal"]):
            image, lbl = image.flip(-1), lbl.flip(-1)
    elif op == "rotate":
        image, lbl = A.rotate_pair(image, lbl, p["degrees"], VOID)
    elif op == "affine":
        image, lbl = A.affine_pair(image, lbl, p["angle"], (round(p["dx"] * w), round(p["dy"] * h)), p["scale"],
                                   p["shear"], VOID)
    elif op == "perspective":
        corners = A.perspective_corners(h, w, p["distortion"], torch.Generator().manual_seed(int(p["seed"])))
        image, lbl = A.perspective_pair(image, lbl, corners, VOID)
    elif op == "elastic":
        image, lbl = A.elastic_deform(image.float(), lbl, 1.0, p["sigma"], int(p["grid"]),
                                      torch.Generator().manual_seed(int(p["seed"])), void=VOID)
    else:
        raise ValueError(f"unknown or two-image augmentation {op!r}")
    return to_numpy(image, lbl)


def colour(labels: np.ndarray) -> np.ndarray:
    """The label map in CamVid's palette (void black)."""
    from segdemo.render.overlay import colorize

    return colorize(labels, CAMVID)


def class_names() -> list[str]:
    """CamVid's class names, index order (void last)."""
    return list(CAMVID.classes)


def class_shares(labels: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-class share of the (soft or hard) label mass, void excluded."""
    t = torch.as_tensor(labels)
    if not t.is_floating_point():
        t = t[None]
    return M.label_shares(t, CAMVID.num_classes, VOID).numpy()


@dataclass(frozen=True)
class CutMixView:
    image: np.ndarray
    labels: np.ndarray
    box: M.Box
    share_b: float  # pixels from the second image / all pixels
    classes_a: np.ndarray  # per-class pixel counts coming from each source (void in column 11)
    classes_b: np.ndarray


def cutmix(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], params: dict[str, float]) -> CutMixView:
    """CutMix: ``params`` share / cy / cx place the box of image b pasted into image a."""
    (ra, la), (rb, lb) = a, match(*b, a[1].shape)
    h, w = la.shape
    p = {**defaults("cutmix"), **params}
    box = M.cutmix_box(h, w, p["share"], p["cy"], p["cx"])
    image, lbl = M.cutmix_pair(*to_torch(ra, la), *to_torch(rb, lb), box)
    inside = np.zeros((h, w), bool)
    inside[box.top : box.top + box.height, box.left : box.left + box.width] = True
    out = to_numpy(image, lbl)
    count = lambda m: np.bincount(out[1][m].astype(np.int64), minlength=VOID + 1)[: VOID + 1]  # noqa: E731
    return CutMixView(out[0], out[1], box, box.area / (h * w), count(~inside), count(inside))


@dataclass(frozen=True)
class MixUpView:
    image: np.ndarray
    soft: np.ndarray  # C x H x W: alpha * onehot(a) + (1 - alpha) * onehot(b)
    alpha: float


def mixup(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], alpha: float) -> MixUpView:
    """MixUp of image a (weight ``alpha``) and b, with the soft label map."""
    (ra, la), (rb, lb) = a, match(*b, a[1].shape)
    image, soft = M.mixup_pair(*to_torch(ra, la), *to_torch(rb, lb), float(alpha), CAMVID.num_classes, VOID)
    return MixUpView(image[0].permute(1, 2, 0).numpy(), soft[0].numpy(), float(alpha))


def probability_image(soft: np.ndarray, cls: int) -> np.ndarray:
    """Class ``cls``'s probability per pixel as an RGB image: black 0 to the class colour at 1."""
    colour = CAMVID.palette_array()[cls].astype(np.float32)
    return (soft[cls][..., None] * colour).round().astype(np.uint8)


@lru_cache(maxsize=1)
def _loss_model() -> torch.nn.Module:
    from segdemo.models.weights import load_model

    return load_model(LOSS_MODEL, "cpu").eval()


def model_logits(rgb: np.ndarray) -> torch.Tensor:
    """The shipped CamVid model's logits [1, C, H, W] at the image's size (bilinear upsampling)."""
    from segdemo.inference.pipeline import normalize
    from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD

    x = normalize(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None], IMAGENET_MEAN, IMAGENET_STD)
    with _lock, torch.inference_mode():
        logits = _loss_model()(x).float()
    return F.interpolate(logits, size=rgb.shape[:2], mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class ImpliedLoss:
    soft: float  # the model's cross-entropy against the soft MixUp label
    hard_a: float  # ... against image a's hard label alone (what training without MixUp would use)
    floor: float  # the least any prediction can reach on the soft label (its entropy)


def fingerprint(*arrays: np.ndarray) -> str:
    """A digest of arrays' contents (a cache key for slow results)."""
    import hashlib

    h = hashlib.sha1()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def implied_loss(view: MixUpView, labels_a: np.ndarray) -> ImpliedLoss | None:
    """The loss MixUp's soft label implies for the shipped model's prediction on the mixed image
    (unweighted; void mass excluded as in training, see :mod:`segdemo.training.losses`);
    None when the shipped model's weights are missing."""
    from segdemo.models.weights import WeightsMissingError

    try:
        logits = model_logits(view.image)
    except WeightsMissingError:
        return None
    soft = torch.from_numpy(view.soft)[None]
    hard = torch.from_numpy(labels_a.astype(np.int64))[None]
    # the best prediction is the pixel's soft row renormalised: loss = sum -t log(t / mass) / sum t
    mass = soft.sum(1, keepdim=True)
    ratio = torch.where(soft > 0, soft / mass.clamp_min(1e-12), torch.ones_like(soft))
    floor = float(-(soft * ratio.log()).sum() / soft.sum().clamp_min(1e-12))
    return ImpliedLoss(float(segmentation_loss(logits, soft)), float(segmentation_loss(logits, hard, None, VOID)),
                       floor)


def results_table() -> dict | None:
    """The recorded few-label comparison (assets/results/augmentation_fewlabel.json), or None."""
    if not RESULTS_FILE.exists():
        return None
    return json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
