"""Penn-Fudan pedestrians with instance masks, and segdemo's fixed train/val split.

Layout under :func:`segdemo.config.data_dir` (the public copy, not shipped)::

    pennfudan/PNGImages/<stem>.png          149 RGB photos, 253-1017 px wide
    pennfudan/PedMasks/<stem>_mask.png      0 = background, k = the k-th pedestrian

The split: image names sorted, every 5th one (positions 0, 5, 10, ...) is
validation — 30 val, 119 train. Boxes are derived from the masks (the tight
box around each instance's pixels, ``x2``/``y2`` exclusive, i.e. pixel edges).

Terms: the Penn-Fudan Database (Wang, Shi, Song, Shen, 2007) is for research use;
copyright stays with the authors and it may not be reposted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.data.datasets import dataset_dir

PENNFUDAN_LICENSE = ("Penn-Fudan Database for Pedestrian Detection and Segmentation (Wang, Shi, Song, Shen, 2007): "
                     "research use only; copyright stays with the authors, the data may not be reposted")
VAL_EVERY = 5  # every 5th image in name order is validation
SPLIT_DESCRIPTION = "image names sorted; positions 0, 5, 10, ... (every 5th) are val (30), the rest train (119)"


@dataclass(frozen=True)
class PennFudanSample:
    """One photo: RGB pixels, one boolean mask per pedestrian and its box."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    masks: np.ndarray  # (N, H, W) bool, instance k-1 is id k of the PNG
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 (x2, y2 exclusive)


def pennfudan_dir(root: Path | None = None) -> Path:
    """The Penn-Fudan folder; :class:`~segdemo.data.datasets.DatasetMissingError` when it is not there."""
    return dataset_dir(
        "pennfudan", ("PNGImages", "PedMasks"),
        "Penn-Fudan not found at {path} (expected PNGImages/ and PedMasks/). Set SEGDEMO_DATA_DIR to the "
        "folder that holds pennfudan/, or get PennFudanPed from https://www.cis.upenn.edu/~jshi/ped_html/ "
        "(research use only) and put its PNGImages/ and PedMasks/ under <data dir>/pennfudan/.", root)


def pennfudan_names(root: Path | None = None) -> list[str]:
    """All image stems, sorted."""
    return sorted(p.stem for p in (pennfudan_dir(root) / "PNGImages").glob("*.png"))


def pennfudan_split(split: str, root: Path | None = None) -> list[str]:
    """The image stems of ``split`` ("train", "val" or "all"); see :data:`SPLIT_DESCRIPTION`."""
    names = pennfudan_names(root)
    if split == "all":
        return names
    if split == "val":
        return names[::VAL_EVERY]
    if split == "train":
        return [n for i, n in enumerate(names) if i % VAL_EVERY]
    raise ValueError(f"unknown split {split!r}: train, val or all")


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> (N, 4) float32 tight boxes x1, y1, x2, y2 with exclusive x2, y2."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def instance_masks(id_map: np.ndarray) -> np.ndarray:
    """An instance-id map (0 = background, 1..N) -> (N, H, W) bool masks in id order (empty ids kept)."""
    n = int(id_map.max())
    return id_map[None] == np.arange(1, n + 1, dtype=id_map.dtype)[:, None, None]


def load_pennfudan(name: str, root: Path | None = None) -> PennFudanSample:
    """Read one image, its instance masks and their boxes."""
    folder = pennfudan_dir(root)
    image = np.asarray(Image.open(folder / "PNGImages" / f"{name}.png").convert("RGB"))
    id_map = np.asarray(Image.open(folder / "PedMasks" / f"{name}_mask.png"))
    if id_map.ndim != 2 or id_map.shape != image.shape[:2]:
        raise ValueError(f"{name}: mask shape {id_map.shape} does not match image {image.shape[:2]}")
    masks = instance_masks(id_map)
    return PennFudanSample(name, image, masks, masks_to_boxes(masks))


def load_pennfudan_semantic(split: str, short_side: int | None,
                            root: Path | None = None) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Person vs background for ``split``: images (H, W, 3) uint8 and labels (H, W) uint8
    (0 = background, 1 = person: the union of the instance masks), names.

    ``short_side`` resizes each photo, keeping its aspect ratio, so its shorter side has
    that length (bilinear for the image, nearest for the labels); ``None`` keeps it.
    """
    images, labels, names = [], [], pennfudan_split(split, root)
    for name in names:
        sample = load_pennfudan(name, root)
        label = sample.masks.any(axis=0).astype(np.uint8)
        image = sample.image
        if short_side is not None:
            h, w = label.shape
            size = (max(1, round(w * short_side / min(h, w))), max(1, round(h * short_side / min(h, w))))
            image = np.array(Image.fromarray(image).resize(size, Image.BILINEAR))
            label = np.array(Image.fromarray(label).resize(size, Image.NEAREST))
        images.append(image)
        labels.append(label)
    return images, labels, names
