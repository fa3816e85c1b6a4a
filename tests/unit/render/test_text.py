"""Labels in pictures: Korean class names drawn as Hangul (a CJK font), ASCII through OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo.render import text


def blank() -> np.ndarray:
    return np.zeros((200, 300, 3), np.uint8)


@pytest.mark.skipif(text.cjk_font_path() is None, reason="no CJK font installed (fonts-noto-cjk)")
def test_hangul_is_drawn_not_question_marks() -> None:
    hangul = text.label_box(blank(), "1 사람 0.98", 20, 60, (31, 119, 180))
    marks = text.label_box(blank(), "1 ?? 0.98", 20, 60, (31, 119, 180))
    other = text.label_box(blank(), "1 배경 0.98", 20, 60, (31, 119, 180))
    assert (hangul != marks).any() and (hangul != other).any()
    white = (hangul > 200).all(axis=2)
    assert white.sum() > 30  # the glyphs are there, in (anti-aliased) white
    assert (hangul[white.any(axis=1)][:, :, 2] > 0).any()  # on the coloured box


def test_label_stays_inside_the_picture() -> None:
    for x, y in ((-50, -50), (290, 199), (150, 5)):
        img = text.label_box(blank(), "person 0.91", x, y, (200, 0, 0))
        assert img.any()  # something drawn, no exception, shape kept
        assert img.shape == (200, 300, 3)


def test_ascii_uses_opencv() -> None:
    import cv2

    got = text.label_box(blank(), "ab", 10, 40, (0, 0, 255))
    assert (got[..., 2] == 255).sum() > 0
    ref = blank()
    scale = max(0.4, 200 / 700)
    (tw, th), base = cv2.getTextSize("ab", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(ref, (10, 40 - th - base - 2), (10 + tw + 4, 42), (0, 0, 255), -1)
    cv2.putText(ref, "ab", (12, 40 - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    assert np.array_equal(got, ref)
