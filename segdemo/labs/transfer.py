"""Logic of the transfer-learning page: what the ImageNet backbone already knows.

* :func:`imagenet_topk`: the shipped MobileNetV2 as torchvision's ImageNet
  classifier (its own preprocessing: resize 256, centre crop 224, normalise).
* :func:`stage_feature_maps`: the backbone's feature maps at an early stage
  (stride 4: fine, local — edges, colours, textures) and a late stage (stride 32:
  coarse, semantic — object parts and whole objects), the channels that respond
  most strongly to this photo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segdemo.models.backbones import get_backbone, read_backbone_state

# features[:4] ends at stride 4 (24 ch), features[:18] at stride 32 (320 ch)
STAGES = {"early": (4, 4), "late": (18, 32)}  # name -> (end index into features, stride)
FEATURE_SHORT_SIDE = 320  # the feature-map view runs the photo at this shorter side
_lock = threading.Lock()


@lru_cache(maxsize=1)
def imagenet_classifier() -> nn.Module:
    """torchvision's ``mobilenet_v2`` with the shipped ImageNet weights (float32, eval mode)."""
    from torchvision.models import mobilenet_v2

    entry = get_backbone("mobilenet_v2_imagenet")
    net = mobilenet_v2()
    net.load_state_dict(read_backbone_state(entry.shipped_path))  # type: ignore[arg-type]
    return net.eval()


def classification_input(rgb: np.ndarray) -> torch.Tensor:
    """The photo as torchvision's ImageNet transforms for MobileNetV2 make it: [1, 3, 224, 224]."""
    from torchvision.models import MobileNet_V2_Weights

    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    return MobileNet_V2_Weights.IMAGENET1K_V1.transforms()(image)[None]


@torch.inference_mode()
def imagenet_logits(rgb: np.ndarray) -> torch.Tensor:
    """The classifier's 1000 logits for an RGB uint8 photo."""
    with _lock:
        return imagenet_classifier()(classification_input(rgb))[0]


def imagenet_topk(rgb: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most likely ImageNet classes and their softmax probabilities."""
    probs = imagenet_logits(rgb).softmax(0)
    top = probs.topk(k)
    names = get_backbone("mobilenet_v2_imagenet").categories
    return [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]


@dataclass(frozen=True)
class StageMaps:
    """The strongest channels of one backbone stage on a photo."""

    stage: str
    stride: int
    channels: int
    size: tuple[int, int]  # (height, width) of the feature map
    indices: list[int]  # channel numbers, strongest mean activation first
    maps: np.ndarray  # [k, h, w] float32, each channel scaled to 0..1


@torch.inference_mode()
def stage_feature_maps(rgb: np.ndarray, k: int = 6) -> list[StageMaps]:
    """The ``k`` channels with the highest mean activation at each stage of :data:`STAGES`."""
    from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD

    from segdemo.inference.pipeline import normalize

    h, w = rgb.shape[:2]
    scale = FEATURE_SHORT_SIDE / min(h, w)
    size = (max(32, round(h * scale)), max(32, round(w * scale)))
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = normalize(x, IMAGENET_MEAN, IMAGENET_STD)
    out = []
    with _lock:
        features = imagenet_classifier().features
        prev_end, feat = 0, x
        for stage, (end, stride) in STAGES.items():
            feat = features[prev_end:end](feat)
            prev_end = end
            act = feat[0]
            order = act.mean(dim=(1, 2)).argsort(descending=True)[:k]
            maps = act[order]
            lo = maps.amin(dim=(1, 2), keepdim=True)
            hi = maps.amax(dim=(1, 2), keepdim=True)
            maps = (maps - lo) / (hi - lo).clamp_min(1e-6)
            out.append(StageMaps(stage, stride, act.shape[0], (act.shape[1], act.shape[2]), order.tolist(),
                                 maps.float().numpy()))
    return out


def feature_grid(stage: StageMaps, columns: int = 3, tile_height: int = 120) -> np.ndarray:
    """The stage's channels as viridis tiles in one RGB image (nearest-neighbour, so the
    coarseness of a stride-32 map stays visible)."""
    from segdemo.render.overlay import heatmap

    h, w = stage.size
    tile_w = max(1, round(tile_height * w / h))
    tiles = []
    for m in stage.maps:
        t = torch.from_numpy(m)[None, None]
        t = F.interpolate(t, size=(tile_height, tile_w), mode="nearest")[0, 0].numpy()
        tiles.append(heatmap(t))
    gap = 4
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * (tile_height + gap) - gap, columns * (tile_w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (tile_height + gap):r * (tile_height + gap) + tile_height,
             c * (tile_w + gap):c * (tile_w + gap) + tile_w] = tile
    return grid


@dataclass(frozen=True)
class AugmentationPreview:
    """One CamVid training crop as the training run would draw it."""

    image: np.ndarray  # RGB uint8 crop
    mask: np.ndarray  # colourised labels (void black)
    void_share: float  # share of crop pixels that are void (e.g. brought in by a rotation)


def augmentation_preview(index: int, augment: frozenset[str], seed: int) -> AugmentationPreview:
    """CamVid train image ``index`` through :func:`segdemo.training.loop.camvid_batch` with ``augment``
    (CutMix / MixUp need a second image of the batch: the Data augmentation page shows them)."""
    from segdemo.data.labels import CAMVID
    from segdemo.render.overlay import colorize
    from segdemo.training.live import camvid_in_memory
    from segdemo.training.loop import camvid_batch
    from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD

    data = camvid_in_memory()
    gen = torch.Generator().manual_seed(int(seed))
    from segdemo.training.augment import MIXING

    x, y = camvid_batch(data["train_x"], data["train_y"], torch.tensor([int(index)]), gen,
                        frozenset(augment) - MIXING)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    rgb = ((x[0] * std + mean) * 255).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
    labels = y[0].numpy().astype(np.uint8)
    return AugmentationPreview(rgb, colorize(labels, CAMVID), float((labels == CAMVID.ignore_index).mean()))


def curves_figure(series: dict[str, list[dict[str, float]]], metric: str, title: str, y_title: str) -> object:
    """A plotly line chart of ``metric`` per epoch, one line per run or shipped model."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, history in series.items():
        points = [(h["epoch"], h[metric]) for h in history if h.get(metric) is not None]
        if points:
            xs, ys = zip(*points)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name))
    fig.update_layout(title=title, height=280, margin=dict(l=40, r=10, t=40, b=40),
                      xaxis_title="epoch", yaxis_title=y_title,
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig
