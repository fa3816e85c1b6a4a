"""Evaluating a model against truth drawn in another label set.

A :class:`LabelMapping` sends every class the model can predict to a class of
the ground truth's label set, or to "other" (a prediction that matches no
truth class: always wrong). Truth classes no model class maps to cannot be
predicted; they stay in the confusion matrix (their pixels are misses) but are
left out of the class averages, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segdemo.data.labels import LabelSet

OTHER = -1  # "no truth class": the extra last column of the confusion matrix


@dataclass(frozen=True)
class LabelMapping:
    """Model class id -> truth class id (or :data:`OTHER`), with the preset it came from."""

    gt_set: LabelSet
    pred_set: LabelSet
    pred_to_gt: tuple[int, ...]
    preset: str = "custom"

    def __post_init__(self) -> None:
        if len(self.pred_to_gt) != self.pred_set.num_classes:
            raise ValueError("the mapping needs one entry per model class")
        if any(not (g == OTHER or 0 <= g < self.gt_set.num_classes) for g in self.pred_to_gt):
            raise ValueError("a mapping target is not a class of the truth's label set")

    @property
    def is_identity(self) -> bool:
        return self.gt_set.key == self.pred_set.key and self.pred_to_gt == tuple(
            range(self.pred_set.num_classes))

    @property
    def has_other(self) -> bool:
        """Whether some model class maps to no truth class (an extra "other" column)."""
        return OTHER in self.pred_to_gt

    @property
    def num_eval_classes(self) -> int:
        """Columns of the confusion matrix: the truth classes, plus "other" if used."""
        return self.gt_set.num_classes + (1 if self.has_other else 0)

    def reachable(self) -> np.ndarray:
        """Boolean per truth class: can the model predict it at all?"""
        hit = np.zeros(self.gt_set.num_classes, dtype=bool)
        for g in self.pred_to_gt:
            if g != OTHER:
                hit[g] = True
        return hit

    def apply(self, pred: np.ndarray) -> np.ndarray:
        """Model class ids -> truth class ids; "other" becomes ``gt_set.num_classes``."""
        lut = np.array([self.gt_set.num_classes if g == OTHER else g for g in self.pred_to_gt],
                       dtype=np.int32)
        pred = np.asarray(pred)
        if pred.size and (pred.min() < 0 or pred.max() >= len(lut)):
            raise ValueError("prediction has ids outside the model's label set")
        return lut[pred]

    def pairs(self) -> list[tuple[str, str]]:
        """(model class, truth class or "") for display."""
        return [(self.pred_set.classes[i], "" if g == OTHER else self.gt_set.classes[g])
                for i, g in enumerate(self.pred_to_gt)]


def identity(label_set: LabelSet) -> LabelMapping:
    """Truth and model share the label set: every class maps to itself."""
    return LabelMapping(label_set, label_set, tuple(range(label_set.num_classes)), "identity")


def _by_names(gt: LabelSet, pred: LabelSet, table: dict[str, str], default: str | None,
              preset: str) -> LabelMapping:
    gt_index = {c: i for i, c in enumerate(gt.classes)}
    fallback = OTHER if default is None else gt_index[default]
    return LabelMapping(gt, pred, tuple(gt_index[table[c]] if c in table else fallback
                                        for c in pred.classes), preset)


# CamVid's 11 classes merge the original 32 (Car includes vans, trucks and buses;
# Bicyclist is rider and bicycle together), so VOC's vehicles map onto Car and
# its two-wheelers onto Bicyclist. Everything else a VOC model knows
# (animals, furniture, background) matches no CamVid class.
_VOC_TO_CAMVID = {"car": "Car", "bus": "Car", "person": "Pedestrian",
                  "bicycle": "Bicyclist", "motorbike": "Bicyclist"}
# The other direction: CamVid's scene classes (sky, road, building...) are
# VOC background; its Car, Pedestrian, Bicyclist are VOC car, person, bicycle.
_CAMVID_TO_VOC = {"Car": "car", "Pedestrian": "person", "Bicyclist": "bicycle"}

PRESETS: dict[tuple[str, str], str] = {
    ("camvid", "voc"): "voc_to_camvid",
    ("voc", "camvid"): "camvid_to_voc",
}


def preset_mapping(gt_set: LabelSet, pred_set: LabelSet) -> LabelMapping | None:
    """The sensible default mapping for (truth, model) label sets, or None if none exists."""
    if gt_set.key == pred_set.key:
        return identity(gt_set)
    preset = PRESETS.get((gt_set.key, pred_set.key))
    if preset == "voc_to_camvid":
        return _by_names(gt_set, pred_set, _VOC_TO_CAMVID, None, preset)
    if preset == "camvid_to_voc":
        return _by_names(gt_set, pred_set, _CAMVID_TO_VOC, "background", preset)
    return None


def mapping_by_name(gt_set: LabelSet, pred_set: LabelSet) -> LabelMapping:
    """A starting point for a custom mapping: same name (ignoring case) or "other"."""
    lower = {c.lower(): i for i, c in enumerate(gt_set.classes)}
    return LabelMapping(gt_set, pred_set,
                        tuple(lower.get(c.lower(), OTHER) for c in pred_set.classes), "custom")


def mapping_from_names(gt_set: LabelSet, pred_set: LabelSet, targets: list[str]) -> LabelMapping:
    """A custom mapping from one truth class name (or "" for other) per model class."""
    gt_index = {c: i for i, c in enumerate(gt_set.classes)}
    return LabelMapping(gt_set, pred_set,
                        tuple(gt_index[t] if t in gt_index else OTHER for t in targets), "custom")

