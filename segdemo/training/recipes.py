"""segdemo's training recipes: how each shipped model is built, trained and scored.

The ``python -m segdemo train`` command (:mod:`segdemo.cli.train`) runs
:func:`segdemo.training.loop.train` on one of these recipes; the model card is
written by :mod:`segdemo.training.cards`.

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

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from segdemo import config
from segdemo.models.builders import BUILDERS


RUNS_DIR = config.REPO_DIR / "runs"

# CamVid: trained and evaluated at half resolution (240x180) to fit a CPU budget.
CAMVID_SIZE = (240, 180)  # (width, height) of the network input
CAMVID_EVAL_SIZES = ((240, 180), (360, 270), (480, 360))  # the cards' "val_by_input_size"
CAMVID_CROP = (224, 176)  # (width, height) of the random training crops
TRAIN_STORE_SCALE = 0.75  # training images are kept in memory at 360x270
ISBI_TRAIN_SLICES = list(range(0, 25))
ISBI_VAL_SLICES = list(range(25, 30))  # held out from training: the card's val numbers
ISBI_MEAN, ISBI_STD = (0.5,), (0.5,)
# Penn-Fudan person vs background: "full resolution" is a 360-px shorter side (the photos'
# median is 381), so camvid_batch's 0.5-0.75 scales and 224x176 crops apply unchanged.
PENNFUDAN_FULL_SHORT_SIDE = 360
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
    # the distillation student: truncated MobileNetV2 (features[:14], 96 ch) + a 64-ch LR-ASPP head
    "lraspp_mobilenet_v2_slim": Recipe("lraspp_mobilenet_v2_slim", {"num_classes": 11, "inter_channels": 64,
                                                                    "features_end": 14},
                                       "camvid", "LR-ASPP", "MobileNetV2 truncated at 96 ch · CamVid", 16),
    # person vs background on Penn-Fudan: the semantic twin of maskrcnn_mobilenet_v2_pennfudan
    "lraspp_mobilenet_v2_person": Recipe("lraspp_mobilenet_v2", {"num_classes": 2, "inter_channels": 128},
                                         "pennfudan", "LR-ASPP", "MobileNetV2 · Penn-Fudan", 16),
    "unet": Recipe("unet", {"in_channels": 1, "num_classes": 2, "base": 16, "depth": 4,
                            "padding": "valid", "batch_norm": True, "tile_output": 196}, "isbi2012",
                   "U-Net", "slim (16 ch), unpadded · ISBI 2012", None, lr=1e-3, batch_size=4,
                   extra={"tile_input": 380}),
}



def build(recipe: Recipe) -> nn.Module:
    """A freshly initialised network for ``recipe``."""
    return BUILDERS[recipe.builder](**recipe.builder_kwargs)


def with_unet_base(recipe: Recipe, base: int) -> Recipe:
    """The U-Net recipe with ``base`` channels in its first level (16 in the shipped recipe)."""
    if recipe.builder != "unet":
        raise SystemExit("--unet-base applies to --model unet only")
    kwargs = {**recipe.builder_kwargs, "base": base}
    return replace(recipe, builder_kwargs=kwargs, backbone=f"slim ({base} ch), unpadded · ISBI 2012")



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


def parse_size(text: str) -> tuple[int, int]:
    """``"360x270"`` -> (360, 270), (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"sizes are WIDTHxHEIGHT, e.g. 360x270 (got {text!r})") from None
    return w, h
