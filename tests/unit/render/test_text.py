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


def _inside(rect: tuple[int, int, int, int], shape: tuple[int, ...]) -> bool:
    left, top, right, bottom = rect
    return 0 <= left <= right < shape[1] and 0 <= top <= bottom < shape[0]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@pytest.mark.parametrize("names", [("person", "person", "person"), ("사람", "사람", "사람")])
def test_labels_of_boxes_at_the_top_edge_stay_inside_and_apart(names: tuple[str, ...]) -> None:
    """Page 11: pedestrians whose boxes touch the top edge (and each other) keep readable labels."""
    img = np.zeros((360, 480, 3), np.uint8)
    # Three touching boxes at y = 0, one at y = 3, and one lower box whose label room collides with the first.
    boxes = [(0, 0), (60, 0), (120, 1), (300, 3), (10, 30)]
    labels = [(f"{k + 1} {names[k % 3]} 0.9{k}", x, y, (200, 30, 30)) for k, (x, y) in enumerate(boxes)]
    rects = text.label_boxes(img, labels)
    assert len(rects) == len(labels)
    for rect in rects:
        assert _inside(rect, img.shape), rect
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not _overlap(a, b), (a, b)
    # A box at the top edge gets its label inside the box (no room above), under the box's top edge.
    assert rects[0][1] >= 0 and rects[0][0] == 0
    # Each label's size is what label_size says (the test measures the drawn boxes, not a guess).
    for (t, *_), rect in zip(labels, rects):
        assert (rect[2] - rect[0] + 1, rect[3] - rect[1] + 1) == text.label_size(t, img.shape)


def test_a_label_above_its_box_when_there_is_room() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    (rect,) = text.label_boxes(img, [("person 0.91", 50, 120, (0, 0, 200))])
    assert rect[3] < 120 and rect[0] == 50  # ends above the box's top edge, starts at its left edge


def test_drawn_labels_show_in_the_picture() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    rects = text.label_boxes(img, [("1 person 0.99", 0, 0, (0, 0, 255)), ("2 person 0.98", 5, 0, (0, 0, 255))])
    for left, top, right, bottom in rects:
        patch = img[top:bottom + 1, left:right + 1]
        assert (patch[..., 2] == 255).mean() > 0.5  # the coloured box is there
        assert (patch.min(axis=2) > 200).any()  # and white text on it
