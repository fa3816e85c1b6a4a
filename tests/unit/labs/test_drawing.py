"""Lab pictures: what is drawn is where the computation put it."""

from __future__ import annotations

import numpy as np

from segdemo.labs import drawing
from segdemo.labs import receptive_field as rf
from segdemo.labs import rf_measure as rfm


def test_rf_grid_image_marks_reached_pixels_and_holes() -> None:
    exact = rf.exact_rf(rf.PRESETS["gridding_2_2_2"])
    size = exact.gradient.shape[0]
    picture = drawing.rf_grid_image(exact.gradient, exact.margin, target=size)  # one pixel per cell
    assert picture.shape == (size, size, 3)
    reached = np.all(picture == drawing.REACHED_RGB, axis=-1)
    holes = np.all(picture == drawing.HOLE_RGB, axis=-1)
    assert np.array_equal(reached, exact.mask)
    assert holes.sum() == exact.holes
    assert np.all(picture[0] == drawing.OUTSIDE_RGB)  # the margin row


def test_taps_drawn_at_their_positions_hollow_on_padding() -> None:
    rgb = np.zeros((200, 200, 3), dtype=np.uint8)
    taps = rfm.aspp_taps((100, 20), (200, 200), 8, (6,))
    out, (top, left) = drawing.draw_taps(rgb, taps, (100, 20), 8)
    assert left > 0 and top == 0  # the taps left of the image get a margin
    assert np.array_equal(out[top:top + 200, left:left + 200][150:, 150:], rgb[150:, 150:])
    outside = [t for t in taps if not t.inside]
    assert outside
    for t in taps:
        y, x = int(round(t.y)) + top, int(round(t.x)) + left
        centre = tuple(out[y, x])
        if t.inside:
            assert centre == drawing.RATE_COLORS[0]
        else:  # hollow circle on the grey margin: centre untouched
            assert centre in ((0, 0, 0), (96, 96, 96))


def test_shade_and_blend_keep_shape_and_range() -> None:
    rgb = np.full((10, 12, 3), 200, dtype=np.uint8)
    inside = np.zeros((10, 12), dtype=bool)
    inside[2:5, 3:7] = True
    shaded = drawing.shade_outside(rgb, inside)
    assert shaded[3, 4, 0] == 200 and shaded[0, 0, 0] == 70
    heat = drawing.blend_heat(rgb, np.linspace(0, 1, 120).reshape(10, 12))
    assert heat.shape == rgb.shape and heat.dtype == np.uint8
    assert np.array_equal(heat[0, 0], rgb[0, 0])  # zero gradient leaves the photo untouched
