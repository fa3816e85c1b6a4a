"""The one model registry: every page and the CLI find models here.

In the spirit of torchvision's weights enums, each :class:`ModelEntry` carries
the metadata of its weights (categories via the label set, preprocessing,
published metrics, size) as the single source of truth for that model.

Two kinds of entries exist:

* torchvision's six segmentation models, whose metadata is read from their
  official ``*_Weights.COCO_WITH_VOC_LABELS_V1`` enums;
* segdemo's own trained models, described by a JSON model card in
  ``assets/models/`` next to a ``.safetensors`` file (see :func:`entry_from_card`).

Further entries (a user's checkpoint) go through :func:`register`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from segdemo import config
from segdemo.data.labels import LabelSet, get_label_set

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor.

    ``resize_size`` is the length of the shorter side after resizing (torchvision's
    segmentation recipe uses 520); ``None`` keeps the original size.
    ``pad_multiple`` pads (by reflection) to a multiple of it, for networks such
    as U-Net whose pooling needs divisible sizes; the output is cropped back.
    """

    resize_size: int | None = 520
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    grayscale: bool = False
    pad_multiple: int = 1


@dataclass(frozen=True)
class WeightsSpec:
    """Where the trained weights of an entry live.

    ``filename`` is looked up in the weights folder, then the torch cache;
    ``shipped_path`` points at weights shipped inside the repository;
    ``url`` is the official download (None for weights that are only shipped).
    """

    filename: str
    url: str | None = None
    size_bytes: int | None = None
    shipped_path: Path | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One selectable model: an architecture, a backbone and its trained weights."""

    name: str
    architecture: str
    backbone: str
    label_set_key: str
    build: Callable[[], Any] = field(compare=False, repr=False)
    weights: WeightsSpec
    preprocess: Preprocess = Preprocess()
    metrics: dict[str, float] = field(default_factory=dict, compare=False)
    metrics_source: str = ""
    num_params: int | None = None
    gflops: float | None = None
    source: str = "torchvision"
    offline_default: bool = False
    output_stride: int | None = None
    card: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label_set(self) -> LabelSet:
        return get_label_set(self.label_set_key)

    @property
    def display_name(self) -> str:
        return f"{self.architecture} · {self.backbone}"


# ---------------------------------------------------------------- torchvision

# (name, architecture, backbone, builder attribute, weights enum attribute, aux, output stride)
_TORCHVISION_MODELS = (
    ("fcn_resnet50", "FCN", "ResNet-50", "fcn_resnet50", "FCN_ResNet50_Weights", True, 8),
    ("fcn_resnet101", "FCN", "ResNet-101", "fcn_resnet101", "FCN_ResNet101_Weights", True, 8),
    ("deeplabv3_resnet50", "DeepLabV3", "ResNet-50", "deeplabv3_resnet50",
     "DeepLabV3_ResNet50_Weights", True, 8),
    ("deeplabv3_resnet101", "DeepLabV3", "ResNet-101", "deeplabv3_resnet101",
     "DeepLabV3_ResNet101_Weights", True, 8),
    ("deeplabv3_mobilenet_v3_large", "DeepLabV3", "MobileNetV3-Large",
     "deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights", True, 16),
    ("lraspp_mobilenet_v3_large", "LR-ASPP", "MobileNetV3-Large", "lraspp_mobilenet_v3_large",
     "LRASPP_MobileNet_V3_Large_Weights", False, 16),
)


def _torchvision_builder(builder_name: str, aux: bool, num_classes: int) -> Callable[[], Any]:
    def build() -> Any:
        from torchvision.models import segmentation

        fn = getattr(segmentation, builder_name)
        kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None,
                                  "num_classes": num_classes}
        if aux:
            # Built with the aux head so the official state dict loads strictly;
            # segdemo.models.weights drops the head afterwards (it is training-only).
            kwargs["aux_loss"] = True
        return fn(**kwargs)

    return build


def _torchvision_entries() -> list[ModelEntry]:
    from torchvision.models import segmentation

    entries = []
    for name, arch, backbone, builder, enum_name, aux, stride in _TORCHVISION_MODELS:
        weights = getattr(segmentation, enum_name).COCO_WITH_VOC_LABELS_V1
        meta = weights.meta
        metrics = next(iter(meta["_metrics"].values()))
        transforms = weights.transforms()
        label_set = get_label_set("voc")
        if tuple(meta["categories"]) != tuple(
            "__background__" if c == "background" else c for c in label_set.classes
        ):
            raise RuntimeError(f"{name}: torchvision categories differ from the VOC label set")
        entries.append(
            ModelEntry(
                name=name,
                architecture=arch,
                backbone=backbone,
                label_set_key="voc",
                build=_torchvision_builder(builder, aux, len(meta["categories"])),
                weights=WeightsSpec(
                    filename=weights.url.rsplit("/", 1)[-1],
                    url=weights.url,
                    size_bytes=int(meta["_file_size"] * 1024 * 1024),
                ),
                preprocess=Preprocess(
                    resize_size=int(transforms.resize_size[0]),
                    mean=tuple(transforms.mean),
                    std=tuple(transforms.std),
                ),
                metrics={"miou": metrics["miou"] / 100.0, "pixel_acc": metrics["pixel_acc"] / 100.0},
                metrics_source="COCO val2017 (VOC labels), torchvision",
                num_params=int(meta["num_params"]),
                gflops=float(meta["_ops"]),
                source="torchvision",
                output_stride=stride,
            )
        )
    return entries


# ---------------------------------------------------------------- shipped models


def entry_from_card(card_path: Path) -> ModelEntry:
    """Build an entry from a segdemo model card (JSON) next to its safetensors file.

    The card names a builder in :data:`segdemo.models.BUILDERS` and its keyword
    arguments, so the card alone says how to rebuild the network.
    """
    card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    from segdemo.models.builders import BUILDERS

    builder = BUILDERS[card["builder"]]
    kwargs = dict(card.get("builder_kwargs", {}))
    pre = card.get("preprocess", {})
    weights_file = Path(card_path).with_name(card.get("weights_file", Path(card_path).stem + ".safetensors"))
    return ModelEntry(
        name=card["name"],
        architecture=card["architecture"],
        backbone=card["backbone"],
        label_set_key=card["label_set"],
        build=lambda: builder(**kwargs),
        weights=WeightsSpec(
            filename=weights_file.name,
            url=card.get("url"),
            size_bytes=weights_file.stat().st_size if weights_file.exists() else None,
            shipped_path=weights_file,
        ),
        preprocess=Preprocess(
            resize_size=pre.get("resize_size"),
            mean=tuple(pre.get("mean", IMAGENET_MEAN)),
            std=tuple(pre.get("std", IMAGENET_STD)),
            grayscale=bool(pre.get("grayscale", False)),
            pad_multiple=int(pre.get("pad_multiple", 1)),
        ),
        metrics={k: float(v) for k, v in card.get("metrics", {}).items() if isinstance(v, (int, float))},
        metrics_source=card.get("metrics_source", card.get("dataset", "")),
        num_params=card.get("num_params"),
        gflops=card.get("gflops"),
        source="segdemo",
        offline_default=bool(card.get("offline_default", False)),
        output_stride=card.get("output_stride"),
        card=card,
    )


def _shipped_entries() -> list[ModelEntry]:
    cards = sorted(config.SHIPPED_MODELS_DIR.glob("*.json"))
    return [entry_from_card(p) for p in cards]


# ---------------------------------------------------------------- registry API

_lock = threading.Lock()
_entries: dict[str, ModelEntry] | None = None


def _all() -> dict[str, ModelEntry]:
    global _entries
    with _lock:
        if _entries is None:
            found: dict[str, ModelEntry] = {}
            for entry in _shipped_entries() + _torchvision_entries():
                found[entry.name] = entry
            _entries = found
        return _entries


def register(entry: ModelEntry) -> None:
    """Add (or replace) an entry, e.g. a user's own checkpoint."""
    _all()[entry.name] = entry


def unregister(name: str) -> None:
    """Remove an entry added with :func:`register` (a user's model that is no longer wanted)."""
    with _lock:
        if _entries is not None:
            _entries.pop(name, None)


def list_models() -> list[ModelEntry]:
    """All entries: segdemo's shipped models first, then torchvision's."""
    return list(_all().values())


def get(name: str) -> ModelEntry:
    """The entry called ``name``; a KeyError names the known models."""
    try:
        return _all()[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_all())}") from None


def architectures() -> list[str]:
    """Distinct architectures, in registry order."""
    return list(dict.fromkeys(e.architecture for e in list_models()))


def backbones(architecture: str) -> list[str]:
    """Backbones that exist for ``architecture`` (only valid pairs)."""
    return [e.backbone for e in list_models() if e.architecture == architecture]


def find(architecture: str, backbone: str) -> ModelEntry:
    """The entry for an (architecture, backbone) pair."""
    for e in list_models():
        if e.architecture == architecture and e.backbone == backbone:
            return e
    raise KeyError(f"no model {architecture} with backbone {backbone}")


def default_model() -> ModelEntry:
    """The model a fresh session starts with: the shipped offline default, if any."""
    models = list_models()
    for e in models:
        if e.offline_default:
            return e
    return next(e for e in models if e.name == "lraspp_mobilenet_v3_large")
