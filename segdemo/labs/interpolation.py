"""Bilinear interpolation, the lecture's formula against ``F.interpolate``.

Corner layout used throughout (rows grow downwards, as in an image)::

    A ---- B        A = (y0, x0)   B = (y0, x1)
    |  P   |        D = (y1, x0)   C = (y1, x1)
    D ---- C

    alpha = x - x0   (how far P is from A towards B),   beta = 1 - alpha
    p     = y - y0   (how far P is from row A-B towards row D-C),   q = 1 - p

    P = q * (beta * A + alpha * B) + p * (beta * D + alpha * C)

First along each row (the 1-D case: beta * A + alpha * B), then between the rows.

Which input coordinate an output pixel samples is where ``align_corners``
matters (PyTorch's ``area_pixel_compute_source_index``):

* ``align_corners=True``:  x = x_out * (in - 1) / (out - 1) -- the centres of the
  corner pixels of input and output coincide;
* ``align_corners=False``: x = (x_out + 0.5) * in / out - 0.5, clamped at 0 -- the
  outer edges of the images coincide (pixels are squares of size 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SourceIndex:
    """Where output index ``dst`` samples the input along one axis."""

    dst: int
    src: float  # continuous input coordinate (pixel-centre units, after clamping)
    i0: int  # left/top neighbour
    i1: int  # right/bottom neighbour (= i0 at the last pixel)
    frac: float  # src - i0: weight of i1


DEFAULT_SIGNAL = (2.0, 8.0, 4.0, 10.0)
DEFAULT_GRID = ((10, 20, 30, 40), (20, 60, 20, 10), (40, 10, 80, 30), (0, 30, 50, 90))


def parse_signal(text: str) -> np.ndarray | None:
    """The 1-D lab's values typed as "2, 8, 4, 10" (commas or semicolons); None unless 2..16 finite numbers."""
    try:
        signal = np.array([float(v) for v in text.replace(";", ",").split(",") if v.strip()])
    except ValueError:
        return None
    return signal if 2 <= signal.size <= 16 and np.isfinite(signal).all() else None


def finite_grid(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """The 2-D lab's edited grid as floats, empty or non-numeric cells as 0; and whether all were numbers."""
    grid = np.asarray(values, dtype=float)
    ok = bool(np.isfinite(grid).all())
    return (grid if ok else np.nan_to_num(grid, nan=0.0)), ok


def source_index(dst: int, in_size: int, out_size: int, align_corners: bool) -> SourceIndex:
    """PyTorch's source coordinate for linear modes when ``size=`` is given."""
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = scale * dst
    else:
        scale = in_size / out_size
        src = max(scale * (dst + 0.5) - 0.5, 0.0)
    i0 = min(int(math.floor(src)), in_size - 1)
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    return SourceIndex(dst, src, i0, i1, src - i0)


def unclamped_source(dst: int, in_size: int, out_size: int, align_corners: bool) -> float:
    """The source coordinate before PyTorch clamps it at 0 (for the pixel-grid figure)."""
    if align_corners:
        return dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return (dst + 0.5) * in_size / out_size - 0.5


@dataclass(frozen=True)
class LinearStep:
    """The 1-D formula filled in: value = beta * A + alpha * B."""

    x: SourceIndex
    A: float
    B: float
    alpha: float
    beta: float
    value: float


def linear_at(signal: np.ndarray, out_size: int, dst: int, align_corners: bool) -> LinearStep:
    """1-D linear interpolation of ``signal`` at output index ``dst``, by the formula."""
    sx = source_index(dst, len(signal), out_size, align_corners)
    a, b = float(signal[sx.i0]), float(signal[sx.i1])
    alpha = sx.frac
    beta = 1.0 - alpha
    return LinearStep(sx, a, b, alpha, beta, beta * a + alpha * b)


@dataclass(frozen=True)
class BilinearStep:
    """The lecture's formula filled in for one output pixel (or a free point)."""

    y: SourceIndex
    x: SourceIndex
    A: float
    B: float
    C: float
    D: float
    alpha: float
    beta: float
    p: float
    q: float
    top: float  # beta * A + alpha * B
    bottom: float  # beta * D + alpha * C
    value: float  # q * top + p * bottom


def _fill(grid: np.ndarray, sy: SourceIndex, sx: SourceIndex) -> BilinearStep:
    a = float(grid[sy.i0, sx.i0])
    b = float(grid[sy.i0, sx.i1])
    c = float(grid[sy.i1, sx.i1])
    d = float(grid[sy.i1, sx.i0])
    alpha, p = sx.frac, sy.frac
    beta, q = 1.0 - alpha, 1.0 - p
    top = beta * a + alpha * b
    bottom = beta * d + alpha * c
    return BilinearStep(sy, sx, a, b, c, d, alpha, beta, p, q, top, bottom, q * top + p * bottom)


def bilinear_at(grid: np.ndarray, out_hw: tuple[int, int], out_yx: tuple[int, int],
                align_corners: bool) -> BilinearStep:
    """The formula for output pixel ``out_yx`` of resizing ``grid`` to ``out_hw``."""
    h, w = grid.shape
    sy = source_index(out_yx[0], h, out_hw[0], align_corners)
    sx = source_index(out_yx[1], w, out_hw[1], align_corners)
    return _fill(grid, sy, sx)


def bilinear_at_point(grid: np.ndarray, y: float, x: float) -> BilinearStep:
    """The formula at a free point (y, x) in pixel-centre coordinates of ``grid``."""
    h, w = grid.shape
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)

    def index(v: float, n: int) -> SourceIndex:
        i0 = min(int(math.floor(v)), n - 1)
        i1 = i0 + 1 if i0 < n - 1 else i0
        return SourceIndex(-1, v, i0, i1, v - i0)

    return _fill(grid, index(y, h), index(x, w))


def torch_bilinear(grid: np.ndarray, out_hw: tuple[int, int], align_corners: bool) -> np.ndarray:
    """``F.interpolate(mode="bilinear")`` of a 2-D array (float64)."""
    t = torch.as_tensor(np.array(grid, dtype=np.float64))[None, None]
    return F.interpolate(t, size=tuple(out_hw), mode="bilinear", align_corners=align_corners)[0, 0].numpy()


def torch_linear(signal: np.ndarray, out_size: int, align_corners: bool) -> np.ndarray:
    """``F.interpolate(mode="linear")`` of a 1-D array (float64)."""
    t = torch.as_tensor(np.array(signal, dtype=np.float64))[None, None]
    return F.interpolate(t, size=out_size, mode="linear", align_corners=align_corners)[0, 0].numpy()


def torch_grid_sample_point(grid: np.ndarray, y: float, x: float) -> float:
    """Value at a free point by ``F.grid_sample`` (align_corners=True: -1/+1 = corner centres)."""
    h, w = grid.shape
    t = torch.as_tensor(np.array(grid, dtype=np.float64))[None, None]
    gx = 2.0 * x / (w - 1) - 1.0 if w > 1 else 0.0
    gy = 2.0 * y / (h - 1) - 1.0 if h > 1 else 0.0
    loc = torch.tensor([[[[gx, gy]]]], dtype=torch.float64)
    return float(F.grid_sample(t, loc, mode="bilinear", align_corners=True)[0, 0, 0, 0])


def pixel_centres(in_size: int, out_size: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """Centres of input and output pixels on one axis, in input-pixel *edge* units.

    Input pixel i spans [i, i + 1], so its centre is i + 0.5; an output pixel is
    drawn where it samples the input (before clamping).
    """
    inputs = np.arange(in_size) + 0.5
    outputs = np.array([unclamped_source(o, in_size, out_size, align_corners)
                        for o in range(out_size)]) + 0.5
    return inputs, outputs
