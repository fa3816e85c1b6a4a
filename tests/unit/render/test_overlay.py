"""Rendering: overlays, outlines, legends and palette PNGs against hand-made references."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segdemo.render import overlay
from segdemo.data.labels import CAMVID, VOC, voc_colormap


def test_voc_palette_matches_published_colours():
    cmap = voc_colormap(21)
    assert tuple(cmap[1]) == (128, 0, 0)  # aeroplane
    assert tuple(cmap[15]) == (192, 128, 128)  # person
    assert tuple(cmap[20]) == (0, 64, 128)  # tvmonitor
    assert tuple(VOC.palette_array()[255]) == (224, 224, 192)  # VOC's void colour


def test_overlay_equals_float_blend_within_rounding():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    labels = rng.integers(0, 21, (40, 50), dtype=np.uint8)
    for opacity in (0.0, 0.3, 0.5, 1.0):
        out = overlay.overlay(rgb, labels, VOC, opacity)
        colors = VOC.palette_array()[labels].astype(np.float64)
        expected = rgb * (1 - opacity) + colors * opacity
        assert np.abs(out.astype(np.float64) - expected).max() <= 1.0


def test_hidden_classes_leave_the_photo_untouched():
    rgb = np.full((10, 10, 3), 77, np.uint8)
    labels = np.zeros((10, 10), np.uint8)
    labels[:, 5:] = 15
    out = overlay.overlay(rgb, labels, VOC, 1.0, hidden={15})
    assert (out[:, 5:] == 77).all()
    assert (out[:, :5] == VOC.palette_array()[0]).all()


def test_outline_marks_only_boundaries():
    rgb = np.full((20, 20, 3), 50, np.uint8)
    labels = np.zeros((20, 20), np.uint8)
    labels[5:15, 5:15] = 8
    out = overlay.overlay(rgb, labels, CAMVID, 0.5, outline=True)
    changed = (out != 50).any(-1)
    assert changed[5, 10] and changed[10, 5]  # on the square's border
    assert not changed[10, 10] and not changed[0, 0]  # inside and far outside


def test_class_areas_sorted_by_area():
    labels = np.array([[1, 1, 1, 2], [1, 2, 0, 0]], np.uint8)
    assert overlay.class_areas(labels, 3) == [(1, 4, 0.5), (0, 2, 0.25), (2, 2, 0.25)]


def test_label_png_round_trip_keeps_indices_and_palette():
    labels = np.random.default_rng(1).integers(0, 21, (30, 40), dtype=np.uint8)
    labels[0, 0] = 255
    img = Image.open(io.BytesIO(overlay.label_png_bytes(labels, VOC)))
    assert img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img), labels)
    palette = np.array(img.getpalette()[: 21 * 3]).reshape(21, 3)
    np.testing.assert_array_equal(palette, voc_colormap(21))


def test_heatmap_endpoints_are_viridis():
    hm = overlay.heatmap(np.array([[0.0, 1.0]]))
    assert tuple(hm[0, 0]) == (68, 1, 84) and tuple(hm[0, 1]) == (253, 231, 37)


def test_side_by_side_click_mapping():
    assert overlay.view_to_image_xy("side_by_side", 110, 5, 100) == (2, 5)
    assert overlay.view_to_image_xy("side_by_side", 103, 5, 100) is None
    assert overlay.view_to_image_xy("overlay", 50, 5, 100) == (50, 5)


def test_resize_labels_never_blends():
    labels = np.array([[0, 15], [15, 0]], np.uint8)
    big = overlay.resize_labels(labels, (7, 5))
    assert set(np.unique(big)) <= {0, 15}
