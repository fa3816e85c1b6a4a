"""Decoding user images safely into RGB arrays.

Every way an upload can go wrong ends in :class:`ImageError`, whose ``key`` is
an i18n catalogue key, so the page can say what happened in the user's language.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segdemo.i18n.errors import UserError
from segdemo.render.draw import resize_area

# Phones take 12-50 MP photos; 60 MP is generous but rejects decompression bombs
# (a tiny PNG declaring 20000x20000 = 400 MP) before any pixel is decoded.
MAX_PIXELS = 60_000_000
# The one list of image file types accepted anywhere (photos, ground-truth masks, batch folders);
# a GIF is read as its first frame.
UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")


class ImageError(UserError):
    """An image that cannot be used; ``key`` names the catalogue message."""


@dataclass
class InputImage:
    """A decoded image: its name, a digest of the file's bytes and the RGB pixels."""

    name: str
    digest: str
    rgb: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]


def digest_bytes(data: bytes) -> str:
    """A short content digest, used as cache key (never the array itself)."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale to 8 bits, scaling the full range like viewers do."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) <= 65535):
        arr8 = (arr.astype(np.uint32) // 257).astype(np.uint8)
    else:  # "I" beyond 16 bits or "F": stretch its own range
        arr = arr.astype(np.float64)
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        arr8 = np.zeros(arr.shape, np.uint8) if hi <= lo else ((arr - lo) / (hi - lo) * 255).round().astype(np.uint8)
    return Image.fromarray(arr8)


def to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append("note.image.high_bit_depth")
        img = _to_8bit(img)
    if img.mode == "CMYK":
        notes.append("note.image.cmyk")
    if img.mode in ("P", "PA") :
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        notes.append("note.image.alpha")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("L", "1"):
        notes.append("note.image.grayscale")
    return img.convert("RGB")


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Open and load an image file (its first frame), refusing what cannot be used.

    Empty, oversized (decompression-bomb), non-image and corrupt files raise an
    :class:`ImageError` with key ``error.image.empty|too_large|not_image|corrupt``.
    The size is checked from the header, before any pixel is decoded.
    """
    if not data:
        raise ImageError("error.image.empty", name=name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError("error.image.too_large", name=name, width=width, height=height,
                                 limit=MAX_PIXELS // 1_000_000)
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("error.image.too_large", name=name, width="?", height="?",
                         limit=MAX_PIXELS // 1_000_000) from None
    except UnidentifiedImageError:
        raise ImageError("error.image.not_image", name=name) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ImageError("error.image.corrupt", name=name) from None
    return img


def decode_image(data: bytes, name: str = "image") -> InputImage:
    """Decode an uploaded file into an RGB image.

    Applies EXIF orientation, takes the first frame of animations, converts
    grayscale, 16-bit, palette, RGBA and CMYK to RGB, and rejects empty, corrupt,
    non-image and oversized (decompression-bomb) files with an :class:`ImageError`.
    """
    img = open_image(data, name)
    notes: list[str] = []
    if getattr(img, "n_frames", 1) > 1:
        notes.append("note.image.first_frame")
    try:
        exif_orientation = img.getexif().get(0x0112, 1)
        img = ImageOps.exif_transpose(img)
        if exif_orientation not in (None, 1):
            notes.append("note.image.exif_rotated")
        rgb = to_rgb(img, notes)
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ImageError("error.image.corrupt", name=name) from None
    # np.array copies: a writable, contiguous array that torch can wrap without warnings
    return InputImage(name=name, digest=digest_bytes(data), rgb=np.array(rgb, dtype=np.uint8), notes=notes)


def load_image_file(path: str, name: str | None = None) -> InputImage:
    """Read and decode an image file from disk (CLI, samples)."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_image(data, name or str(path).rsplit("/", 1)[-1])


def downscale_for_display(rgb: np.ndarray, max_side: int = 1280) -> np.ndarray:
    """A copy no larger than ``max_side`` for the browser (re-encoding is per rerun)."""
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    # Pixel-area averaging (OpenCV): faster than a bilinear resize and free of aliasing.
    return resize_area(rgb, (max(1, round(h * scale)), max(1, round(w * scale))))


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` resized bilinearly to ``size`` = (height, width) (a picture beside a network input of that size)."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def grey_image(height: int, width: int) -> np.ndarray:
    """A mid-grey RGB picture (a lab's input when no image is to be had)."""
    return np.full((height, width, 3), 128, dtype=np.uint8)
