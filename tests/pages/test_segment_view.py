"""The Segment result's display path: clicks on a scaled picture map to original pixels, views are
composed at display size and encoded once per view settings (hand-worked examples)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segdemo.data.images import InputImage
from segdemo.render import overlay
from segdemo.ui import segment_view


def test_a_click_on_the_served_picture_maps_to_the_original_pixel() -> None:
    served, original = (640, 960), (1600, 2400)  # (h, w): the photo served at 40 %
    assert segment_view.clicked_pixel({"x": 720, "y": 160}, "overlay", served, original) == (1800, 400)
    assert segment_view.clicked_pixel({"x": 0, "y": 0}, "mask", served, original) == (0, 0)
    assert segment_view.clicked_pixel({"x": 959, "y": 639}, "overlay", served, original) == (2397, 1597)
    # side by side: the mask half starts after the photo and the 8-px gap
    assert segment_view.clicked_pixel({"x": 960 + 8 + 720, "y": 160}, "side_by_side", served, original) == (1800, 400)
    assert segment_view.clicked_pixel({"x": 963, "y": 160}, "side_by_side", served, original) is None


def test_the_jpeg_is_a_faithful_small_encoding_of_the_composed_view() -> None:
    from segdemo import config
    from segdemo.data.images import decode_image

    rgb = decode_image((config.SAMPLES_DIR / "coffee.jpg").read_bytes(), "coffee.jpg").rgb
    data = segment_view.encode_jpeg(rgb)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert back.shape == rgb.shape
    assert np.abs(back - rgb).mean() < 3, "JPEG q90 stays close to the photo"
    assert len(data) < rgb.size / 4, "and is much smaller than the raw pixels"
    assert data[:2] == b"\xff\xd8"


def test_display_scale_is_at_most_one_and_fits_the_display_side() -> None:
    big = InputImage(name="big.jpg", digest="d", rgb=np.zeros((1600, 2400, 3), np.uint8))
    small = InputImage(name="small.jpg", digest="e", rgb=np.zeros((300, 451, 3), np.uint8))
    assert segment_view.display_scale(big) == segment_view.DISPLAY_SIDE / 2400
    assert segment_view.display_scale(small) == 1.0
    labels = np.zeros((1600, 2400), np.uint8)
    labels[:, 1200:] = 3
    # labels downscaled with nearest neighbour never blend: only the classes that were there
    down = overlay.resize_labels(labels, (960, 640))
    assert set(np.unique(down)) == {0, 3} and down.shape == (640, 960)
