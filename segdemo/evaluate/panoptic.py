"""Panoptic quality (PQ = SQ x RQ), computed exactly as panopticapi's ``pq_compute``.

Reference: cocodataset/panopticapi, ``panopticapi/evaluation.py`` (commit
1ad5afa; the rules are unchanged since 2018). Line numbers below are that file's.

The rules, per image (``pq_compute_single_core``, L77-165):

* A segment id of 0 is void (``VOID = 0``, L20). Predicted areas are pixel
  counts of the prediction PNG (L96-102); ground-truth areas are the JSON
  ``area`` of each segment (L132 reads ``gt_segms[...]['area']``).
* Intersections of every (gt id, pred id) pair come from one ``np.unique`` over
  ``gt * OFFSET + pred`` (L110-116, ``OFFSET = 256**3``).
* A pair is a true positive when the GT segment is not crowd (L127), both share
  a category (L129) and IoU > 0.5, strictly (L134), with
  ``union = pred_area + gt_area - intersection - |pred ∩ GT void|`` (L132):
  the prediction's pixels on unlabelled ground truth do not count against it.
  IoU > 0.5 makes the matching unique, so no assignment problem is solved.
* Unmatched, non-crowd GT segments are false negatives (L142-149). Crowd GT
  segments are never matched and never false negatives; the *last* crowd
  segment listed for a category is remembered for the next rule (L147).
* An unmatched prediction is a false positive unless more than half of its area
  lies on GT void plus that category's crowd segment (L152-163).

Over the data set (``PQStat.pq_average``, L49-73): per class
``PQ = sum IoU / (TP + FP/2 + FN/2)``, ``SQ = sum IoU / TP`` (0 without TP),
``RQ = TP / (TP + FP/2 + FN/2)``, so PQ = SQ x RQ. Classes with TP + FP + FN = 0
are left out of the averages (and reported with 0.0, L61-63); All, Things
(``isthing == 1``) and Stuff are plain means over the classes left in. Where no
class is left (n = 0) panopticapi divides by zero; this module returns ``None``.

How torchmetrics' ``PanopticQuality`` (1.9.0,
``functional/detection/_panoptic_quality_common.py``) differs:

1. It drops false negatives covered by predicted void: an unmatched GT segment
   more than half of which the prediction left void is not counted
   (``_filter_false_negatives``, its L275-280). panopticapi counts it.
2. Its union also subtracts the GT segment's overlap with predicted void
   (``_calculate_iou``, its L248-250), so a prediction that leaves part of an
   object void loses nothing for it. panopticapi counts those pixels.
3. No crowd: its inputs are (category, instance) pairs with no ``iscrowd``;
   a crowd region must be fed either as void or as an ordinary segment.
4. All stuff segments of one category in an image are merged into one (instance
   ids of stuff are reset to 0, ``_prepocess_inputs``). COCO has one per image anyway.

``tests/test_panoptic.py`` builds a case where 1 and 2 give different numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

OFFSET = 256 * 256 * 256  # panopticapi's OFFSET: segment ids are < 256**3 (three 8-bit channels)
VOID = 0
MATCH_IOU = 0.5  # a match needs IoU strictly above this
IGNORE_FRACTION = 0.5  # an unmatched prediction with more than this on void + crowd is not a false positive


class PanopticFormatError(ValueError):
    """The panoptic input breaks the format (ids, categories, sizes); the message says where."""


@dataclass(frozen=True)
class Category:
    """One COCO panoptic category: ``isthing`` is True for countable objects."""

    id: int
    name: str
    isthing: bool


@dataclass(frozen=True)
class Segment:
    """One segment of ``segments_info``; ``area`` is the JSON area (None: count the pixels)."""

    id: int
    category_id: int
    iscrowd: bool = False
    area: int | None = None
    score: float | None = None  # instance models' confidence; PQ itself does not use it


@dataclass
class PanopticImage:
    """One image in memory: the segment-id map (0 = void) and its segments by id."""

    image_id: int | str
    ids: np.ndarray
    segments: dict[int, Segment]
    file_name: str = ""


@dataclass(frozen=True)
class SegmentMatch:
    """A true positive: a GT segment and a prediction of its category with IoU > 0.5."""

    gt_id: int
    pred_id: int
    category_id: int
    iou: float
    intersection: int
    union: int


@dataclass(frozen=True)
class UnmatchedSegment:
    """A segment left without a match; ``ignored_fraction`` is a prediction's share on void + crowd."""

    segment_id: int
    category_id: int
    area: int
    ignored_fraction: float = 0.0


@dataclass
class ImageMatches:
    """The per-image outcome: TP pairs, FP and FN segments, and what the rules set aside."""

    image_id: int | str
    tp: list[SegmentMatch] = field(default_factory=list)
    fp: list[UnmatchedSegment] = field(default_factory=list)
    fn: list[UnmatchedSegment] = field(default_factory=list)
    ignored_predictions: list[UnmatchedSegment] = field(default_factory=list)  # mostly on void / crowd
    crowd_gt: list[int] = field(default_factory=list)  # unmatched crowd GT segment ids (never FN)


@dataclass(frozen=True)
class ClassQuality:
    """PQ, SQ, RQ of one category with the counts behind them; ``counted``: in the averages."""

    category_id: int
    name: str
    isthing: bool
    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int
    iou_sum: float

    @property
    def counted(self) -> bool:
        """Whether the class enters the averages (panopticapi: TP + FP + FN > 0)."""
        return self.tp + self.fp + self.fn > 0


@dataclass(frozen=True)
class GroupQuality:
    """The mean PQ, SQ, RQ over the ``n`` counted classes of a group (None when n = 0)."""

    pq: float | None
    sq: float | None
    rq: float | None
    n: int


@dataclass
class PQResult:
    """All / Things / Stuff averages and the per-class table, as ``pq_compute`` returns them."""

    all: GroupQuality
    things: GroupQuality
    stuff: GroupQuality
    per_class: dict[int, ClassQuality]

    def to_dict(self) -> dict:
        """JSON-ready: ``all``, ``things``, ``stuff`` (pq, sq, rq, n) and ``per_class`` keyed by category id."""
        groups = {name: {"pq": g.pq, "sq": g.sq, "rq": g.rq, "n": g.n}
                  for name, g in (("all", self.all), ("things", self.things), ("stuff", self.stuff))}
        groups["per_class"] = {
            str(c.category_id): {"name": c.name, "isthing": c.isthing, "pq": c.pq, "sq": c.sq, "rq": c.rq,
                                 "tp": c.tp, "fp": c.fp, "fn": c.fn, "counted": c.counted}
            for c in self.per_class.values()}
        return groups


def segment_areas(ids: np.ndarray) -> dict[int, int]:
    """Pixel count of every id in a segment-id map (void included)."""
    labels, counts = np.unique(ids, return_counts=True)
    return {int(k): int(v) for k, v in zip(labels, counts)}


def _check_prediction(gt: PanopticImage, pred: PanopticImage, categories: Mapping[int, Category]) -> dict[int, int]:
    """panopticapi's sanity checks (L95-107); returns the predicted areas."""
    if gt.ids.shape != pred.ids.shape:
        raise PanopticFormatError(f"image {gt.image_id}: prediction is {pred.ids.shape[1]}x{pred.ids.shape[0]} "
                                  f"pixels, ground truth {gt.ids.shape[1]}x{gt.ids.shape[0]}")
    areas = segment_areas(pred.ids)
    in_png = set(areas) - {VOID}
    missing = sorted(in_png - set(pred.segments))
    if missing:
        raise PanopticFormatError(f"image {gt.image_id}: segment ids {missing} are in the prediction PNG "
                                  f"but not in its segments_info")
    absent = sorted(set(pred.segments) - in_png)
    if absent:
        raise PanopticFormatError(f"image {gt.image_id}: segment ids {absent} are in the prediction's "
                                  f"segments_info but not in its PNG")
    for seg in pred.segments.values():
        if seg.category_id not in categories:
            raise PanopticFormatError(f"image {gt.image_id}: predicted segment {seg.id} has unknown "
                                      f"category_id {seg.category_id}")
    return {k: v for k, v in areas.items() if k != VOID}


def match_image(gt: PanopticImage, pred: PanopticImage, categories: Mapping[int, Category]) -> ImageMatches:
    """Match one image's prediction to its ground truth by panopticapi's rules (module docstring)."""
    pred_area = _check_prediction(gt, pred, categories)
    gt_pixel_area = segment_areas(gt.ids)
    joint = gt.ids.astype(np.uint64) * np.uint64(OFFSET) + pred.ids.astype(np.uint64)
    labels, counts = np.unique(joint, return_counts=True)
    overlap = {(int(k) // OFFSET, int(k) % OFFSET): int(c) for k, c in zip(labels, counts)}

    out = ImageMatches(gt.image_id)
    gt_matched: set[int] = set()
    pred_matched: set[int] = set()
    for (gt_id, pred_id), inter in overlap.items():
        g, p = gt.segments.get(gt_id), pred.segments.get(pred_id)
        if g is None or p is None or g.iscrowd or g.category_id != p.category_id:
            continue
        g_area = g.area if g.area is not None else gt_pixel_area.get(gt_id, 0)
        # The prediction's pixels on GT void are left out of the union (panopticapi L132).
        union = pred_area[pred_id] + g_area - inter - overlap.get((VOID, pred_id), 0)
        if union <= 0:  # only when a JSON area is smaller than the segment's pixels
            raise PanopticFormatError(f"image {gt.image_id}: ground-truth segment {gt_id} has JSON area "
                                      f"{g_area}, fewer than the {inter} pixels it shares with prediction {pred_id}")
        iou = inter / union
        if iou > MATCH_IOU:
            out.tp.append(SegmentMatch(gt_id, pred_id, g.category_id, float(iou), inter, int(union)))
            gt_matched.add(gt_id)
            pred_matched.add(pred_id)

    crowd_by_category: dict[int, int] = {}
    for gt_id, g in gt.segments.items():
        if gt_id in gt_matched:
            continue
        if g.iscrowd:
            crowd_by_category[g.category_id] = gt_id  # last one wins, as in panopticapi L147
            out.crowd_gt.append(gt_id)
            continue
        area = g.area if g.area is not None else gt_pixel_area.get(gt_id, 0)
        out.fn.append(UnmatchedSegment(gt_id, g.category_id, int(area)))

    for pred_id, p in pred.segments.items():
        if pred_id in pred_matched:
            continue
        ignored = overlap.get((VOID, pred_id), 0)
        if p.category_id in crowd_by_category:
            ignored += overlap.get((crowd_by_category[p.category_id], pred_id), 0)
        fraction = ignored / pred_area[pred_id]
        seg = UnmatchedSegment(pred_id, p.category_id, pred_area[pred_id], float(fraction))
        (out.ignored_predictions if fraction > IGNORE_FRACTION else out.fp).append(seg)
    return out


class PQAccumulator:
    """Sums TP, FP, FN and IoU per category over images (panopticapi's ``PQStat``)."""

    def __init__(self, categories: Mapping[int, Category]) -> None:
        self.categories = dict(categories)
        self.iou_sum: dict[int, float] = {c: 0.0 for c in self.categories}
        self.tp: dict[int, int] = {c: 0 for c in self.categories}
        self.fp: dict[int, int] = {c: 0 for c in self.categories}
        self.fn: dict[int, int] = {c: 0 for c in self.categories}
        self.images: list[ImageMatches] = []

    def add(self, matches: ImageMatches) -> None:
        """Count one image's outcome."""
        for m in matches.tp:
            self.tp[m.category_id] += 1
            self.iou_sum[m.category_id] += m.iou
        for s in matches.fp:
            self.fp[s.category_id] += 1
        for s in matches.fn:
            # A GT category missing from the category list still counts (panopticapi's defaultdict) but,
            # as there, enters no average.
            self.fn[s.category_id] = self.fn.get(s.category_id, 0) + 1
        self.images.append(matches)

    def update(self, gt: PanopticImage, pred: PanopticImage) -> ImageMatches:
        """Match one image pair and count it; returns its matches."""
        matches = match_image(gt, pred, self.categories)
        self.add(matches)
        return matches

    def result(self) -> PQResult:
        """Per-class PQ/SQ/RQ and the All / Things / Stuff means (panopticapi ``pq_average``)."""
        per_class: dict[int, ClassQuality] = {}
        for cid, cat in self.categories.items():
            tp, fp, fn, iou = self.tp[cid], self.fp[cid], self.fn[cid], self.iou_sum[cid]
            if tp + fp + fn == 0:
                pq = sq = rq = 0.0
            else:
                denominator = tp + 0.5 * fp + 0.5 * fn
                pq, sq, rq = iou / denominator, (iou / tp if tp else 0.0), tp / denominator
            per_class[cid] = ClassQuality(cid, cat.name, cat.isthing, pq, sq, rq, tp, fp, fn, iou)

        def group(isthing: bool | None) -> GroupQuality:
            rows = [c for c in per_class.values() if c.counted and (isthing is None or c.isthing == isthing)]
            if not rows:
                return GroupQuality(None, None, None, 0)
            n = len(rows)
            return GroupQuality(sum(c.pq for c in rows) / n, sum(c.sq for c in rows) / n,
                                sum(c.rq for c in rows) / n, n)

        return PQResult(group(None), group(True), group(False), per_class)


def evaluate_pairs(pairs: Iterable[tuple[PanopticImage, PanopticImage]],
                   categories: Mapping[int, Category]) -> tuple[PQResult, list[ImageMatches]]:
    """PQ over (ground truth, prediction) pairs in memory; returns the result and the per-image matches."""
    acc = PQAccumulator(categories)
    for gt, pred in pairs:
        acc.update(gt, pred)
    return acc.result(), acc.images
