"""Reading ground-truth masks: palette PNGs, index PNGs and colour-coded RGB.

A ground-truth file becomes an array of class ids in the label set's numbering.
Nothing is guessed silently: every conversion (0/255 binary masks, colours
looked up in a palette, resizing, values outside the label set, colours that
are in no palette) is recorded as a :class:`Notice` the page and the CLI show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from segdemo import i18n
from segdemo.render import overlay
from segdemo.i18n.errors import UserError
from segdemo.data.images import ImageError, open_image
from segdemo.data.labels import LabelSet



@dataclass(frozen=True)
class Notice:
    """Something the user must be told: a catalogue key, its values and a level."""

    key: str
    values: dict[str, object] = field(default_factory=dict)
    level: str = "info"  # "info", "warning" or "error"


def describe_notice(notice: Notice, lang: str) -> str:
    """A notice (or any error carrying ``key`` and ``values``) as text in ``lang``.

    A label-set key among the values (``labels="voc"``) is shown by its name
    ("PASCAL VOC (21 classes)"); a key missing from the catalogue is shown raw.
    """
    values = dict(notice.values)
    if isinstance(values.get("labels"), str):
        values["labels"] = i18n.catalogue(lang).get(f"labelset.{values['labels']}", values["labels"])
    try:
        return i18n.t(notice.key, lang, **values)
    except (KeyError, IndexError):
        return f"{notice.key} {notice.values}"


class MaskError(UserError):
    """A mask that cannot be used at all; ``key`` names the catalogue message."""


@dataclass
class GroundTruth:
    """A decoded ground-truth mask.

    ``labels`` holds class ids (int32, HxW); ``ignore_index`` pixels and ids
    outside the label set are excluded from every count (see :func:`valid_mask`).
    ``out_of_set`` maps each id outside the label set to its pixel count and
    ``unknown_colors`` lists colours found in no palette with their counts.
    """

    name: str
    labels: np.ndarray
    source_format: str
    notices: list[Notice] = field(default_factory=list)
    out_of_set: dict[int, int] = field(default_factory=dict)
    unknown_colors: list[tuple[tuple[int, int, int], int]] = field(default_factory=list)


def short_list(names: list[str], limit: int = 10) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are."""
    rest = len(names) - limit
    return ", ".join(names[:limit]) + (f", … (+{rest})" if rest > 0 else "")


def valid_mask(labels: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """Pixels that take part in evaluation: ids inside the label set, not the ignore label."""
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        valid &= labels != ignore_index
    return valid


def _rgb_key(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def colour_table(label_set: LabelSet, ignore_index: int | None) -> dict[tuple[int, int, int], int]:
    """Colour -> id for colour-coded masks: the class colours and the ignore colour."""
    table = {tuple(int(v) for v in c): i for i, c in enumerate(label_set.colors)}
    if ignore_index is not None and label_set.ignore_color not in table:
        table[tuple(label_set.ignore_color)] = ignore_index
    return table


def decode_rgb_mask(
    rgb: np.ndarray, label_set: LabelSet, ignore_index: int | None
) -> tuple[np.ndarray, list[tuple[tuple[int, int, int], int]]]:
    """Map a colour-coded mask through the label set's palette.

    Returns ``(labels, unknown)``: pixels of a colour in no palette entry get the
    id ``-1`` (outside the label set, so never counted) and are listed in
    ``unknown`` as ``((r, g, b), pixel count)``, most frequent first.
    """
    keys = _rgb_key(rgb)
    uniq, inverse, counts = np.unique(keys.reshape(-1), return_inverse=True, return_counts=True)
    table = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colour_table(label_set, ignore_index).items()}
    ids = np.array([table.get(int(k), -1) for k in uniq], dtype=np.int32)
    labels = ids[inverse].reshape(keys.shape)
    unknown = [
        (((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255), int(n))
        for k, n, i in zip(uniq, counts, ids) if i < 0
    ]
    unknown.sort(key=lambda item: -item[1])
    return labels, unknown


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to ``size`` = (height, width) by nearest neighbour (ids never blend)."""
    return overlay.resize_labels(np.asarray(labels, dtype=np.int32), (size[1], size[0]))


# The image decoder's refusals, in the words of the mask messages.
_MASK_ERROR_KEYS = {
    "error.image.empty": "eval.err.mask_empty",
    "error.image.too_large": "eval.err.mask_too_large",
    "error.image.not_image": "eval.err.mask_not_image",
    "error.image.corrupt": "eval.err.mask_corrupt",
}


def _open(data: bytes, name: str) -> Image.Image:
    try:
        return open_image(data, name)
    except ImageError as exc:
        raise MaskError(_MASK_ERROR_KEYS[exc.key], **exc.values) from None


def decode_mask(
    data: bytes,
    name: str,
    label_set: LabelSet,
    ignore_index: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> GroundTruth:
    """Decode a ground-truth file into class ids of ``label_set``.

    * palette ("P") PNG, as VOC ships it: the palette *indices* are the ids;
    * single-channel PNG (8 or 16 bit): the values are the ids; a two-class
      label set given a 0/255 mask (ISBI) reads 255 as class 1;
    * RGB(A): colours looked up in the label set's palette (class colours and
      the ignore colour); unknown colours are reported and never counted.
      An RGB file whose three channels are equal is read as an index map.

    ``image_size`` = (height, width) of the image: a mask of another size is
    resized by nearest neighbour, with a warning. ``ignore_index`` defaults to
    the label set's own.
    """
    if ignore_index is None:
        ignore_index = label_set.ignore_index
    img = _open(data, name)
    notices: list[Notice] = []
    unknown: list[tuple[tuple[int, int, int], int]] = []
    if img.format == "JPEG":
        notices.append(Notice("eval.note.jpeg_mask", {"name": name}, "warning"))
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    mode = img.mode
    if mode in ("P", "PA"):
        source = "palette"
        labels = np.asarray(img if mode == "P" else img.getchannel(0)).astype(np.int32)
        if img.palette is not None and img.palette.mode == "RGB":
            pal = np.asarray(img.getpalette() or [], dtype=np.int64).reshape(-1, 3)
            used = [int(i) for i in np.unique(labels) if i < min(len(pal), label_set.num_classes)]
            if any(tuple(pal[i]) != tuple(label_set.colors[i]) for i in used):
                notices.append(Notice("eval.note.palette_differs", {"name": name, "labels": label_set.key}))
    elif mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA"):
        source = "index"
        arr = np.asarray(img.getchannel(0) if mode == "LA" else img)
        labels = arr.astype(np.int32)
    elif mode in ("RGB", "RGBA"):
        rgb = np.asarray(img.convert("RGB"))
        labels, unknown = decode_rgb_mask(rgb, label_set, ignore_index)
        source = "color"
        grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
        if unknown and grey:
            # A grey-level id map saved as RGB: the values, not the colours, are the ids.
            labels, unknown, source = rgb[..., 0].astype(np.int32), [], "index"
            notices.append(Notice("eval.note.grey_rgb", {"name": name}))
        else:
            notices.append(Notice("eval.note.color_decoded", {"name": name, "labels": label_set.key}))
    else:
        raise MaskError("eval.err.mask_mode", name=name, mode=mode)

    if source == "index" and label_set.num_classes == 2 and ignore_index != 255:
        values = np.unique(labels)
        if set(values.tolist()) <= {0, 255} and 255 in values:
            labels = (labels == 255).astype(np.int32)
            notices.append(Notice("eval.note.binary_255", {"name": name}))

    if unknown:
        total = sum(n for _, n in unknown)
        listed = short_list([f"RGB{c} × {n}" for c, n in unknown], limit=5)
        notices.append(Notice("eval.note.unknown_colors",
                              {"name": name, "count": len(unknown), "pixels": total, "colors": listed},
                              "warning"))

    out_of_set: dict[int, int] = {}
    if not unknown:
        bad = ~((labels >= 0) & (labels < label_set.num_classes))
        if ignore_index is not None:
            bad &= labels != ignore_index
        if bad.any():
            values, counts = np.unique(labels[bad], return_counts=True)
            out_of_set = {int(v): int(n) for v, n in zip(values, counts)}
            listed = short_list([f"{v} × {n}" for v, n in out_of_set.items()], limit=8)
            notices.append(Notice("eval.note.out_of_set",
                                  {"name": name, "ids": listed, "pixels": int(counts.sum()),
                                   "labels": label_set.key, "last": label_set.num_classes - 1},
                                  "warning"))

    if image_size is not None and labels.shape != tuple(image_size):
        notices.append(Notice("eval.note.resized",
                              {"name": name, "mask_w": labels.shape[1], "mask_h": labels.shape[0],
                               "image_w": image_size[1], "image_h": image_size[0]},
                              "warning"))
        labels = resize_nearest(labels, image_size)
    return GroundTruth(name=name, labels=np.ascontiguousarray(labels), source_format=source,
                       notices=notices, out_of_set=out_of_set, unknown_colors=unknown)


def encode_index_png(labels: np.ndarray, label_set: LabelSet) -> bytes:
    """A palette PNG of ``labels`` (ids < 256) with the label set's colours, as VOC ships masks."""
    return overlay.label_png_bytes(np.asarray(labels), label_set)
