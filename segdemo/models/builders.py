"""The builder names model cards use, mapped to segdemo's own networks.

``BUILDERS`` maps the ``builder`` name used in model cards to a function that
builds the network with random initialisation.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from segdemo.models.deeplab_slim import deeplab_slim
from segdemo.models.fcn import fcn8s, fcn16s, fcn32s
from segdemo.models.mobilenet_v2 import deeplabv3_mobilenet_v2, lraspp_mobilenet_v2, lraspp_mobilenet_v2_slim
from segdemo.models.unet import unet

BUILDERS: dict[str, Callable[..., Any]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "unet": unet,
    "deeplab_slim": deeplab_slim,
    "deeplabv3_mobilenet_v2": deeplabv3_mobilenet_v2,
    "lraspp_mobilenet_v2": lraspp_mobilenet_v2,
    "lraspp_mobilenet_v2_slim": lraspp_mobilenet_v2_slim,
}


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those that train when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
