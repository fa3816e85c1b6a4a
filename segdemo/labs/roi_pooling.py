"""RoIPool vs RoIAlign on one box: torchvision's two operators on the backbone's stride-16 map,
with the bins and sampling points of their CPU kernels for drawing (RoIPool rounds the box to
whole cells, RoIAlign samples bilinearly at exact positions). Part of the semantic vs instance lab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torchvision.ops import roi_align, roi_pool



# ---------------------------------------------------------------- RoIPool vs RoIAlign


def round_half_away(value: float) -> int:
    """C's ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(np.floor(value + 0.5)) if value >= 0 else -int(np.floor(-value + 0.5))


def roi_pool_bins(box: Sequence[float], spatial_scale: float, output_size: int,
                  feature_hw: tuple[int, int]) -> np.ndarray:
    """RoIPool's bins as whole feature cells, as torchvision's kernel computes them.

    The box is rounded to cells (``round`` half away from zero, inclusive end), each
    bin is ``[floor(i*b), ceil((i+1)*b))`` cells of the rounded box, clipped to the
    map. Returns (S, S, 4): cell rows ``y0:y1`` and columns ``x0:x1`` (end exclusive).
    """
    x1, y1, x2, y2 = (float(v) * spatial_scale for v in box)
    start_w, start_h, end_w, end_h = (round_half_away(v) for v in (x1, y1, x2, y2))
    roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
    bin_h, bin_w = roi_h / output_size, roi_w / output_size
    height, width = feature_hw
    bins = np.zeros((output_size, output_size, 4), dtype=np.int64)
    for ph in range(output_size):
        for pw in range(output_size):
            hs = min(max(int(np.floor(ph * bin_h)) + start_h, 0), height)
            he = min(max(int(np.ceil((ph + 1) * bin_h)) + start_h, 0), height)
            ws = min(max(int(np.floor(pw * bin_w)) + start_w, 0), width)
            we = min(max(int(np.ceil((pw + 1) * bin_w)) + start_w, 0), width)
            bins[ph, pw] = (hs, he, ws, we)
    return bins


def roi_align_points(box: Sequence[float], spatial_scale: float, output_size: int, sampling_ratio: int,
                     aligned: bool = False) -> np.ndarray:
    """RoIAlign's sampling points in feature-map coordinates (cell (i, j) is centred on (i, j)).

    As torchvision's kernel: the box is scaled (minus 0.5 when ``aligned``), not
    rounded; each of the S x S bins gets ``sampling_ratio`` x ``sampling_ratio``
    regularly spaced points. Returns (S, S, r, r, 2) of (y, x).
    """
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / output_size, roi_w / output_size
    grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / output_size))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / output_size))
    points = np.zeros((output_size, output_size, grid_h, grid_w, 2))
    for ph in range(output_size):
        for pw in range(output_size):
            for iy in range(grid_h):
                for ix in range(grid_w):
                    points[ph, pw, iy, ix] = (y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h,
                                              x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w)
    return points


def bilinear_sample(feature: np.ndarray, y: float, x: float) -> float:
    """The value of a (H, W) map at (y, x) by bilinear interpolation, with RoIAlign's border rules
    (0 outside [-1, H] x [-1, W]; coordinates below 0 clamp to 0; the last cell is repeated)."""
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return float(hy * hx * feature[y_low, x_low] + hy * lx * feature[y_low, x_high]
                 + ly * hx * feature[y_high, x_low] + ly * lx * feature[y_high, x_high])


@dataclass(frozen=True)
class EdgeOffset:
    """One box edge: exact position on the feature grid vs RoIPool's rounded cell, in pixels."""

    edge: str  # "x1", "y1", "x2", "y2"
    input_px: float  # the edge in network-input pixels
    exact_cells: float  # input_px * spatial_scale
    rounded_cell: int  # RoIPool's cell index
    offset_input_px: float  # (rounded - exact) / spatial_scale
    offset_image_px: float  # the same in the photo's pixels


@dataclass
class RoIComparison:
    """RoIPool and RoIAlign of one box on one feature map (one channel shown, all compared)."""

    box_input: np.ndarray  # (4,) network-input pixels
    spatial_scale: float
    output_size: int
    sampling_ratio: int
    aligned: bool
    channel: int
    feature_channel: np.ndarray  # (fh, fw) the map of ``channel``
    pool_bins: np.ndarray  # (S, S, 4)
    align_points: np.ndarray  # (S, S, r, r, 2)
    pooled: np.ndarray  # (S, S) roi_pool of ``channel``
    aligned_values: np.ndarray  # (S, S) roi_align of ``channel``
    mean_abs_difference: float  # over all channels and bins
    edges: list[EdgeOffset] = field(default_factory=list)

    @property
    def max_offset_image_px(self) -> float:
        return max(abs(e.offset_image_px) for e in self.edges)


def most_active_channel(features: np.ndarray, box_input: Sequence[float], spatial_scale: float) -> int:
    """The channel with the largest mean activation inside the box (a readable map to draw)."""
    _, fh, fw = features.shape
    x1, y1, x2, y2 = (float(v) * spatial_scale for v in box_input)
    r0, r1 = max(int(np.floor(y1)), 0), min(max(int(np.ceil(y2)), int(np.floor(y1)) + 1), fh)
    c0, c1 = max(int(np.floor(x1)), 0), min(max(int(np.ceil(x2)), int(np.floor(x1)) + 1), fw)
    inside = features[:, r0:r1, c0:c1]
    if inside.size == 0:
        return 0
    return int(inside.reshape(len(features), -1).mean(axis=1).argmax())


def compare_roi_pooling(features: np.ndarray, box_input: Sequence[float], spatial_scale: float,
                        image_scale: float = 1.0, output_size: int = 7, sampling_ratio: int = 2,
                        aligned: bool = False, channel: int | None = None) -> RoIComparison:
    """``roi_pool`` vs ``roi_align`` (torchvision.ops) of ``box_input`` on a (C, fh, fw) map.

    ``image_scale``: photo pixels per network-input pixel (to state offsets in the photo).
    Defaults follow the model's box head: 7 x 7, sampling ratio 2, ``aligned=False``.
    """
    fmap = torch.as_tensor(np.asarray(features, dtype=np.float32))[None]
    rois = torch.tensor([[0.0, *[float(v) for v in box_input]]])
    pooled = roi_pool(fmap, rois, output_size, spatial_scale)[0].numpy()
    align = roi_align(fmap, rois, output_size, spatial_scale, sampling_ratio, aligned)[0].numpy()
    if channel is None:
        channel = most_active_channel(np.asarray(features), box_input, spatial_scale)
    bins = roi_pool_bins(box_input, spatial_scale, output_size, features.shape[1:])
    edges = []
    for name, value in zip(("x1", "y1", "x2", "y2"), box_input):
        exact = float(value) * spatial_scale
        rounded = round_half_away(exact)
        offset = (rounded - exact) / spatial_scale
        edges.append(EdgeOffset(name, float(value), exact, int(rounded), offset, offset * image_scale))
    return RoIComparison(np.asarray(box_input, dtype=np.float64), spatial_scale, output_size, sampling_ratio,
                         aligned, int(channel), np.asarray(features)[channel], bins,
                         roi_align_points(box_input, spatial_scale, output_size, sampling_ratio, aligned),
                         pooled[channel], align[channel], float(np.abs(pooled - align).mean()), edges)


def _grey_map(values: np.ndarray, cell_px: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    norm = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    grey = (60 + 170 * norm).astype(np.uint8)
    big = np.repeat(np.repeat(grey, cell_px, axis=0), cell_px, axis=1)
    return np.stack([big] * 3, axis=-1)


def roi_drawing_window(comparison: RoIComparison, margin: int = 2) -> tuple[int, int, int, int]:
    """The feature cells to draw (rows r0:r1, columns c0:c1): the box with ``margin`` cells around it."""
    fh, fw = comparison.feature_channel.shape
    b = comparison.pool_bins
    pts = comparison.align_points
    r0 = max(min(int(b[..., 0].min()), int(np.floor(pts[..., 0].min()))) - margin, 0)
    r1 = min(max(int(b[..., 1].max()), int(np.ceil(pts[..., 0].max())) + 1) + margin, fh)
    c0 = max(min(int(b[..., 2].min()), int(np.floor(pts[..., 1].min()))) - margin, 0)
    c1 = min(max(int(b[..., 3].max()), int(np.ceil(pts[..., 1].max())) + 1) + margin, fw)
    return r0, r1, c0, c1


def draw_roi_pool(comparison: RoIComparison, cell_px: int = 24) -> np.ndarray:
    """The feature map around the box (grey, one square per cell), the exact box (dashed white)
    and RoIPool's quantised bins (orange rectangles on whole cells)."""
    r0, r1, c0, c1 = roi_drawing_window(comparison)
    img = _grey_map(comparison.feature_channel[r0:r1, c0:c1], cell_px)
    for hs, he, ws, we in comparison.pool_bins.reshape(-1, 4):
        if he > hs and we > ws:
            cv2.rectangle(img, ((ws - c0) * cell_px, (hs - r0) * cell_px),
                          ((we - c0) * cell_px - 1, (he - r0) * cell_px - 1), (255, 140, 0), 2)
    _draw_exact_box(img, comparison, r0, c0, cell_px)
    return img


def draw_roi_align(comparison: RoIComparison, cell_px: int = 24) -> np.ndarray:
    """The same map, the exact box split into S x S bins (thin blue) and RoIAlign's sampling
    points (blue dots; each is a bilinear mix of the 4 nearest cell centres)."""
    r0, r1, c0, c1 = roi_drawing_window(comparison)
    img = _grey_map(comparison.feature_channel[r0:r1, c0:c1], cell_px)
    offset = 0.5 if comparison.aligned else 0.0
    x1, y1, x2, y2 = (float(v) * comparison.spatial_scale - offset for v in comparison.box_input)
    s = comparison.output_size

    def to_px(y: float, x: float) -> tuple[int, int]:  # cell (i, j) is centred on (i, j)
        return int(round((x - c0 + 0.5) * cell_px)), int(round((y - r0 + 0.5) * cell_px))

    for i in range(s + 1):
        y = y1 + i * (y2 - y1) / s
        x = x1 + i * (x2 - x1) / s
        cv2.line(img, to_px(y, x1), to_px(y, x2), (70, 130, 255), 1)
        cv2.line(img, to_px(y1, x), to_px(y2, x), (70, 130, 255), 1)
    for y, x in comparison.align_points.reshape(-1, 2):
        cv2.circle(img, to_px(y, x), max(2, cell_px // 8), (0, 90, 255), -1)
    _draw_exact_box(img, comparison, r0, c0, cell_px)
    return img


def _draw_exact_box(img: np.ndarray, comparison: RoIComparison, r0: int, c0: int, cell_px: int) -> None:
    x1, y1, x2, y2 = (float(v) * comparison.spatial_scale for v in comparison.box_input)
    # aligned=False: box coordinate v maps to map coordinate v * scale, a cell centre being an integer.
    p1 = (int(round((x1 - c0 + 0.5) * cell_px)), int(round((y1 - r0 + 0.5) * cell_px)))
    p2 = (int(round((x2 - c0 + 0.5) * cell_px)), int(round((y2 - r0 + 0.5) * cell_px)))
    cv2.rectangle(img, p1, p2, (255, 255, 255), 2, lineType=cv2.LINE_AA)
