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


def label_box(img: np.ndarray, text: str, x: float, y: float, color: Sequence[int]) -> np.ndarray:
    """``text`` in white on a ``color`` box whose bottom-left is at (x, y), kept inside ``img``
    (RGB uint8, changed in place and returned). The size follows the picture's size."""
    h, w = img.shape[:2]
    fill = tuple(int(c) for c in color)
    font = _font(max(12, int(min(h, w) / 700 * 26)))
    if font is None or text.isascii():
        scale = max(0.4, min(h, w) / 700)
        (tw, th), base = cv2.getTextSize(text.encode("ascii", "replace").decode(), cv2.FONT_HERSHEY_SIMPLEX,
                                         scale, 1)
        x0 = int(min(max(x, 0), max(w - tw - 4, 0)))
        y0 = int(min(max(y, th + 4), h - 1))
        cv2.rectangle(img, (x0, y0 - th - base - 2), (x0 + tw + 4, y0 + 2), fill, -1)
        cv2.putText(img, text.encode("ascii", "replace").decode(), (x0 + 2, y0 - base + 1),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return img
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    x0 = int(min(max(x, 0), max(w - tw - 6, 0)))
    y0 = int(min(max(y, th + 6), h - 1))
    picture = Image.fromarray(img)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((x0, y0 - th - 6, x0 + tw + 6, y0), fill=fill)
    draw.text((x0 + 3 - left, y0 - th - 3 - top), text, font=font, fill=(255, 255, 255))
    img[...] = np.asarray(picture)
    return img
