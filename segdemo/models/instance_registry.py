"""The instance segmentation models: segdemo's shipped ones and torchvision's Mask R-CNN (COCO).

Instance models are not semantic models (they output boxes, scores and one mask
per object, not a label map), so they have their own small registry; the
semantic registry (:mod:`segdemo.models.registry`) globs ``assets/models/*.json``
and never sees them. As there, each :class:`InstanceEntry` carries its weights'
metadata (categories, metrics, size) as the one source of truth:

* segdemo's own models: a card in ``assets/models/instance/`` next to its
  safetensors file (listed only when the weights are there);
* torchvision's ``maskrcnn_resnet50_fpn`` with ``MaskRCNN_ResNet50_FPN_Weights.COCO_V1``
  (metadata read from the enum), found or downloaded like the other torchvision
  weights (:mod:`segdemo.models.weights`: weights folder, torch cache, download
  with progress, a clear message offline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from torch import nn

from segdemo import config
from segdemo.models.registry import WeightsSpec

INSTANCE_MODELS_DIR = config.SHIPPED_MODELS_DIR / "instance"
TORCHVISION_MASKRCNN = "maskrcnn_resnet50_fpn_coco"


@dataclass(frozen=True)
class InstanceEntry:
    """One instance model: how to build it, its weights and what its label ids mean."""

    name: str
    architecture: str
    backbone: str
    categories: tuple[str, ...]  # label id -> name; 0 = "__background__", "N/A" for COCO's unused ids
    trained_on: str  # the data set (and its domain) in a few words
    weights: WeightsSpec
    build: Callable[[], nn.Module] = field(compare=False, repr=False)
    metrics: dict[str, float] = field(default_factory=dict, compare=False)
    metrics_source: str = ""
    num_params: int | None = None
    source: str = "segdemo"
    card: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def display_name(self) -> str:
        return f"{self.architecture} · {self.backbone}"


def instance_builders() -> dict[str, Any]:
    """Builder name (the card's ``builder``) -> function building the network with random weights."""
    from segdemo.models.maskrcnn import maskrcnn_mobilenet_v2

    return {"maskrcnn_mobilenet_v2": maskrcnn_mobilenet_v2}


def list_instance_cards(folder: Path = INSTANCE_MODELS_DIR) -> dict[str, dict[str, Any]]:
    """Every card in ``folder`` whose weights file is there, by model name."""
    cards = {}
    for path in sorted(folder.glob("*.json")):
        card = json.loads(path.read_text(encoding="utf-8"))
        if card.get("task") == "instance" and (path.parent / card["weights_file"]).is_file():
            cards[card["name"]] = {**card, "card_path": str(path)}
    return cards


def _entry_from_card(card: dict[str, Any], folder: Path) -> InstanceEntry:
    builder = instance_builders()[card["builder"]]
    kwargs = dict(card.get("builder_kwargs", {}))
    weights_file = folder / card["weights_file"]
    return InstanceEntry(
        name=card["name"], architecture="Mask R-CNN", backbone=card.get("backbone", ""),
        categories=tuple(card.get("categories", ("__background__", "person"))),
        trained_on=card.get("dataset", ""),
        weights=WeightsSpec(filename=weights_file.name, size_bytes=weights_file.stat().st_size,
                            shipped_path=weights_file),
        build=lambda: builder(**kwargs),
        metrics={k: float(v) for k, v in card.get("metrics", {}).items() if isinstance(v, (int, float))},
        metrics_source=card.get("metrics_source", ""), num_params=card.get("num_params"), card=card)


@lru_cache(maxsize=1)  # constant: read from torchvision's enum once, not on every page rerun
def _torchvision_maskrcnn() -> InstanceEntry:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights, maskrcnn_resnet50_fpn

    w = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    meta = w.meta
    metrics = next(iter(meta["_metrics"].values()))
    return InstanceEntry(
        name=TORCHVISION_MASKRCNN, architecture="Mask R-CNN", backbone="ResNet-50-FPN",
        categories=tuple(meta["categories"]), trained_on="COCO train2017 (80 thing classes)",
        weights=WeightsSpec(filename=w.url.rsplit("/", 1)[-1], url=w.url,
                            size_bytes=int(meta["_file_size"] * 1024 * 1024)),
        build=lambda: maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                            num_classes=len(meta["categories"])),
        metrics={"box_map": metrics["box_map"] / 100.0, "mask_map": metrics["mask_map"] / 100.0},
        metrics_source="COCO val2017, torchvision", num_params=int(meta["num_params"]), source="torchvision")


def list_instance_models(folder: Path = INSTANCE_MODELS_DIR) -> list[InstanceEntry]:
    """segdemo's shipped instance models (with weights present), then torchvision's Mask R-CNN."""
    return [_entry_from_card(c, folder) for c in list_instance_cards(folder).values()] + [_torchvision_maskrcnn()]


def get_instance_entry(name: str, folder: Path = INSTANCE_MODELS_DIR) -> InstanceEntry:
    """The entry ``name``; KeyError lists the known ones."""
    entries = {e.name: e for e in list_instance_models(folder)}
    if name not in entries:
        raise KeyError(f"unknown instance model {name!r}; known: {', '.join(entries)}")
    return entries[name]


def load_instance_model(name: str, folder: Path = INSTANCE_MODELS_DIR, allow_random: bool | None = None,
                        fetch: bool = False, progress: Any = None) -> tuple[nn.Module, InstanceEntry, Path | None]:
    """The instance model ``name`` in eval mode, its entry and its weights file (None: random weights).

    Weights are found like every model's (:func:`segdemo.models.weights.locate`);
    with ``fetch`` a missing torchvision file is downloaded (``progress(done, total)``).
    Without weights, ``allow_random`` (default ``$SEGDEMO_ALLOW_RANDOM_WEIGHTS``, tests
    only) gives random heads; otherwise :class:`~segdemo.models.weights.WeightsMissingError`.
    """
    from segdemo.models import weights
    from segdemo.models.maskrcnn import load_instance_state

    entry = get_instance_entry(name, folder)
    if allow_random is None:
        allow_random = config.allow_random_weights()
    path = weights.locate(entry)  # type: ignore[arg-type]
    if path is None and fetch and entry.weights.url:
        try:
            path = weights.download(entry, progress)  # type: ignore[arg-type]
        except weights.WeightsMissingError:
            if not allow_random:
                raise
    if path is None and not allow_random:
        raise weights.WeightsMissingError(entry, "weights.reason.not_found")  # type: ignore[arg-type]
    import torch

    torch.manual_seed(0)  # random-weight fallbacks are at least reproducible
    model = entry.build()
    if path is not None:
        if path.suffix == ".safetensors":
            load_instance_state(model, path)
        else:
            weights.load_state_into(model, weights.read_state_dict(path))
    return model.eval(), entry, path
