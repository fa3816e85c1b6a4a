"""Pretrained backbones as first-class registry entries.

Like torchvision's weights enums, each :class:`BackboneEntry` carries its
metadata (source, what it was pretrained on, feature strides and channels,
published accuracy) as the one source of truth. segdemo ships one backbone that
works offline — torchvision's own MobileNetV2 ``IMAGENET1K_V1``, stored as
fp16 safetensors with a card (``assets/models/backbones/mobilenet_v2_imagenet.json``)
that holds its origin, sha256, licence and the 1000 ImageNet class names. The
other ImageNet backbones of torchvision's segmentation models are listed with
their official download (they need a network).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from segdemo import config

BACKBONES_DIR = config.SHIPPED_MODELS_DIR / "backbones"
MOBILENET_V2_CARD = BACKBONES_DIR / "mobilenet_v2_imagenet.json"


@dataclass(frozen=True)
class BackboneEntry:
    """One pretrained backbone: where its weights come from and what its features are."""

    name: str
    display_name: str
    source: str
    pretrained_on: str
    feature_strides: tuple[int, ...]
    feature_channels: tuple[int, ...]
    weights_filename: str
    url: str | None = None
    shipped_path: Path | None = None
    imagenet_top1: float | None = None
    num_params: int | None = None
    card: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def offline(self) -> bool:
        """Whether the weights are shipped with segdemo (usable without a network)."""
        return self.shipped_path is not None and self.shipped_path.is_file()

    @property
    def categories(self) -> list[str]:
        """ImageNet class names (empty when the card does not ship them)."""
        return list(self.card.get("categories", []))


def read_backbone_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A backbone state dict in float32: safetensors, or a ``.pth`` read with ``weights_only=True``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _shipped_mobilenet_v2() -> BackboneEntry | None:
    if not MOBILENET_V2_CARD.is_file():
        return None
    card = json.loads(MOBILENET_V2_CARD.read_text(encoding="utf-8"))
    return BackboneEntry(
        name=card["name"],
        display_name=card["display_name"],
        source=card["source"],
        pretrained_on=card["pretrained_on"],
        feature_strides=tuple(card["feature_strides"]),
        feature_channels=tuple(card["feature_channels"]),
        weights_filename=card["weights_file"],
        url=card.get("url"),
        shipped_path=MOBILENET_V2_CARD.with_name(card["weights_file"]),
        imagenet_top1=card.get("imagenet_top1"),
        num_params=card.get("num_params"),
        card=card,
    )


# (name, display, torchvision builder, weights enum, strides, channels) of the online ones
_TORCHVISION_BACKBONES = (
    ("resnet50_imagenet", "ResNet-50", "ResNet50_Weights", (4, 8, 16, 32), (256, 512, 1024, 2048)),
    ("resnet101_imagenet", "ResNet-101", "ResNet101_Weights", (4, 8, 16, 32), (256, 512, 1024, 2048)),
    ("mobilenet_v3_large_imagenet", "MobileNetV3-Large", "MobileNet_V3_Large_Weights",
     (2, 4, 8, 16, 32), (16, 24, 40, 112, 960)),
)


def _torchvision_backbones() -> list[BackboneEntry]:
    from torchvision import models

    entries = []
    for name, display, enum_name, strides, channels in _TORCHVISION_BACKBONES:
        weights = getattr(models, enum_name).IMAGENET1K_V1
        meta = weights.meta
        entries.append(BackboneEntry(
            name=name, display_name=display, source="torchvision " + enum_name + ".IMAGENET1K_V1",
            pretrained_on="ImageNet-1k", feature_strides=strides, feature_channels=channels,
            weights_filename=weights.url.rsplit("/", 1)[-1], url=weights.url,
            imagenet_top1=float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
            num_params=int(meta["num_params"]),
        ))
    return entries


def list_backbones() -> list[BackboneEntry]:
    """The shipped backbone first, then torchvision's online ones."""
    shipped = _shipped_mobilenet_v2()
    return ([shipped] if shipped else []) + _torchvision_backbones()


def get_backbone(name: str) -> BackboneEntry:
    """The backbone called ``name``; a KeyError lists the known ones."""
    found = {b.name: b for b in list_backbones()}
    if name not in found:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(found)}")
    return found[name]


def mobilenet_v2_weights_path() -> Path:
    """The shipped ImageNet MobileNetV2 weights (fp16 safetensors)."""
    entry = get_backbone("mobilenet_v2_imagenet")
    assert entry.shipped_path is not None
    return entry.shipped_path


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ship_mobilenet_v2(source: str | Path, out_dir: Path = BACKBONES_DIR) -> Path:
    """Convert torchvision's ``mobilenet_v2-b0353104.pth`` to fp16 safetensors plus its card.

    The card's metadata (categories, published top-1, parameters, recipe) is read
    from torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` enum.
    """
    from safetensors.torch import save_file
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    source = Path(source)
    digest = sha256_of(source)
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    expected_prefix = weights.url.rsplit("-", 1)[-1].split(".")[0]
    if not digest.startswith(expected_prefix):
        raise ValueError(f"{source} is not torchvision's file (sha256 {digest[:8]}, expected {expected_prefix})")
    state = torch.load(source, map_location="cpu", weights_only=True)
    net = mobilenet_v2()
    net.load_state_dict(state)  # strict: every key matches torchvision's network
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_file = "mobilenet_v2_imagenet.safetensors"
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(out_dir / weights_file))
    meta = weights.meta
    card = {
        "name": "mobilenet_v2_imagenet",
        "display_name": "MobileNetV2",
        "source": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1",
        "url": weights.url,
        "source_file": source.name,
        "source_sha256": digest,
        "weights_file": weights_file,
        "weights_dtype": "float16",
        "pretrained_on": "ImageNet-1k",
        "imagenet_top1": float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
        "imagenet_top5": float(meta["_metrics"]["ImageNet-1K"]["acc@5"]),
        "num_params": int(meta["num_params"]),
        "recipe": meta.get("recipe"),
        "licence": "torchvision's pretrained weights are published with torchvision (BSD-3-Clause); "
                   "trained on ImageNet-1k (see ImageNet's terms of access)",
        "feature_strides": [2, 4, 8, 16, 32],
        "feature_channels": [16, 24, 32, 96, 320],
        "preprocess": {"resize_size": 256, "crop_size": 224, "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]},
        "categories": list(meta["categories"]),
    }
    card_path = out_dir / "mobilenet_v2_imagenet.json"
    card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return card_path
