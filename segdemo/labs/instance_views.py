"""Pictures and PQ of the semantic vs instance lab: instances, boxes and semantic masks drawn
(OpenCV), and panoptic quality of one image with the formula's numbers and a drawing of the matches
(through :mod:`segdemo.evaluate.panoptic`).
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from segdemo.evaluate.panoptic import (Category, ClassQuality, ImageMatches, PanopticFormatError, PanopticImage,
                                       PQResult, evaluate_pairs)
from segdemo.evaluate.panoptic_io import (instance_categories, instance_ids_to_panoptic, load_panoptic_json,
                                          read_instance_mask, rgb_to_ids,
                                          segments_from_annotation)
from segdemo.render.text import label_boxes
from segdemo.labs.instances import (FN_RGB, FP_RGB, INSTANCE_COLORS, MAX_UPLOAD_PIXELS, PERSON_RGB, TP_GT_RGB, TP_PRED_RGB,
                                     InstanceLabError, Instances)


# ---------------------------------------------------------------- drawing instances


def instance_color(k: int) -> tuple[int, int, int]:
    """The colour of object k (1-based)."""
    return INSTANCE_COLORS[(k - 1) % len(INSTANCE_COLORS)]


def blend(rgb: np.ndarray, mask: np.ndarray, color: Sequence[int], alpha: float) -> np.ndarray:
    """``rgb`` with ``color`` blended in at ``alpha`` where ``mask``."""
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    return out.round().clip(0, 255).astype(np.uint8)


def draw_semantic(rgb: np.ndarray, person: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """One colour for the class: every person pixel red, whoever it belongs to."""
    return blend(rgb, person, PERSON_RGB, alpha)


def draw_regions(rgb: np.ndarray, regions: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Connected regions of a mask, one colour each, outlined."""
    out = rgb.copy()
    for k in range(1, int(regions.max()) + 1 if regions.size else 1):
        out = blend(out, regions == k, instance_color(k), alpha)
        _outline(out, regions == k, instance_color(k))
    return out


def _outline(img: np.ndarray, mask: np.ndarray, color: Sequence[int], thickness: int = 2) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(img, contours, -1, tuple(int(c) for c in color), thickness)


def draw_instances(rgb: np.ndarray, instances: Instances, class_names: Sequence[str], alpha: float = 0.5) -> np.ndarray:
    """One colour per object: its mask, its box and "class score" above the box
    (``class_names``: label id -> the name shown, in the UI's language)."""
    out = rgb.copy()
    for k in range(instances.count):
        out = blend(out, instances.masks[k], instance_color(k + 1), alpha)
    labels = []
    for k in range(instances.count):
        color = instance_color(k + 1)
        x1, y1, x2, y2 = (int(round(v)) for v in instances.boxes[k])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        name = class_names[int(instances.labels[k])] if int(instances.labels[k]) < len(class_names) else "?"
        labels.append((f"{k + 1} {name} {instances.scores[k]:.2f}", x1, y1, color))
    label_boxes(out, labels)  # after every box: a label is never drawn over by a later box
    return out


def draw_boxes(rgb: np.ndarray, boxes: np.ndarray, color: Sequence[int] = (255, 215, 0),
               thickness: int = 1) -> np.ndarray:
    """Boxes (x1, y1, x2, y2) on a copy of the image."""
    out = rgb.copy()
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(out, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))),
                      tuple(int(c) for c in color), thickness)
    return out


def upscale_nearest(values: np.ndarray, size: int = 168) -> np.ndarray:
    """A small (S, S) map as a (size, size) viridis-free grey-to-colour picture (nearest neighbour)."""
    v = np.asarray(values, dtype=np.float32)
    lo, hi = float(v.min()), float(v.max())
    norm = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    colored = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    return cv2.resize(colored, (size, size), interpolation=cv2.INTER_NEAREST)


def probability_picture(probabilities: np.ndarray, size: int = 168) -> np.ndarray:
    """Probabilities in [0, 1] as a fixed-scale colour picture (0 dark, 1 yellow)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float32), 0, 1)
    colored = cv2.applyColorMap((p * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    return cv2.resize(colored, (size, size), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------- PQ of one image


@dataclass
class PQView:
    """One image's PQ: the result, its matches, the two panoptic images and the categories."""

    result: PQResult
    matches: ImageMatches
    gt: PanopticImage
    pred: PanopticImage
    categories: dict[int, Category]


def pq_for_instance_maps(gt_ids: np.ndarray, pred_ids: np.ndarray, scores: Sequence[float] | None = None,
                         background: str = "stuff", image_id: int | str = 0) -> PQView:
    """PQ of an instance-id prediction against an instance-id ground truth (one thing class, person)."""
    gt_ids, pred_ids = np.asarray(gt_ids), np.asarray(pred_ids)
    if gt_ids.shape != pred_ids.shape:
        raise InstanceLabError("instances.pq.error.size", gt=f"{gt_ids.shape[1]}x{gt_ids.shape[0]}",
                               pred=f"{pred_ids.shape[1]}x{pred_ids.shape[0]}")
    categories = instance_categories(background)
    try:
        gt = instance_ids_to_panoptic(gt_ids, image_id, background=background)
        pred = instance_ids_to_panoptic(pred_ids, image_id, scores, background=background)
        result, images = evaluate_pairs([(gt, pred)], categories)
    except PanopticFormatError as exc:
        raise InstanceLabError("instances.pq.error.format", reason=str(exc)) from exc
    return PQView(result, images[0], gt, pred, categories)


def _open_png(data: bytes, what: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        if im.width * im.height > MAX_UPLOAD_PIXELS:
            raise InstanceLabError("instances.pq.error.too_big", what=what, w=im.width, h=im.height)
        im.load()
        return im
    except InstanceLabError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InstanceLabError("instances.pq.error.unreadable", what=what, reason=str(exc)[:200]) from exc


def read_instance_id_png(data: bytes, what: str) -> np.ndarray:
    """An uploaded instance-id PNG (single channel: 0 = background, k = k-th object) as an int map."""
    im = _open_png(data, what)
    if im.mode not in ("L", "P", "I", "I;16"):
        raise InstanceLabError("instances.pq.error.not_single_channel", what=what, mode=im.mode)
    try:
        return read_instance_mask(io.BytesIO(data))  # type: ignore[arg-type] - PIL opens file objects
    except PanopticFormatError as exc:
        raise InstanceLabError("instances.pq.error.format", reason=str(exc)) from exc


def read_panoptic_upload(png: bytes, json_bytes: bytes, png_name: str, what: str,
                         need_categories: bool) -> tuple[PanopticImage, dict[int, Category]]:
    """An uploaded COCO panoptic PNG + JSON as one panoptic image (the annotation of ``png_name``,
    or the only one); the JSON is read by :func:`segdemo.evaluate.panoptic_io.load_panoptic_json`."""
    im = _open_png(png, what)
    if im.mode not in ("RGB", "RGBA"):
        raise InstanceLabError("instances.pq.error.not_rgb_panoptic", what=what, mode=im.mode)
    ids = rgb_to_ids(np.asarray(im.convert("RGB")))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{what}.json"
        path.write_bytes(json_bytes)
        try:
            parsed = load_panoptic_json(path, need_categories=need_categories)
        except PanopticFormatError as exc:
            raise InstanceLabError("instances.pq.error.json", what=what,
                                   reason=str(exc).replace(str(path), f"{what}.json")) from exc
    annotations = list(parsed.annotations.values())
    chosen = [a for a in annotations if Path(str(a["file_name"])).name == Path(png_name).name]
    if not chosen and len(annotations) == 1:
        chosen = annotations
    if not chosen:
        raise InstanceLabError("instances.pq.error.no_annotation", what=what, name=png_name, n=len(annotations))
    ann = chosen[0]
    try:
        segments = segments_from_annotation(ann, Path(f"{what}.json"), use_area=(what == "gt"))
    except PanopticFormatError as exc:
        raise InstanceLabError("instances.pq.error.json", what=what, reason=str(exc)) from exc
    return PanopticImage(ann["image_id"], ids, segments, str(ann["file_name"])), parsed.categories


def pq_for_panoptic_files(gt_png: bytes, gt_json: bytes, gt_name: str, pred_png: bytes, pred_json: bytes,
                          pred_name: str) -> PQView:
    """PQ of an uploaded COCO panoptic prediction (PNG + JSON) against an uploaded ground truth;
    categories come from the ground truth's JSON, as in panopticapi."""
    gt, categories = read_panoptic_upload(gt_png, gt_json, gt_name, "gt", need_categories=True)
    pred, _ = read_panoptic_upload(pred_png, pred_json, pred_name, "pred", need_categories=False)
    pred.image_id = gt.image_id
    try:
        result, images = evaluate_pairs([(gt, pred)], categories)
    except PanopticFormatError as exc:
        raise InstanceLabError("instances.pq.error.format", reason=str(exc)) from exc
    return PQView(result, images[0], gt, pred, categories)


def read_json_upload(data: bytes) -> Any:
    """JSON bytes -> object (for the page's quick checks); InstanceLabError when unreadable."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InstanceLabError("instances.pq.error.json", what="json", reason=str(exc)[:200]) from exc


@dataclass(frozen=True)
class PQFormula:
    """The numbers of PQ = SQ x RQ for one class."""

    name: str
    tp: int
    fp: int
    fn: int
    iou_sum: float
    pq: float
    sq: float
    rq: float

    @property
    def denominator(self) -> float:
        """TP + FP/2 + FN/2."""
        return self.tp + 0.5 * self.fp + 0.5 * self.fn


def pq_formula(quality: ClassQuality) -> PQFormula:
    """The formula's numbers for one class of a :class:`PQResult`."""
    return PQFormula(quality.name, quality.tp, quality.fp, quality.fn, quality.iou_sum, quality.pq, quality.sq,
                     quality.rq)


def counted_classes(view: PQView) -> list[ClassQuality]:
    """The classes with TP + FP + FN > 0 (those in the averages), things first."""
    rows = [c for c in view.result.per_class.values() if c.counted]
    return sorted(rows, key=lambda c: (not c.isthing, c.category_id))


def draw_pq_matches(view: PQView, rgb: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """The matches on the photo (or on grey): TP pairs outlined (GT green, prediction blue) with
    their IoU, false positives filled red, false negatives filled orange. Stuff segments
    matched as TP are outlined only lightly (they cover most of the image)."""
    h, w = view.gt.ids.shape
    base = rgb.copy() if rgb is not None and rgb.shape[:2] == (h, w) else np.full((h, w, 3), 128, np.uint8)
    out = (base.astype(np.float32) * 0.8 + 0.2 * 128).astype(np.uint8)
    for seg in view.matches.fp:
        out = blend(out, view.pred.ids == seg.segment_id, FP_RGB, alpha)
    for seg in view.matches.fn:
        out = blend(out, view.gt.ids == seg.segment_id, FN_RGB, alpha)
    for m in view.matches.tp:
        _outline(out, view.gt.ids == m.gt_id, TP_GT_RGB, 3)
        _outline(out, view.pred.ids == m.pred_id, TP_PRED_RGB, 2)
    labels = []
    for m in view.matches.tp:
        cat = view.categories.get(m.category_id)
        if cat is not None and not cat.isthing:
            continue
        ys, xs = np.nonzero(view.gt.ids == m.gt_id)
        if len(ys):
            labels.append((f"IoU {m.iou:.2f}", xs.min(), ys.min(), (0, 120, 0)))
    for seg, color, text in ([(s, FP_RGB, "FP") for s in view.matches.fp]
                             + [(s, FN_RGB, "FN") for s in view.matches.fn]):
        ids = view.pred.ids if text == "FP" else view.gt.ids
        ys, xs = np.nonzero(ids == seg.segment_id)
        if len(ys):
            labels.append((text, xs.min(), ys.min(), color))
    label_boxes(out, labels)
    return out


def instance_ids_picture(ids: np.ndarray) -> np.ndarray:
    """An instance-id map in colours (background black), for showing an uploaded mask."""
    out = np.zeros((*ids.shape, 3), dtype=np.uint8)
    for k in np.unique(ids):
        if k:
            out[ids == k] = instance_color(int(k))
    return out


def example_instance_pair(gt_ids: np.ndarray, shift: int = 6) -> np.ndarray:
    """A made-up prediction for the PQ view's example: the ground truth shifted right by ``shift`` px,
    with the last object dropped (so there is a false negative)."""
    pred = np.zeros_like(gt_ids)
    pred[:, shift:] = gt_ids[:, :-shift] if shift else gt_ids
    present = [k for k in np.unique(gt_ids) if k]
    if len(present) > 1:
        pred[pred == present[-1]] = 0
    return pred
