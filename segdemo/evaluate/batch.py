"""Many image/mask pairs: pairing files, accumulating one confusion matrix, export.

Two dataset-level numbers are reported side by side because they answer
different questions: the IoU of the *accumulated* confusion matrix (every pixel
of the data set weighs the same: the number papers and torchvision's reference
scripts report) and the *mean of per-image* IoUs (every image weighs the same).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np

from segdemo.evaluate.mapping import LabelMapping
from segdemo.data.images import UPLOAD_TYPES
from segdemo.evaluate.masks import Notice
from segdemo.evaluate.scoring import (EvaluationError, PairResult, Policy, Scores, evaluate_annotators, evaluate_pair,
                                      score_confusion)
from segdemo.data.labels import LabelSet

IMAGE_EXTS = {"." + e for e in UPLOAD_TYPES}  # photos and masks alike
# Folder names that hold masks in the common layouts (VOC SegmentationClass,
# CamVid trainannot, ISBI train/label, "masks", "gt", "groundtruth").
_MASK_DIR_WORDS = ("annot", "mask", "label", "segmentationclass", "groundtruth", "ground_truth")
_MASK_STEM = re.compile(r"(?i)[_\-.](mask|gt|label|labels|annot|seg|segmentation)$")
MAX_ZIP_BYTES = 1 << 30
MAX_ZIP_FILES = 10_000


@dataclass
class PairPlan:
    """Which image goes with which mask, and what was left without a partner."""

    pairs: list[tuple[str, str, str]]           # (key, image name, mask name)
    images_without_mask: list[str] = field(default_factory=list)
    masks_without_image: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _is_mask_path(path: PurePosixPath) -> bool:
    for part in path.parts[:-1]:
        low = part.lower()
        if any(w in low for w in _MASK_DIR_WORDS) or low == "gt":
            return True
    return bool(_MASK_STEM.search(path.stem))


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(PurePosixPath(a).parts[:-1], PurePosixPath(b).parts[:-1]):
        if x != y:
            break
        n += 1
    return n


def pair_key(name: str) -> str:
    """The key that pairs an image with its mask: the file stem without mask suffixes."""
    return _MASK_STEM.sub("", PurePosixPath(name).stem).lower()


def _usable(name: str) -> bool:
    p = PurePosixPath(name)
    return (p.suffix.lower() in IMAGE_EXTS and not any(s.startswith(".") or s == "__MACOSX" for s in p.parts))


def pair_files(names: Iterable[str]) -> PairPlan:
    """Pair image files with mask files by name.

    A file is a mask when a folder on its path says so (``masks/``,
    ``SegmentationClass/``, ``trainannot/``, ``label/``) or its stem ends in
    ``_mask``/``_gt``/``_label``; when one folder holds ``x.jpg`` and ``x.png``,
    the PNG is the mask. Images and masks pair on the stem.
    """
    names = sorted(n for n in names if _usable(n))
    images: dict[str, list[str]] = {}
    masks: dict[str, list[str]] = {}
    by_folder_stem: dict[tuple[str, str], list[str]] = {}
    for n in names:
        p = PurePosixPath(n)
        by_folder_stem.setdefault((str(p.parent), p.stem.lower()), []).append(n)
    for n in names:
        p = PurePosixPath(n)
        siblings = by_folder_stem[(str(p.parent), p.stem.lower())]
        is_mask = _is_mask_path(p) or (len(siblings) > 1 and p.suffix.lower() == ".png"
                                       and any(PurePosixPath(s).suffix.lower() != ".png" for s in siblings))
        (masks if is_mask else images).setdefault(pair_key(n), []).append(n)
    plan = PairPlan(pairs=[])
    for key in sorted(set(images) | set(masks)):
        imgs, msks = images.get(key, []), masks.get(key, [])
        if imgs and msks:
            # Several candidates (e.g. train/image/0.png and test/0.png): take the
            # image that shares the longest folder prefix with the mask.
            mask = msks[0]
            image = max(imgs, key=lambda i: (_shared_prefix(i, mask), -imgs.index(i)))
            plan.duplicates.extend([i for i in imgs if i != image] + msks[1:])
            plan.pairs.append((key, image, mask))
            continue
        if len(imgs) > 1 or len(msks) > 1:
            plan.duplicates.extend(imgs[1:] + msks[1:])
        if imgs:
            plan.images_without_mask.append(imgs[0])
        else:
            plan.masks_without_image.append(msks[0])
    return plan


def pair_by_name(image_names: Iterable[str], mask_names: Iterable[str]) -> PairPlan:
    """Pair two explicit lists (an images folder and a masks folder) on :func:`pair_key`."""
    images: dict[str, str] = {}
    masks: dict[str, str] = {}
    plan = PairPlan(pairs=[])
    for names, into in ((sorted(image_names), images), (sorted(mask_names), masks)):
        for n in names:
            key = pair_key(n)
            if key in into:
                plan.duplicates.append(n)
            else:
                into[key] = n
    for key in sorted(set(images) | set(masks)):
        if key in images and key in masks:
            plan.pairs.append((key, images[key], masks[key]))
        elif key in images:
            plan.images_without_mask.append(images[key])
        else:
            plan.masks_without_image.append(masks[key])
    return plan


def read_zip(data: bytes) -> dict[str, bytes]:
    """The image-like files of a zip archive, refusing archives that unpack too big."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise EvaluationError("eval.err.bad_zip") from None
    infos = [i for i in zf.infolist() if not i.is_dir() and _usable(i.filename)]
    if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise EvaluationError("eval.err.zip_too_large")
    return {i.filename: zf.read(i) for i in infos}


def read_folder(folder: Path) -> dict[str, Path]:
    """Image-like files under ``folder`` (recursively), by relative POSIX name."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and _usable(p.relative_to(folder).as_posix())}


# ---------------------------------------------------------------- accumulation


@dataclass
class ImageRecord:
    """Per-image outcome: scores, or the error that stopped it."""

    name: str
    miou: float = float("nan")
    pixel_accuracy: float = float("nan")
    valid_pixels: int = 0
    iou: np.ndarray | None = None       # per class, NaN where absent
    notices: list[Notice] = field(default_factory=list)
    error: Notice | None = None


@dataclass
class BatchResult:
    """A batch: the accumulated scores and the per-image ones side by side."""

    scores: Scores | None
    images: list[ImageRecord]
    mean_image_miou: float
    mean_image_iou_per_class: np.ndarray
    # Boundary F1 averaged image-wise (each image's class mean, then over images), beside
    # ``scores.summary["mean_boundary_F1"]``, the class-wise one (each class over images, then classes).
    mean_image_boundary_f1: float = float("nan")

    @classmethod
    def from_pair(cls, result: PairResult) -> "BatchResult":
        """A one-image "batch", so one pair exports like a batch (CSV, JSON)."""
        s = result.scores
        iou = np.where(s.absent, np.nan, s.iou)
        record = ImageRecord(name=result.name, miou=s.summary["mIoU"], pixel_accuracy=s.summary["pixel_accuracy"],
                             valid_pixels=int(s.summary["valid_pixels"]), iou=iou, notices=list(result.notices))
        return cls(scores=s, images=[record], mean_image_miou=s.summary["mIoU"], mean_image_iou_per_class=iou,
                   mean_image_boundary_f1=s.summary["mean_boundary_F1"])

    @property
    def errors(self) -> list[ImageRecord]:
        return [r for r in self.images if r.error is not None]

    @property
    def scored(self) -> list[ImageRecord]:
        return [r for r in self.images if r.error is None]

    def warnings(self) -> dict[str, list[Notice]]:
        """Image name -> its notices above "info" level (mask resized, unknown colours, ids outside the set)."""
        return {r.name: warned for r in self.images if (warned := [n for n in r.notices if n.level != "info"])}


class BatchAccumulator:
    """Adds pairs one at a time into one confusion matrix and per-image records."""

    def __init__(self, label_set: LabelSet, ignore_index: int | None, policy: Policy = Policy(),
                 mapping: LabelMapping | None = None, boundary: bool = True, annotators: bool = False) -> None:
        """``annotators``: the "predictions" are a second human annotation
        (scored with :func:`evaluate_annotators`: void in either is not compared)."""
        self.label_set = label_set
        self.ignore_index = ignore_index
        self.policy = policy
        self.mapping = mapping
        self.boundary = boundary
        self.annotators = annotators
        n_eval = mapping.num_eval_classes if mapping is not None else label_set.num_classes
        self.cm = np.zeros((n_eval, n_eval), dtype=np.int64)
        self.images: list[ImageRecord] = []
        self._bf: list[np.ndarray] = []
        self._bf_image: list[float] = []  # each image's own mean boundary F1 (for the image-wise average)

    def add(self, name: str, pred: np.ndarray, truth: np.ndarray,
            notices: list[Notice] | None = None) -> PairResult:
        """Score one pair and add its counts; raises :class:`EvaluationError` (recorded)."""
        try:
            if self.annotators:
                result = evaluate_annotators(truth, pred, self.label_set, self.ignore_index, self.policy,
                                             self.boundary, name)
            else:
                result = evaluate_pair(pred, truth, self.label_set, self.ignore_index, self.policy,
                                       self.mapping, self.boundary, name)
        except EvaluationError as exc:
            self.add_error(name, exc.key, exc.values, notices)
            raise
        s = result.scores
        self.cm += s.cm
        if self.boundary:
            self._bf.append(s.boundary_f1)
            self._bf_image.append(s.summary["mean_boundary_F1"])
        iou_nan = np.where(s.absent, np.nan, s.iou)
        self.images.append(ImageRecord(name=name, miou=s.summary["mIoU"],
                                       pixel_accuracy=s.summary["pixel_accuracy"],
                                       valid_pixels=int(s.summary["valid_pixels"]),
                                       iou=iou_nan, notices=list(notices or [])))
        return result

    def add_error(self, name: str, key: str, values: dict[str, object] | None = None,
                  notices: list[Notice] | None = None) -> None:
        """Record an image that could not be scored; the batch goes on."""
        self.images.append(ImageRecord(name=name, notices=list(notices or []),
                                       error=Notice(key, dict(values or {}), "error")))

    def result(self) -> BatchResult:
        """Scores of the accumulated matrix, and the means of the per-image ones."""
        n = self.label_set.num_classes
        scored = [r for r in self.images if r.error is None]
        scores = None
        if scored:
            bf = None
            if self._bf:
                with np.errstate(invalid="ignore"):
                    stack = np.vstack(self._bf)
                    bf = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in stack.T])
            evaluated = self.mapping.reachable() if self.mapping is not None else None
            scores = score_confusion(self.cm, self.label_set, self.policy, evaluated, bf, self.ignore_index)
        mious = np.array([r.miou for r in scored], dtype=float)
        mean_miou = float(np.nanmean(mious)) if np.isfinite(mious).any() else float("nan")
        per_class = np.full(n, np.nan)
        if scored:
            stack = np.vstack([r.iou for r in scored])
            for c in range(n):
                col = stack[:, c]
                if np.isfinite(col).any():
                    per_class[c] = float(np.nanmean(col))
        bf_images = np.array(self._bf_image, dtype=float)
        mean_bf = float(np.nanmean(bf_images)) if np.isfinite(bf_images).any() else float("nan")
        return BatchResult(scores=scores, images=list(self.images), mean_image_miou=mean_miou,
                           mean_image_iou_per_class=per_class, mean_image_boundary_f1=mean_bf)


def run_batch(
    pairs: list[tuple[str, str, str]],
    load_pair: Callable[[str, str, str], tuple[np.ndarray, np.ndarray, list[Notice]]],
    accumulator: BatchAccumulator,
    progress: Callable[[int, int, str], None] | None = None,
    unmatched_images: Iterable[str] = (),
) -> BatchResult:
    """Evaluate every pair; a pair that fails is recorded with its message and skipped.

    ``load_pair(key, image_name, mask_name)`` returns ``(prediction, truth,
    notices)`` or raises an error carrying a catalogue ``key`` (segdemo's
    ImageError, MaskError, EvaluationError, WeightsMissingError...).
    """
    for name in unmatched_images:
        accumulator.add_error(name, "eval.err.no_mask", {"name": name})
    total = len(pairs)
    for i, (key, image_name, mask_name) in enumerate(pairs):
        if progress is not None:
            progress(i, total, image_name)
        try:
            pred, truth, notices = load_pair(key, image_name, mask_name)
        except Exception as exc:  # noqa: BLE001 - one bad pair must not stop the batch
            msg_key = getattr(exc, "key", None)
            values = dict(getattr(exc, "values", {}) or {})
            if msg_key is None:
                # the kind only: the library's own text is English (and can be long)
                msg_key, values = "eval.err.unexpected", {"name": image_name, "error": type(exc).__name__}
            accumulator.add_error(image_name, msg_key, values)
            continue
        try:
            accumulator.add(image_name, pred, truth, notices)
        except EvaluationError:
            continue
    if progress is not None:
        progress(total, total, "")
    return accumulator.result()


# ---------------------------------------------------------------- export


def _fmt(x: float | None) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.6f}"


def per_class_csv(result: BatchResult | Scores) -> str:
    """Per-class table as CSV (accumulated counts; per-image mean IoU when a batch)."""
    scores = result.scores if isinstance(result, BatchResult) else result
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["id", "class", "TP", "FP", "FN", "IoU", "Dice", "precision", "recall", "boundary_F1",
              "in_mean"]
    if isinstance(result, BatchResult):
        header.append("mean_per_image_IoU")
    w.writerow(header)
    if scores is None:
        return buf.getvalue()
    for row in scores.rows():
        line = [row["id"], row["class"], row["TP"], row["FP"], row["FN"]] + [
            _fmt(row[k]) for k in ("IoU", "Dice", "precision", "recall", "boundary_F1")] + [int(row["in_mean"])]
        if isinstance(result, BatchResult):
            line.append(_fmt(result.mean_image_iou_per_class[row["id"]]))
        w.writerow(line)
    return buf.getvalue()


def per_image_csv(result: BatchResult, describe: Callable[[Notice], str] | None = None) -> str:
    """One line per image: mIoU, pixel accuracy, valid pixels, or the error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image", "mIoU", "pixel_accuracy", "valid_pixels", "error"])
    for r in result.images:
        err = "" if r.error is None else (describe(r.error) if describe else r.error.key)
        w.writerow([r.name, _fmt(r.miou), _fmt(r.pixel_accuracy), r.valid_pixels, err])
    return buf.getvalue()


def _clean(x: object) -> object:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def to_json_dict(result: BatchResult, meta: dict[str, object] | None = None,
                 describe: Callable[[Notice], str] | None = None) -> dict[str, object]:
    """Everything of a batch as plain JSON types (NaN becomes null)."""
    scores = result.scores
    out: dict[str, object] = {"meta": dict(meta or {})}
    if scores is not None:
        out["policy"] = {"absent": scores.policy.absent, "include_background": scores.policy.include_background}
        out["summary"] = {k: _clean(v) for k, v in scores.summary.items()}
        out["per_class"] = [dict(r, mean_per_image_IoU=_clean(float(result.mean_image_iou_per_class[r["id"]])))
                            for r in scores.rows()]
        out["confusion_matrix"] = scores.cm.tolist()
    out["mean_of_per_image_mIoU"] = _clean(result.mean_image_miou)
    out["mean_boundary_F1_image_wise"] = _clean(result.mean_image_boundary_f1)  # summary's is class-wise
    out["images"] = [{"name": r.name, "mIoU": _clean(r.miou), "pixel_accuracy": _clean(r.pixel_accuracy),
                      "valid_pixels": r.valid_pixels,
                      "error": None if r.error is None else (describe(r.error) if describe else r.error.key),
                      "notices": [describe(n) if describe else n.key for n in r.notices]}
                     for r in result.images]
    return out


def to_json(result: BatchResult, meta: dict[str, object] | None = None,
            describe: Callable[[Notice], str] | None = None) -> str:
    """:func:`to_json_dict` as indented JSON text."""
    return json.dumps(to_json_dict(result, meta, describe), indent=2, ensure_ascii=False)
