"""Label sets: class names, the fixed colour palette and the ignore label of each.

The palettes are the datasets' own (the PASCAL VOC colormap, the SegNet CamVid
colours), so the label-map PNGs segdemo writes open with the usual colours in
other tools and colour-coded ground truth decodes through the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSet:
    """Classes of one dataset, in index order, with a fixed RGB colour each."""

    key: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int | None
    background_index: int | None = None
    ignore_color: tuple[int, int, int] = (224, 224, 192)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def palette_array(self) -> np.ndarray:
        """A 256x3 uint8 lookup table: class colours, the ignore colour, black elsewhere."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        if self.ignore_index is not None and self.ignore_index >= self.num_classes:
            lut[self.ignore_index] = self.ignore_color
        return lut

    def flat_palette(self) -> list[int]:
        """The palette as Pillow's flat list of 768 ints for "P" mode PNGs."""
        return self.palette_array().reshape(-1).tolist()


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaving of the class index)."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
    "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

VOC = LabelSet(
    key="voc",
    classes=VOC_CLASSES,
    colors=tuple(tuple(int(v) for v in c) for c in voc_colormap(21)),
    ignore_index=255,
    background_index=0,
)

CAMVID = LabelSet(
    key="camvid",
    classes=(
        "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
        "Fence", "Car", "Pedestrian", "Bicyclist",
    ),
    colors=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
        (0, 128, 192),
    ),
    ignore_index=11,
    ignore_color=(0, 0, 0),
)

ISBI = LabelSet(
    key="isbi",
    classes=("membrane", "cell"),
    colors=((255, 64, 64), (64, 160, 255)),
    ignore_index=None,
    background_index=None,
)

# Person vs background (Penn-Fudan's pedestrians as one semantic class); 255 = void
# (pixels a rotation brings in from outside the image while training).
PERSON = LabelSet(
    key="person",
    classes=("background", "person"),
    colors=((0, 0, 0), (220, 20, 60)),  # Cityscapes' person red
    ignore_index=255,
    background_index=0,
)

LABEL_SETS: dict[str, LabelSet] = {ls.key: ls for ls in (VOC, CAMVID, ISBI, PERSON)}


def get_label_set(key: str) -> LabelSet:
    """Look a label set up by key ("voc", "camvid", "isbi", "person")."""
    try:
        return LABEL_SETS[key]
    except KeyError:
        raise KeyError(f"unknown label set {key!r}; known: {sorted(LABEL_SETS)}") from None
