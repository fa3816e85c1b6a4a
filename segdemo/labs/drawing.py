"""Small pictures for the labs (numpy + Pillow): masks, overlays, taps, value grids."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from segdemo.labs.rf_measure import Tap
from segdemo.render import draw

HOLE_RGB = (235, 235, 235)
REACHED_RGB = (31, 119, 180)
OUTSIDE_RGB = (255, 255, 255)
RATE_COLORS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
               (145, 30, 180))


def scale_nearest(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Integer nearest-neighbour enlargement (each pixel becomes a scale x scale block)."""
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1) if scale > 1 else rgb


def rf_grid_image(gradient: np.ndarray, margin: int, target: int = 520,
                  show_paths: bool = False) -> np.ndarray:
    """The exact-RF grid: reached pixels coloured (by log path count if asked), holes grey.

    Pixels outside the RF's bounding box (the margin) are white; a grid line
    separates cells when they are at least 6 screen pixels wide.
    """
    mask = gradient != 0
    h, w = mask.shape
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    rgb[:] = OUTSIDE_RGB
    ys, xs = np.nonzero(mask)
    if ys.size:
        top, left, bottom, right = ys.min(), xs.min(), ys.max(), xs.max()
        rgb[top:bottom + 1, left:right + 1] = HOLE_RGB
    if show_paths and ys.size:
        logv = np.log1p(np.abs(gradient[mask]))
        t = (logv - logv.min()) / max(float(np.ptp(logv)), 1e-12)
        from segdemo.render.overlay import heatmap

        rgb[mask] = heatmap(t[None, :])[0]
    else:
        rgb[mask] = REACHED_RGB
    scale = max(1, target // max(h, w))
    big = scale_nearest(rgb, scale)
    if scale >= 6:
        big[::scale, :] = (big[::scale, :] * 0.8).astype(np.uint8)
        big[:, ::scale] = (big[:, ::scale] * 0.8).astype(np.uint8)
    return big


def blend_heat(rgb: np.ndarray, values: np.ndarray, alpha: float = 0.6, gamma: float = 0.5) -> np.ndarray:
    """Overlay ``values`` in [0, 1] (gamma-compressed for visibility) on the image."""
    from segdemo.render.overlay import heatmap

    v = np.clip(values, 0.0, 1.0) ** gamma
    heat = heatmap(v).astype(np.float32)
    weight = (alpha * v)[..., None]
    return (rgb.astype(np.float32) * (1 - weight) + heat * weight).clip(0, 255).astype(np.uint8)


def shade_outside(rgb: np.ndarray, inside: np.ndarray, factor: float = 0.35) -> np.ndarray:
    """Darken the pixels outside ``inside`` (the theoretical RF stays bright)."""
    out = rgb.astype(np.float32)
    out[~inside] *= factor
    return out.astype(np.uint8)


def draw_box_and_point(rgb: np.ndarray, box: tuple[int, int, int, int] | None, yx: tuple[int, int],
                       color: tuple[int, int, int] = (255, 255, 0), cross_arm: int = 4) -> np.ndarray:
    """A rectangle (top, left, height, width) and a cross-hair at ``yx``.

    ``cross_arm``: the cross's half length in line widths; a long cross drawn white
    under red stays visible on any colour (a projector washes thin lines out).
    """
    img = np.ascontiguousarray(rgb).copy()
    width = max(1, round(max(rgb.shape[:2]) / 250))
    if box is not None:
        top, left, h, w = box
        draw.rectangle(img, left, top, left + w, top + h, color, width)
    y, x = yx
    if cross_arm > 4:
        img = draw.cross(img, x, y, cross_arm * width + width, (255, 255, 255), 3 * width)
    return draw.cross(img, x, y, cross_arm * width, (255, 0, 0), width if cross_arm <= 4 else 2 * width)


# The effective field falls off fast: on a linear (or gamma) scale all but its peak was a faint
# tint, so it is shown on a log scale over ERF_DECADES decades (yellow: the peak, purple: 1/100 of
# it), nearly opaque, and a long white-outlined red cross marks the click, legible on a projector.
ERF_ALPHA, ERF_DECADES, ERF_CROSS_ARM = 0.9, 2.0, 12


ERF_SMOOTH_PX = 5  # a raw input gradient is speckled pixel by pixel: shown as a local mean, it reads as a field


def erf_scale(erf: np.ndarray) -> np.ndarray:
    """The effective field (max 1) as the picture shows it: a local mean over ERF_SMOOTH_PX pixels
    (renormalised to max 1) on a log scale, 1 at the peak, 0 at 10^-ERF_DECADES and below."""
    import cv2

    smooth = cv2.blur(np.asarray(erf, dtype=np.float32), (ERF_SMOOTH_PX, ERF_SMOOTH_PX))
    smooth /= max(float(smooth.max()), 1e-12)
    return np.clip(1.0 + np.log10(np.maximum(smooth, 1e-12)) / ERF_DECADES, 0.0, 1.0)


def erf_picture(rgb: np.ndarray, support: np.ndarray, erf: np.ndarray, box: tuple[int, int, int, int] | None,
                yx: tuple[int, int]) -> np.ndarray:
    """The Receptive Field page's picture: the image darkened outside the theoretical field
    (``support``), the effective field ``erf`` (max 1) as a log-scale heat map, its box and the click."""
    from segdemo.render.overlay import heatmap

    t = erf_scale(erf)
    weight = (ERF_ALPHA * np.clip(4 * t, 0.0, 1.0))[..., None]  # fades in over the lowest quarter
    base = shade_outside(rgb, support).astype(np.float32)
    heat = (base * (1 - weight) + heatmap(t).astype(np.float32) * weight).clip(0, 255).astype(np.uint8)
    return draw_box_and_point(heat, box, yx, cross_arm=ERF_CROSS_ARM)


def draw_taps(rgb: np.ndarray, taps: Sequence[Tap], yx: tuple[int, int], output_stride: int,
              margin_color: tuple[int, int, int] = (96, 96, 96)) -> tuple[np.ndarray, tuple[int, int]]:
    """ASPP sampling positions: a filled dot per tap (hollow on padding), one colour per rate.

    Taps outside the feature map are still drawn: the image is placed on a grey
    canvas large enough to hold them (at most one image size on each side).
    The feature pixel of the click is outlined (output_stride x output_stride).
    Returns the picture and the (top, left) offset of the image in it.
    """
    h, w = rgb.shape[:2]
    size = max(4, round(max(h, w) / 45))  # dots stay visible when the wide canvas is scaled down
    ys = [t.y for t in taps] or [0.0]
    xs = [t.x for t in taps] or [0.0]
    # Just enough margin for every dot (radius ``size``), never more than the image size.
    top = int(min(h, max(0.0, size + 1 - min(ys))))
    left = int(min(w, max(0.0, size + 1 - min(xs))))
    bottom = int(min(h, max(0.0, max(ys) + size + 2 - h)))
    right = int(min(w, max(0.0, max(xs) + size + 2 - w)))
    canvas = np.empty((h + top + bottom, w + left + right, 3), dtype=np.uint8)
    canvas[:] = margin_color
    canvas[top:top + h, left:left + w] = rgb
    rates = sorted({t.rate for t in taps})
    for t in taps:
        color = RATE_COLORS[rates.index(t.rate) % len(RATE_COLORS)]
        cx, cy = t.x + left, t.y + top
        if t.inside:
            draw.dot(canvas, cx, cy, size, color)
            draw.dot(canvas, cx, cy, size, (0, 0, 0), filled=False)
        else:
            draw.dot(canvas, cx, cy, size, color, filled=False, thickness=max(2, size // 3))
    y, x = yx
    fy = (y // output_stride) * output_stride + top
    fx = (x // output_stride) * output_stride + left
    draw.rectangle(canvas, fx, fy, fx + output_stride, fy + output_stride, (255, 255, 255), 2)
    return canvas, (top, left)


def rate_color_hex(index: int) -> str:
    """The colour of the index-th rate as #rrggbb (for the legend)."""
    r, g, b = RATE_COLORS[index % len(RATE_COLORS)]
    return f"#{r:02x}{g:02x}{b:02x}"


def grey_where(rgb: np.ndarray, empty: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Paint pixels with no value (e.g. after unpooling) in ``color``."""
    out = rgb.copy()
    out[empty] = color
    return out
