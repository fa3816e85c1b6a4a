"""Text labels drawn into pictures, in any language the UI speaks.

OpenCV's Hershey fonts have ASCII only, so a Korean class name would come out as
question marks. Labels are drawn with Pillow and a CJK-capable font (Noto Sans
CJK, Debian's ``fonts-noto-cjk``) when one is installed; without one, non-ASCII
text falls back to OpenCV with the text transliterated to ``?`` — never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)


@lru_cache(maxsize=None)
def cjk_font_path() -> str | None:
    """The first installed font of :data:`FONT_CANDIDATES` (None: none is installed)."""
    return next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | None:
    path = cjk_font_path()
    return ImageFont.truetype(path, size) if path else None


Rect = tuple[int, int, int, int]  # left, top, right, bottom (inclusive pixels)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def label_size(text: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Width and height in pixels of :func:`label_box`'s box for ``text`` in a picture of ``shape``."""
    h, w = shape[:2]
    font = _font(max(12, int(min(h, w) / 700 * 26)))
    if font is None or text.isascii():
        (tw, th), base = cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, min(h, w) / 700), 1)
        return tw + 5, th + base + 5
    left, top, right, bottom = font.getbbox(text)
    return right - left + 7, bottom - top + 7


def _draw_at(img: np.ndarray, text: str, x0: int, top: int, color: Sequence[int]) -> Rect:
    """Draw the label box with its top-left corner at (x0, top); returns its rectangle."""
    h, w = img.shape[:2]
    fill = tuple(int(c) for c in color)
    font = _font(max(12, int(min(h, w) / 700 * 26)))
    if font is None or text.isascii():
        scale = max(0.4, min(h, w) / 700)
        (tw, th), base = cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y0 = top + th + base + 2  # the box runs from th + base + 2 above the anchor to 2 below it
        cv2.rectangle(img, (x0, top), (x0 + tw + 4, y0 + 2), fill, -1)
        cv2.putText(img, _ascii(text), (x0 + 2, y0 - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    1, cv2.LINE_AA)
        return x0, top, x0 + tw + 4, y0 + 2
    left, ftop, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - ftop
    picture = Image.fromarray(img)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((x0, top, x0 + tw + 6, top + th + 6), fill=fill)
    draw.text((x0 + 3 - left, top + 3 - ftop), text, font=font, fill=(255, 255, 255))
    img[...] = np.asarray(picture)
    return x0, top, x0 + tw + 6, top + th + 6


def label_box(img: np.ndarray, text: str, x: float, y: float, color: Sequence[int]) -> np.ndarray:
    """``text`` in white on a ``color`` box whose bottom-left is at (x, y), kept inside ``img``
    (RGB uint8, changed in place and returned). The size follows the picture's size."""
    h, w = img.shape[:2]
    bw, bh = label_size(text, img.shape)
    x0 = int(min(max(x, 0), max(w - bw, 0)))
    top = int(min(max(y - bh + 3, 0), max(h - bh, 0)))  # the box ends 2 px under y
    _draw_at(img, text, x0, top, color)
    return img


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[int, int]],
                 shape: tuple[int, ...]) -> list[Rect]:
    """Rectangles for labels of ``sizes`` (width, height) that belong at ``anchors`` (a box's top-left).

    Each label sits just above its box; with no room above (a box at the picture's top
    edge) it goes inside the box, under its top edge. A label that would cover one placed
    before moves to the nearest free spot beside or below/above it. Every rectangle is
    inside the picture; they overlap only when the picture has no free room left.
    """
    h, w = shape[:2]
    placed: list[Rect] = []
    for (ax, ay), (bw, bh) in zip(anchors, sizes):
        def inside(x0: float, top: float) -> tuple[int, int]:
            return int(min(max(x0, 0), max(w - bw, 0))), int(min(max(top, 0), max(h - bh, 0)))

        want = inside(ax, ay - bh if ay - bh >= 0 else ay + 2)
        candidates = [want]
        for r in placed:  # next to each placed label: below, above, right, left
            candidates += [inside(want[0], r[3] + 1), inside(want[0], r[1] - bh), inside(r[2] + 1, want[1]),
                           inside(r[0] - bw, want[1])]
        free = [c for c in candidates
                if not any(_overlap((c[0], c[1], c[0] + bw - 1, c[1] + bh - 1), r) for r in placed)]
        x0, top = min(free, key=lambda c: abs(c[0] - want[0]) + abs(c[1] - want[1])) if free else want
        placed.append((x0, top, x0 + bw - 1, top + bh - 1))
    return placed


def label_boxes(img: np.ndarray, labels: Sequence[tuple[str, float, float, Sequence[int]]]) -> list[Rect]:
    """Draw several (text, x, y, colour) labels, (x, y) the top-left of the thing each names,
    placed by :func:`place_labels` (inside the picture, not over each other). Returns the
    drawn rectangles (left, top, right, bottom), in the order given."""
    rects = place_labels([(x, y) for _, x, y, _ in labels], [label_size(t, img.shape) for t, *_ in labels],
                         img.shape)
    return [_draw_at(img, text, r[0], r[1], color) for (text, _, _, color), r in zip(labels, rects)]
