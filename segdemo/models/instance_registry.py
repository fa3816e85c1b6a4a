"""The shipped instance segmentation models: their cards and weights in ``assets/models/instance/``.

Instance models are not semantic models (they output boxes, scores and one mask
per object, not a label map), so they have their own folder and this small
reader; the semantic registry (:mod:`segdemo.models.registry`) globs
``assets/models/*.json`` and never sees them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from segdemo import config

INSTANCE_MODELS_DIR = config.SHIPPED_MODELS_DIR / "instance"


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


def load_instance_model(name: str, folder: Path = INSTANCE_MODELS_DIR) -> tuple[nn.Module, dict[str, Any]]:
    """The shipped instance model ``name`` in eval mode, with its card; KeyError lists the known ones."""
    from segdemo.models.maskrcnn import load_instance_state

    cards = list_instance_cards(folder)
    if name not in cards:
        raise KeyError(f"unknown instance model {name!r}; shipped: {', '.join(cards) or 'none'}")
    card = cards[name]
    model = instance_builders()[card["builder"]](**card.get("builder_kwargs", {}))
    load_instance_state(model, folder / card["weights_file"])
    return model.eval(), card
