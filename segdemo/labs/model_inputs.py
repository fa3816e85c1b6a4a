"""What the labs feed a real model and show beside it: the network input of an image,
a picture at the input's size, the predicted labels. One path for every lab page,
so the pages only lay results out (no tensor maths in a page).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from segdemo.data.images import resize_rgb
from segdemo.inference.pipeline import normalize, preprocess
from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelEntry


def network_view(rgb: np.ndarray, entry: ModelEntry, short_side: int | None,
                 device: str) -> tuple[torch.Tensor, np.ndarray]:
    """``entry``'s float32 network input for ``rgb`` (shorter side ``short_side``) and the
    picture at the input's size (so pixels of the input and of the picture line up)."""
    x, (h, w) = preprocess(rgb, entry, short_side, device)
    return x.float(), resize_rgb(rgb, (h, w))


@torch.no_grad()
def predicted_labels(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Argmax class per pixel of ``model(x)`` for a batch of one, on the CPU."""
    return model(x)[0].argmax(0).cpu().numpy()


def image_tensor(rgb: np.ndarray, size: tuple[int, int], mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> torch.Tensor:
    """``rgb`` resized to ``size`` = (height, width) and normalised: a 1x3xHxW float tensor."""
    x = torch.from_numpy(np.array(resize_rgb(rgb, size))).permute(2, 0, 1)[None]  # a copy: the picture may be read-only
    return normalize(x, mean, std)


def grey_guide(rgb: np.ndarray) -> torch.Tensor:
    """The grey level of ``rgb`` as a 1x1xHxW tensor (the guide of joint-bilinear upsampling)."""
    return torch.from_numpy(rgb.astype(np.float32).mean(2))[None, None]
