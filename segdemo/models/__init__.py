"""segdemo's own segmentation networks, written to be read next to the papers.

``BUILDERS`` maps the ``builder`` name used in model cards to a function that
builds the network with random initialisation.
"""

from __future__ import annotations

from typing import Any, Callable

from segdemo.models.deeplab_slim import deeplab_slim
from segdemo.models.fcn import fcn8s, fcn16s, fcn32s
from segdemo.models.mobilenet_v2 import deeplabv3_mobilenet_v2, lraspp_mobilenet_v2
from segdemo.models.unet import unet

BUILDERS: dict[str, Callable[..., Any]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "unet": unet,
    "deeplab_slim": deeplab_slim,
    "deeplabv3_mobilenet_v2": deeplabv3_mobilenet_v2,
    "lraspp_mobilenet_v2": lraspp_mobilenet_v2,
}
