"""Drawing on figures with OpenCV: rectangles, cross-hairs, dots, label outlines, resizing.

Coordinates are (x, y) pixels as OpenCV takes them; every function returns a new
image (or draws into one the caller owns, named ``into``). Lines of thickness
``t`` lie inside the rectangle they outline, as a frame around a window should.
"""

from __future__ import annotations

import cv2
import numpy as np

Color = tuple[int, int, int]


def rectangle(into: np.ndarray, left: int, top: int, right: int, bottom: int, color: Color,
              thickness: int = 1) -> np.ndarray:
    """Outline the pixels [left, right) x [top, bottom) of ``into`` (in place) with a frame ``thickness`` wide."""
    t = max(1, int(thickness))
    # OpenCV centres a thick line on its coordinates: inset it so the frame stays inside.
    inset_lo, inset_hi = t // 2, (t - 1) // 2
    x0, y0 = int(left) + inset_lo, int(top) + inset_lo
    x1, y1 = int(right) - 1 - inset_hi, int(bottom) - 1 - inset_hi
    if x1 < x0 or y1 < y0:  # thinner than the frame: fill it
        cv2.rectangle(into, (int(left), int(top)), (int(right) - 1, int(bottom) - 1), _bgr_safe(color), -1)
    else:
        cv2.rectangle(into, (x0, y0), (x1, y1), _bgr_safe(color), t)
    return into


def cross(into: np.ndarray, x: int, y: int, radius: int, color: Color, thickness: int = 1) -> np.ndarray:
    """A '+' centred on (x, y) (in place)."""
    cv2.line(into, (int(x) - radius, int(y)), (int(x) + radius, int(y)), _bgr_safe(color), max(1, thickness))
    cv2.line(into, (int(x), int(y) - radius), (int(x), int(y) + radius), _bgr_safe(color), max(1, thickness))
    return into


def dot(into: np.ndarray, x: float, y: float, radius: int, color: Color, filled: bool = True,
        thickness: int = 1) -> np.ndarray:
    """A filled (or hollow) circle at (x, y) (in place), anti-aliased."""
    cv2.circle(into, (int(round(x)), int(round(y))), max(1, int(radius)), _bgr_safe(color),
               -1 if filled else max(1, thickness), lineType=cv2.LINE_AA)
    return into


def label_boundaries(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Pixels where the class changes to the right or below neighbour, grown to ``thickness`` pixels.

    The growth is a 4-neighbour dilation (``thickness - 1`` steps) done by OpenCV.
    """
    edge = np.zeros(labels.shape, dtype=np.uint8)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    if thickness > 1:
        edge = cv2.dilate(edge, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)), iterations=thickness - 1)
    return edge.astype(bool)


def resize_area(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` shrunk to ``size`` = (height, width) by pixel-area averaging (no aliasing on big photos)."""
    return cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)


def _bgr_safe(color: Color) -> tuple[int, int, int]:
    # The arrays are RGB and OpenCV only stores the channels it is given, so RGB goes in as is.
    return tuple(int(c) for c in color)  # type: ignore[return-value]
