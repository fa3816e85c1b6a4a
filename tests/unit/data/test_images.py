"""Decoding of uploads: every awkward format is handled or rejected with a message key."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segdemo.data.images import ImageError, decode_image, downscale_for_display


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A ~100-byte PNG whose header declares a huge image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def test_rgb_png_round_trip():
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    img = decode_image(_encode(Image.fromarray(rgb), "PNG"), "a.png")
    assert img.rgb.shape == (20, 30, 3) and img.rgb.dtype == np.uint8
    np.testing.assert_array_equal(img.rgb, rgb)
    assert img.size == (30, 20) and img.notes == []


@pytest.mark.parametrize("data,key", [
    (b"", "error.image.empty"),
    (b"this is a text file, not an image", "error.image.not_image"),
    (bomb_png(), "error.image.too_large"),
])
def test_rejected_inputs(data, key):
    with pytest.raises(ImageError) as info:
        decode_image(data, "x")
    assert info.value.key == key


def test_truncated_png_is_corrupt():
    data = _encode(Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2], "half.png")
    assert info.value.key in ("error.image.corrupt", "error.image.not_image")


def test_grayscale_and_16bit():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = decode_image(_encode(Image.fromarray(gray, "L"), "PNG"), "g.png")
    np.testing.assert_array_equal(img.rgb[..., 0], gray)
    np.testing.assert_array_equal(img.rgb[..., 2], gray)
    deep = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    img16 = decode_image(_encode(Image.fromarray(deep), "PNG"), "d.png")
    np.testing.assert_array_equal(img16.rgb[..., 1], gray)  # 257*v // 257 == v
    assert "note.image.high_bit_depth" in img16.notes


def test_rgba_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom transparent
    img = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), "t.png")
    np.testing.assert_array_equal(img.rgb[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(img.rgb[3, 3], [255, 255, 255])


def test_cmyk_jpeg_converted():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    img = decode_image(_encode(cmyk, "JPEG", quality=100), "c.jpg")
    r, g, b = img.rgb[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60
    assert "note.image.cmyk" in img.notes


def test_exif_orientation_applied():
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)  # left half red
    pil = Image.fromarray(arr)
    exif = pil.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img = decode_image(_encode(pil, "JPEG", exif=exif.tobytes(), quality=100), "r.jpg")
    assert img.rgb.shape[:2] == (20, 10)
    # The red left half ends up on top after a clockwise rotation.
    assert img.rgb[2, 5, 0] > 200 and img.rgb[17, 5, 0] < 60
    assert "note.image.exif_rotated" in img.notes


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = decode_image(buf.getvalue(), "a.gif")
    r, g, b = img.rgb[0, 0].astype(int)
    assert r > 200 and b < 60
    assert "note.image.first_frame" in img.notes


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_other_formats(fmt):
    rgb = np.full((12, 12, 3), (10, 120, 240), np.uint8)
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    img = decode_image(_encode(Image.fromarray(rgb), fmt, **kwargs), f"x.{fmt.lower()}")
    np.testing.assert_array_equal(img.rgb, rgb)


def test_digest_depends_on_content_only():
    a = _encode(Image.new("RGB", (4, 4), (1, 2, 3)), "PNG")
    b = _encode(Image.new("RGB", (4, 4), (1, 2, 4)), "PNG")
    assert decode_image(a, "x").digest == decode_image(a, "y").digest != decode_image(b, "x").digest


def test_downscale_for_display_keeps_aspect():
    big = np.zeros((1000, 3000, 3), np.uint8)
    small = downscale_for_display(big, 1500)
    assert small.shape == (500, 1500, 3)
    assert downscale_for_display(small, 2000) is small
