"""Logic of the U-Net page: overlap-tile drawing, elastic deformation, level shapes.

No Streamlit here; the page only lays these results out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segdemo.inference.pipeline import normalize
from segdemo.render import draw
from segdemo.training.augment import elastic_displacement, warp
from segdemo.inference.tiling import Tile, mirror_pad, overlap_tile_forward, tile_input_size, tile_margin, tile_plan
from segdemo.models.unet import LevelShape, UNet, UNetSizeError, level_shapes, valid_output_size

TILE_COLORS = ((255, 80, 80), (80, 200, 80), (80, 140, 255), (255, 200, 40), (200, 80, 255), (40, 220, 220))


# ------------------------------------------------------------------ elastic deformation (the page's demo)


@dataclass(frozen=True)
class ElasticDemo:
    """One elastic deformation applied to a slice, its mask and a regular grid."""

    flow: torch.Tensor  # [2, H, W] displacement in pixels (x, y)
    image: np.ndarray  # deformed slice, uint8
    labels: np.ndarray  # deformed mask, uint8 (same field, nearest neighbour)
    grid_before: np.ndarray
    grid_after: np.ndarray


def elastic_demo(gray: np.ndarray, labels: np.ndarray, sigma: float, grid: int, seed: int) -> ElasticDemo:
    """The deformation the page shows: one random field (``sigma`` px on a ``grid`` x ``grid``
    lattice, seeded) applied to the slice, its labels and a line grid."""
    h, w = gray.shape
    flow = elastic_displacement(h, w, float(sigma), int(grid), torch.Generator().manual_seed(int(seed)))
    lbl = torch.from_numpy(labels.astype(np.int64))[None]
    warped, warped_lbl = warp(torch.from_numpy(np.ascontiguousarray(gray))[None, None].float(), lbl, flow)
    before = grid_pattern(h, w, step=max(8, h // 16))
    after, _ = warp(torch.from_numpy(before)[None, None].float(), lbl, flow)
    return ElasticDemo(flow[0], warped[0, 0].clamp(0, 255).round().byte().numpy(),
                       warped_lbl[0].numpy().astype(np.uint8), before, after[0, 0].clamp(0, 255).round().byte().numpy())


# ------------------------------------------------------------------ level shapes


@dataclass(frozen=True)
class ShapeReport:
    """Shapes of every stage for a requested input size, or why the size does not fit.

    On a bad size, ``reason`` (a catalogue key and its values) says why, ``suggestion``
    is the mirror-padded size that fits, and ``shapes`` are those of the padded input
    (the padding fix applied).
    """

    height: int
    width: int
    shapes: list[LevelShape]
    error: str | None = None
    suggestion: tuple[int, int] | None = None
    reason: tuple[str, dict[str, object]] | None = None


def meta_unet(base: int, depth: int, padding: str, in_channels: int = 1, num_classes: int = 2) -> UNet:
    """A U-Net built on the ``meta`` device: the real layers, no weights allocated or
    initialised (base 64 and depth 5 would otherwise cost 124M random numbers per rerun)."""
    with torch.device("meta"):
        return UNet(in_channels=in_channels, num_classes=num_classes, base=base, depth=depth,
                    padding=padding)  # type: ignore[arg-type]


def _shapes(net: UNet, height: int, width: int) -> list[LevelShape]:
    if next(net.parameters()).device.type != "meta":
        return level_shapes(net, height, width)
    shapes: list[LevelShape] = []
    with torch.no_grad():
        net(torch.empty(1, net.down[0][0].in_channels, height, width, device="meta"), shapes=shapes)
    return shapes


def size_reason(net: UNet) -> tuple[str, dict[str, object]]:
    """Why a size does not fit, as a catalogue key (``unet.size_reason.*``) and its values."""
    if net.padding == "same":
        return "unet.size_reason.same", {"depth": net.depth, "multiple": 2**net.depth}
    return "unet.size_reason.valid", {"depth": net.depth}


def shape_report(net: UNet, height: int, width: int) -> ShapeReport:
    """Run the (shape-only) network for ``height`` x ``width``; on a bad size, the fix:
    the shapes after mirror-padding to the nearest size that fits."""
    try:
        return ShapeReport(height, width, _shapes(net, height, width))
    except UNetSizeError as exc:
        fixed = _shapes(net, *exc.suggestion) if exc.suggestion else []
        return ShapeReport(height, width, fixed, str(exc), exc.suggestion, size_reason(net))


def shape_rows(shapes: list[LevelShape]) -> list[dict[str, object]]:
    """Table rows: stage, level, channels, height, width, and the tensor shape text."""
    return [{"stage": s.name, "level": s.level, "C": s.channels, "H": s.height, "W": s.width,
             "shape": f"[1, {s.channels}, {s.height}, {s.width}]"} for s in shapes]


# ------------------------------------------------------------------ overlap-tile


@dataclass(frozen=True)
class TileLayout:
    """Everything needed to draw the overlap-tile strategy on one slice."""

    padded: np.ndarray  # the mirrored image (H + 2m + extra, W + 2m + extra)
    margin: int
    in_tile: int
    out_tile: int
    tiles: list[Tile]
    height: int
    width: int


def tile_layout(image: np.ndarray, net: UNet, out_tile: int) -> TileLayout:
    """Mirror-pad ``image`` (H x W) for overlap-tile segmentation with ``out_tile`` outputs."""
    h, w = image.shape[:2]
    margin = tile_margin(net)
    in_tile = tile_input_size(net, out_tile)
    rows, cols = -(-h // out_tile), -(-w // out_tile)
    x = torch.from_numpy(np.ascontiguousarray(image)).float()[None, None]
    padded = mirror_pad(x, margin, margin + rows * out_tile - h, margin, margin + cols * out_tile - w)
    return TileLayout(padded[0, 0].numpy().astype(image.dtype), margin, in_tile, out_tile,
                      tile_plan(h, w, out_tile, margin), h, w)


def valid_out_tiles(net: UNet, lo: int = 32, hi: int = 512) -> list[int]:
    """Output tile sizes the net supports in the range (every valid one for the unpadded net)."""
    if net.padding == "same":
        m = 2**net.depth
        return [s for s in range(lo, hi + 1) if (s + 2 * tile_margin(net)) % m == 0]
    sizes = sorted({valid_output_size(n, net.depth) for n in range(lo, hi + 2 * tile_margin(net) + 1)} - {None})
    return [s for s in sizes if lo <= s <= hi]  # type: ignore[operator]


def draw_tiles(layout: TileLayout, highlight: int | None = None) -> np.ndarray:
    """The mirrored image in grey with the real image framed, each tile's output square
    filled lightly and the input window of tile ``highlight`` outlined."""
    g = layout.padded.astype(np.float64)
    rgb = np.repeat(((g - g.min()) / max(g.max() - g.min(), 1e-9) * 255)[..., None], 3, axis=2)
    mirrored = np.ones(g.shape, bool)
    m = layout.margin
    mirrored[m : m + layout.height, m : m + layout.width] = False
    rgb[mirrored] *= 0.55  # the mirrored border is darker
    out = rgb.copy()
    t = max(1, round(max(g.shape) / 300))
    for i, tile in enumerate(layout.tiles):
        color = np.array(TILE_COLORS[i % len(TILE_COLORS)], np.float64)
        y0, x0 = tile.out_top + m, tile.out_left + m
        y1, x1 = y0 + tile.out_size, x0 + tile.out_size
        out[y0:y1, x0:x1] = 0.78 * out[y0:y1, x0:x1] + 0.22 * color
        _frame(out, y0, x0, y1, x1, color, t)
    if highlight is not None and 0 <= highlight < len(layout.tiles):
        tile = layout.tiles[highlight]
        color = np.array(TILE_COLORS[highlight % len(TILE_COLORS)], np.float64)
        _frame(out, tile.in_top, tile.in_left, tile.in_top + tile.in_size, tile.in_left + tile.in_size, color, 2 * t)
    _frame(out, m, m, m + layout.height, m + layout.width, np.array((255.0, 255.0, 255.0)), t)
    return np.clip(out, 0, 255).astype(np.uint8)


def tiled_labels(model: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...], gray: np.ndarray,
                 out_tile: int, device: str = "cpu") -> np.ndarray:
    """Labels of a grayscale slice segmented by overlap-tile with ``out_tile`` output tiles.

    ``model`` is the loaded U-Net (or its wrapper, with ``.net``); ``mean``/``std`` are its
    card's normalisation, the same preprocessing as the prediction.
    """
    net: UNet = getattr(model, "net", model)
    param = next(net.parameters())
    with torch.inference_mode():
        x = normalize(torch.from_numpy(np.ascontiguousarray(gray)).to(param.device)[None, None], mean, std)
        scores = overlap_tile_forward(net, x.to(param.dtype), int(out_tile))
    return scores.argmax(1)[0].to(torch.uint8).cpu().numpy()


def draw_tile_borders(rgb: np.ndarray, tiles: list[Tile], color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy of ``rgb`` with the top and left edge of every tile's output square drawn."""
    out = rgb.copy()
    h, w = out.shape[:2]
    for t in tiles:
        if t.out_left < w:
            out[t.out_top : t.out_top + t.out_size, t.out_left] = color
        if t.out_top < h:
            out[t.out_top, t.out_left : t.out_left + t.out_size] = color
    return out


def _frame(img: np.ndarray, y0: int, x0: int, y1: int, x1: int, color: np.ndarray, t: int) -> None:
    h, w = img.shape[:2]
    draw.rectangle(img, max(x0, 0), max(y0, 0), min(x1, w), min(y1, h), tuple(int(c) for c in color), t)


# ------------------------------------------------------------------ project-made EM-like slice


def synthetic_membranes(size: int = 256, cells: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An EM-like slice drawn by segdemo (Voronoi cells, dark membranes, noise) and its labels.

    Labels follow ISBI: 0 = membrane, 1 = cell interior. For an offline demo only.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (cells, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    owner = d.argmin(-1)
    edge = np.zeros((size, size), bool)
    edge[:, 1:] |= owner[:, 1:] != owner[:, :-1]
    edge[1:, :] |= owner[1:, :] != owner[:-1, :]
    membrane = ndimage.binary_dilation(edge, iterations=2)
    labels = (~membrane).astype(np.uint8)
    shade = rng.uniform(150, 210, cells)[owner]
    img = np.where(membrane, 50.0, shade)
    img = ndimage.gaussian_filter(img, 1.2) + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), labels


def grid_pattern(height: int, width: int, step: int) -> np.ndarray:
    """White lines every ``step`` pixels on black: shows a deformation field when warped."""
    img = np.zeros((height, width), np.uint8)
    img[::step, :] = 255
    img[:, ::step] = 255
    return img
