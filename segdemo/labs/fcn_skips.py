"""Logic of the FCN comparison page: the same image through FCN-32s, 16s and 8s.

Everything here is plain NumPy/PyTorch (no Streamlit), so each number and
picture the page shows is computed by a function that the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from segdemo.data.labels import CAMVID, LabelSet
from segdemo.render import draw
from segdemo.render.overlay import boundary_mask, colorize

if TYPE_CHECKING:
    from segdemo.models.registry import ModelEntry

VARIANTS = ("fcn32s_camvid", "fcn16s_camvid", "fcn8s_camvid")
STRIDES = {"fcn32s_camvid": 32, "fcn16s_camvid": 16, "fcn8s_camvid": 8}



# ------------------------------------------------------------------ zoom window


@dataclass(frozen=True)
class ZoomWindow:
    """A rectangle in image pixels: the same one is cut out of every variant's view."""

    left: int
    top: int
    width: int
    height: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.left + self.width, self.top + self.height


def zoom_window(image_size: tuple[int, int], center_x: float, center_y: float, zoom: float) -> ZoomWindow:
    """The window of ``1/zoom`` of the image around (center_x, center_y), as fractions 0..1.

    The window keeps the image's aspect ratio and is shifted (not shrunk) to stay inside.
    """
    h, w = image_size
    zoom = max(1.0, float(zoom))
    win_w, win_h = max(1, round(w / zoom)), max(1, round(h / zoom))
    left = int(round(center_x * w - win_w / 2))
    top = int(round(center_y * h - win_h / 2))
    left = min(max(left, 0), w - win_w)
    top = min(max(top, 0), h - win_h)
    return ZoomWindow(left, top, win_w, win_h)


def crop_zoom(image: np.ndarray, window: ZoomWindow, out_width: int = 480) -> np.ndarray:
    """The window cut out and enlarged with nearest neighbour (pixels stay visible)."""
    crop = image[window.top : window.top + window.height, window.left : window.left + window.width]
    scale = out_width / crop.shape[1]
    size = (out_width, max(1, round(crop.shape[0] * scale)))
    return np.asarray(Image.fromarray(crop).resize(size, Image.NEAREST))


def draw_rectangle(image: np.ndarray, window: ZoomWindow, color: tuple[int, int, int] = (255, 255, 0),
                   thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` with the window's outline drawn on it."""
    t = thickness or max(1, round(max(image.shape[:2]) / 250))
    x0, y0, x1, y1 = window.box
    return draw.rectangle(np.ascontiguousarray(image).copy(), x0, y0, x1, y1, color, t)


# ------------------------------------------------------------------ disagreement


def disagreement_count(label_maps: list[np.ndarray]) -> np.ndarray:
    """Per pixel, how many different classes the variants predict (1 = all agree)."""
    stack = np.stack(label_maps)
    distinct = np.ones(stack.shape[1:], dtype=np.uint8)
    for i in range(1, len(label_maps)):
        new = np.all(stack[:i] != stack[i], axis=0)
        distinct += new.astype(np.uint8)
    return distinct


def disagreement_image(counts: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
    """Agreement in grey (over a faded image), two classes in orange, three in red."""
    h, w = counts.shape
    base = np.full((h, w, 3), 235, np.uint8) if rgb is None else (0.35 * rgb + 0.65 * 235).astype(np.uint8)
    out = base.copy()
    out[counts == 2] = (255, 150, 0)
    out[counts >= 3] = (220, 0, 0)
    return out


@dataclass(frozen=True)
class BoundaryConcentration:
    """How much of the disagreement lies near class boundaries."""

    band_px: int
    disagree_share: float  # share of all (valid) pixels where the variants disagree
    band_share: float  # share of valid pixels within band_px of a boundary
    disagree_in_band: float  # share of disagreeing pixels that lie within the band
    enrichment: float  # disagree_in_band / band_share (1 = no concentration)


def boundary_band(labels: np.ndarray, band_px: int, ignore_index: int | None = None) -> np.ndarray:
    """Pixels within ``band_px`` (Euclidean) of a class boundary of ``labels``."""
    edges = boundary_mask(labels, thickness=1)
    if ignore_index is not None:
        edges &= labels != ignore_index
    if not edges.any():
        return np.zeros(labels.shape, bool)
    return ndimage.distance_transform_edt(~edges) <= band_px


def boundary_concentration(label_maps: list[np.ndarray], reference: np.ndarray, band_px: int,
                           ignore_index: int | None = None) -> BoundaryConcentration:
    """Where the variants disagree, relative to the boundaries of ``reference``.

    ``reference`` is the ground truth when there is one, else the finest variant's
    prediction. Pixels whose reference is ``ignore_index`` are left out.
    """
    valid = np.ones(reference.shape, bool) if ignore_index is None else reference != ignore_index
    disagree = (disagreement_count(label_maps) > 1) & valid
    band = boundary_band(reference, band_px, ignore_index) & valid
    n_valid = max(int(valid.sum()), 1)
    n_dis = int(disagree.sum())
    band_share = band.sum() / n_valid
    in_band = float((disagree & band).sum() / n_dis) if n_dis else float("nan")
    return BoundaryConcentration(
        band_px=band_px,
        disagree_share=n_dis / n_valid,
        band_share=float(band_share),
        disagree_in_band=in_band,
        enrichment=in_band / band_share if n_dis and band_share > 0 else float("nan"),
    )


# ------------------------------------------------------------------ score grid


def coarse_scores(model: torch.nn.Module, entry: "ModelEntry", rgb: np.ndarray, inference_size: int | None,
                  device: str = "cpu") -> tuple[torch.Tensor, tuple[int, int]]:
    """The FCN's fused class scores before its final upsampling, ``(C, h/s, w/s)`` on the CPU,
    and the network input size (h, w) they belong to. Same preprocessing as the prediction."""
    from segdemo.inference.pipeline import preprocess

    net = getattr(model, "net", model)
    with torch.inference_mode():
        x, (h, w) = preprocess(rgb, entry, inference_size, device, next(net.parameters()).dtype)
        scores = net.coarse_scores(x)[0].float().cpu()
    return scores, (h, w)



def coarse_label_map(coarse_scores: torch.Tensor) -> np.ndarray:
    """Argmax class of each cell of a coarse score map ``(C, h, w)``."""
    return coarse_scores.argmax(0).to(torch.uint8).cpu().numpy()


def score_grid_image(rgb: np.ndarray, coarse_labels: np.ndarray, stride: int, net_size: tuple[int, int],
                     label_set: LabelSet = CAMVID, alpha: float = 0.55) -> np.ndarray:
    """The coarse score map drawn over the image: one coloured cell per score, grid lines.

    Cell (i, j) of a stride-``s`` map covers network-input pixels [s*i, s*(i+1)),
    mapped to the image by the ratio of the image to the network input.
    """
    h, w = rgb.shape[:2]
    net_h, net_w = net_size
    ys = np.minimum((np.arange(h) + 0.5) * net_h / h // stride, coarse_labels.shape[0] - 1).astype(int)
    xs = np.minimum((np.arange(w) + 0.5) * net_w / w // stride, coarse_labels.shape[1] - 1).astype(int)
    cells = coarse_labels[ys[:, None], xs[None, :]]
    out = ((1 - alpha) * rgb + alpha * colorize(cells, label_set)).astype(np.uint8)
    row_edge = np.r_[False, ys[1:] != ys[:-1]]
    col_edge = np.r_[False, xs[1:] != xs[:-1]]
    out[row_edge, :] = (255, 255, 255)
    out[:, col_edge] = (255, 255, 255)
    return out


# ------------------------------------------------------------------ scores vs truth


@dataclass(frozen=True)
class ScoreRow:
    """One model's row of the page's score table; fractions 0..1, None where there is no number."""

    name: str  # registry name
    architecture: str
    paper: float | None  # the FCN paper's Table 2 mean IU (None for a model not in it)
    val_miou: float | None  # the model card's CamVid val numbers
    val_boundary_f1: float | None
    image_miou: float | None  # this image against its truth (None without truth)
    image_boundary_f1: float | None


def score_rows(entries: list["ModelEntry"], labels: dict[str, np.ndarray], truth: np.ndarray | None,
               label_set: LabelSet = CAMVID) -> list[ScoreRow]:
    """The paper's number, the card's val numbers and this image's scores of each model in ``entries``.

    ``labels``: each model's label map by registry name. The image's scores come from the one
    scoring path (:func:`segdemo.evaluate.scoring.score_predictions`); NaN (no boundary in the
    image) reads as no number.
    """
    from segdemo.evaluate.scoring import score_predictions
    from segdemo.models.fcn import PAPER_TABLE2_MEAN_IU

    def number(value: float | None) -> float | None:
        return None if value is None or not np.isfinite(value) else float(value)

    rows = []
    for entry in entries:
        image_miou = image_bf = None
        if truth is not None:
            score = score_predictions([labels[entry.name]], [truth], label_set)
            image_miou, image_bf = number(score.miou), number(score.boundary_f1)
        paper = PAPER_TABLE2_MEAN_IU.get(entry.architecture) if entry.name in VARIANTS else None
        rows.append(ScoreRow(entry.name, entry.architecture, None if paper is None else paper / 100,
                             number(entry.metrics.get("miou")), number(entry.metrics.get("boundary_f1")),
                             image_miou, image_bf))
    return rows


# ------------------------------------------------------------------ project-made sample


def synthetic_street(width: int = 480, height: int = 360, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A simple street scene drawn by segdemo, with its exact label map (CamVid classes).

    Sky, buildings with windows, road with lane marks, pavement, a pole with a sign,
    a tree, a fence and a car: a demo that needs no data set and no download.
    """
    rng = np.random.default_rng(seed)
    idx = {name: i for i, name in enumerate(CAMVID.classes)}
    labels = np.full((height, width), idx["Sky"], np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    horizon = int(height * 0.55)
    # buildings along the horizon
    x = 0
    while x < width:
        bw = int(rng.integers(width // 8, width // 4))
        top = int(rng.integers(int(height * 0.12), int(height * 0.35)))
        labels[top:horizon, x : x + bw] = idx["Building"]
        x += bw + int(rng.integers(0, width // 20))
    # tree, road, pavement
    tree_cx, tree_cy, tree_r = int(width * 0.78), int(height * 0.33), int(height * 0.14)
    labels[(xx - tree_cx) ** 2 + (yy - tree_cy) ** 2 <= tree_r**2] = idx["Tree"]
    labels[horizon:, :] = idx["Road"]
    pave = (yy >= horizon) & (yy < horizon + (xx - width * 0.45) * -0.35 + 10) & (xx < width * 0.45)
    labels[pave] = idx["Pavement"]
    labels[horizon - int(height * 0.06) : horizon, int(width * 0.55) : int(width * 0.7)] = idx["Fence"]
    # a car on the road
    car_x0, car_y0 = int(width * 0.52), int(height * 0.6)
    labels[car_y0 : car_y0 + int(height * 0.12), car_x0 : car_x0 + int(width * 0.2)] = idx["Car"]
    labels[car_y0 - int(height * 0.05) : car_y0, car_x0 + int(width * 0.04) : car_x0 + int(width * 0.15)] = idx["Car"]
    # pole with a sign
    px = int(width * 0.3)
    labels[int(height * 0.2) : int(height * 0.7), px : px + max(2, width // 100)] = idx["Pole"]
    labels[int(height * 0.2) : int(height * 0.27), px - width // 40 : px + width // 40] = idx["SignSymbol"]
    # a pedestrian on the pavement
    ped_x, ped_y = int(width * 0.12), int(height * 0.5)
    labels[ped_y : ped_y + int(height * 0.16), ped_x : ped_x + width // 45] = idx["Pedestrian"]
    colors = {
        "Sky": (150, 170, 190), "Building": (110, 90, 80), "Pole": (90, 90, 90), "Road": (85, 80, 85),
        "Pavement": (140, 130, 120), "Tree": (60, 90, 40), "SignSymbol": (200, 170, 40),
        "Fence": (120, 110, 90), "Car": (50, 60, 110), "Pedestrian": (120, 70, 60), "Bicyclist": (0, 0, 0),
    }
    lut = np.array([colors[c] for c in CAMVID.classes], np.float64)
    rgb = lut[labels]
    # texture: sky gradient, building windows, noise
    rgb[labels == idx["Sky"]] += (yy[labels == idx["Sky"]] * 0.15)[:, None]
    windows = (labels == idx["Building"]) & ((xx // 12) % 3 == 1) & ((yy // 14) % 3 == 1)
    rgb[windows] = (60, 65, 80)
    lanes = (labels == idx["Road"]) & (np.abs(xx - width * 0.35 - (yy - horizon) * 0.6) < 3) & ((yy // 10) % 2 == 0)
    rgb[lanes] = (220, 220, 210)
    rgb += rng.normal(0, 6, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels
