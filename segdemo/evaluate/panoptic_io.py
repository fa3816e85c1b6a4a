"""The COCO panoptic format in and out, and instance-id masks as panoptic segmentations.

The official format (cocodataset.org/#format-data, panopticapi ``utils.rgb2id``):
one RGB PNG per image whose pixel's segment id is ``R + 256*G + 256**2*B``
(0 = void, unlabelled), and one JSON whose ``annotations[]`` give ``image_id``,
``file_name`` and ``segments_info`` (``id``, ``category_id``, ``iscrowd``,
optionally ``area``) and whose ``categories`` give ``id``, ``name``, ``isthing``.

Instance-id masks (Penn-Fudan ``PedMasks``, an instance model's output) hold
0 = background and k = the k-th object, all of one thing class. Their background
becomes, by default, one *stuff* segment of a "background" category (not void):
with void, panopticapi would leave a predicted mask's pixels on the background
out of the union (and ignore predictions lying mostly on it), so a mask spilling
over the person would not be penalised. As stuff, every pixel counts, the
person's PQ is the ``things`` group and ``all`` also averages the background
class. ``background="void"`` gives the COCO convention for unlabelled pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo.evaluate.panoptic import (VOID, Category, ImageMatches, PanopticFormatError, PanopticImage,
                                       PQAccumulator, PQResult, Segment)

BACKGROUND_SEGMENT_ID = 256 ** 3 - 1  # white in the RGB encoding; never an instance id (those are < 256)
THING_CATEGORY = Category(1, "person", True)  # Penn-Fudan's one class, COCO's id for person
BACKGROUND_CATEGORY = Category(0, "background", False)

# An instance predictor: RGB image (H, W, 3) uint8 -> (instance-id mask (H, W), score of instance k at [k-1]).
InstancePredictor = Callable[[np.ndarray], tuple[np.ndarray, Sequence[float]]]


def rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of an RGB panoptic PNG array: ``R + 256*G + 256**2*B`` (uint32)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise PanopticFormatError(f"a panoptic PNG must be RGB, got an array of shape {rgb.shape}")
    rgb = rgb[..., :3].astype(np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """The RGB encoding of a segment-id map (inverse of :func:`rgb_to_ids`)."""
    ids = np.asarray(ids, dtype=np.uint64)
    if ids.size and int(ids.max()) >= 256 ** 3:
        raise PanopticFormatError("segment ids must be below 256**3 to fit an RGB PNG")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def read_panoptic_png(path: Path) -> np.ndarray:
    """The segment-id map of a panoptic PNG file."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA"):
                raise PanopticFormatError(f"{path}: a panoptic PNG is RGB, this one is mode {im.mode}")
            return rgb_to_ids(np.asarray(im))
    except (OSError, SyntaxError) as exc:  # PIL's errors for a missing or unreadable file
        raise PanopticFormatError(f"{path}: cannot read the PNG ({exc})") from exc


def write_panoptic_png(path: Path, ids: np.ndarray) -> None:
    """Write a segment-id map as an RGB panoptic PNG."""
    Image.fromarray(ids_to_rgb(ids), "RGB").save(path)


@dataclass
class PanopticJson:
    """A parsed panoptic JSON: annotations by image id (in file order) and categories by id."""

    path: Path
    annotations: dict[int | str, dict]
    categories: dict[int, Category]


def _fail(path: Path, what: str) -> PanopticFormatError:
    return PanopticFormatError(f"{path}: {what}")


def load_panoptic_json(path: Path, need_categories: bool = True) -> PanopticJson:
    """Read and check a panoptic JSON (ground truth needs ``categories``; a prediction may omit them)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _fail(path, "file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise _fail(path, "not a panoptic JSON (no 'annotations' list)")
    categories: dict[int, Category] = {}
    raw_categories = data.get("categories")
    if need_categories and not isinstance(raw_categories, list):
        raise _fail(path, "no 'categories' list")
    for c in raw_categories or []:
        try:
            categories[int(c["id"])] = Category(int(c["id"]), str(c.get("name", c["id"])), int(c["isthing"]) == 1)
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, f"a category lacks id/isthing: {c!r}") from exc
    annotations: dict[int | str, dict] = {}
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "image_id" not in ann or "file_name" not in ann \
                or not isinstance(ann.get("segments_info"), list):
            raise _fail(path, "an annotation lacks image_id, file_name or segments_info")
        if ann["image_id"] in annotations:
            raise _fail(path, f"image_id {ann['image_id']} appears twice")
        annotations[ann["image_id"]] = ann
    return PanopticJson(path, annotations, categories)


def segments_from_annotation(ann: Mapping, source: Path, use_area: bool) -> dict[int, Segment]:
    """The segments of one annotation; ``use_area``: keep the JSON ``area`` (ground truth, as panopticapi)."""
    segments: dict[int, Segment] = {}
    for s in ann["segments_info"]:
        try:
            seg = Segment(int(s["id"]), int(s["category_id"]), int(s.get("iscrowd", 0)) == 1,
                          int(s["area"]) if use_area and "area" in s else None,
                          float(s["score"]) if "score" in s else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(source, f"image {ann['image_id']}: a segment lacks id or category_id: {s!r}") from exc
        if seg.id in segments:
            raise _fail(source, f"image {ann['image_id']}: segment id {seg.id} appears twice")
        segments[seg.id] = seg
    return segments


def iter_folder_pairs(gt: PanopticJson, gt_folder: Path, pred: PanopticJson,
                      pred_folder: Path) -> Iterator[tuple[PanopticImage, PanopticImage]]:
    """(ground truth, prediction) images in GT order; every GT image needs a prediction and vice versa."""
    missing = [i for i in gt.annotations if i not in pred.annotations]
    extra = [i for i in pred.annotations if i not in gt.annotations]
    if missing or extra:
        parts = ([f"no prediction for image ids {missing[:5]}" + (" ..." if len(missing) > 5 else "")]
                 if missing else []) + ([f"predictions for image ids not in the ground truth {extra[:5]}"
                                         + (" ..." if len(extra) > 5 else "")] if extra else [])
        raise PanopticFormatError("image lists differ: " + "; ".join(parts))
    for folder in (gt_folder, pred_folder):
        if not Path(folder).is_dir():
            raise PanopticFormatError(f"{folder}: folder not found")
    for image_id, gt_ann in gt.annotations.items():
        gt_segments = segments_from_annotation(gt_ann, gt.path, use_area=True)
        unknown = sorted({s.category_id for s in gt_segments.values()} - set(gt.categories))
        if unknown:
            raise _fail(gt.path, f"image {image_id}: unknown category_id {unknown}")
        pred_ann = pred.annotations[image_id]
        yield (PanopticImage(image_id, read_panoptic_png(Path(gt_folder) / gt_ann["file_name"]), gt_segments,
                             gt_ann["file_name"]),
               PanopticImage(image_id, read_panoptic_png(Path(pred_folder) / pred_ann["file_name"]),
                             segments_from_annotation(pred_ann, pred.path, use_area=False), pred_ann["file_name"]))


def evaluate_folders(gt_json: Path, gt_folder: Path, pred_json: Path,
                     pred_folder: Path) -> tuple[PQResult, list[ImageMatches]]:
    """``pq_compute`` on files: categories come from the ground-truth JSON, as in panopticapi."""
    gt = load_panoptic_json(Path(gt_json))
    pred = load_panoptic_json(Path(pred_json), need_categories=False)
    acc = PQAccumulator(gt.categories)
    for gt_image, pred_image in iter_folder_pairs(gt, Path(gt_folder), pred, Path(pred_folder)):
        acc.update(gt_image, pred_image)
    return acc.result(), acc.images


def instance_ids_to_panoptic(instance_ids: np.ndarray, image_id: int | str = 0,
                             scores: Sequence[float] | None = None, background: str = "stuff",
                             thing: Category = THING_CATEGORY,
                             background_category: Category = BACKGROUND_CATEGORY) -> PanopticImage:
    """An instance-id mask (0 = background, k = k-th object of class ``thing``) as a panoptic image.

    Instance k keeps segment id k; ``scores[k-1]`` is its score. ``background`` is
    ``"stuff"`` (one segment of ``background_category``; see the module docstring)
    or ``"void"`` (id 0, unlabelled).
    """
    if background not in ("stuff", "void"):
        raise ValueError(f"background must be 'stuff' or 'void', not {background!r}")
    instance_ids = np.asarray(instance_ids)
    if instance_ids.ndim != 2:
        raise PanopticFormatError(f"an instance-id mask is single-channel, got shape {instance_ids.shape}")
    if instance_ids.size and (instance_ids.min() < 0 or instance_ids.max() >= BACKGROUND_SEGMENT_ID):
        raise PanopticFormatError("instance ids must be in 0 .. 256**3 - 2")
    ids = instance_ids.astype(np.uint32)
    present = [int(k) for k in np.unique(ids) if k != 0]
    if scores is not None and present and len(scores) < max(present):
        raise PanopticFormatError(f"{len(scores)} scores for instance ids up to {max(present)}")
    segments = {k: Segment(k, thing.id, score=None if scores is None else float(scores[k - 1])) for k in present}
    if background == "stuff" and (ids == 0).any():
        ids = np.where(ids == 0, np.uint32(BACKGROUND_SEGMENT_ID), ids)
        segments[BACKGROUND_SEGMENT_ID] = Segment(BACKGROUND_SEGMENT_ID, background_category.id)
    return PanopticImage(image_id, ids, segments)


def instance_categories(background: str = "stuff", thing: Category = THING_CATEGORY,
                        background_category: Category = BACKGROUND_CATEGORY) -> dict[int, Category]:
    """The category table that goes with :func:`instance_ids_to_panoptic`."""
    cats = {thing.id: thing}
    if background == "stuff":
        cats[background_category.id] = background_category
    return cats


def masks_to_instance_ids(masks: np.ndarray, scores: Sequence[float], mask_threshold: float = 0.5,
                          min_score: float = 0.0) -> tuple[np.ndarray, list[float]]:
    """Overlapping soft masks (N, H, W) of an instance model as one instance-id mask and its scores.

    Panoptic segments cannot overlap: instances are pasted from the highest score
    down and a pixel stays with the first instance that took it (panopticapi's
    combination heuristic, without its overlap filter). Instances scoring below
    ``min_score`` or left with no pixel are dropped; ids are renumbered 1..K.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3 or len(scores) != masks.shape[0]:
        raise ValueError(f"masks of shape (N, H, W) with N scores expected, got {masks.shape} and {len(scores)}")
    ids = np.zeros(masks.shape[1:], dtype=np.int32)
    kept: list[float] = []
    for n in sorted(range(len(scores)), key=lambda i: -float(scores[i])):
        if float(scores[n]) < min_score:
            continue
        free = (masks[n] >= mask_threshold) & (ids == 0)
        if free.any():
            kept.append(float(scores[n]))
            ids[free] = len(kept)
    return ids, kept


def read_instance_mask(path: Path) -> np.ndarray:
    """An instance-id mask file (single channel: 0 = background, k = k-th object)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise PanopticFormatError(f"{path}: an instance-id mask is single-channel, this one is {im.mode}")
            return np.asarray(im).astype(np.int64)
    except (OSError, SyntaxError) as exc:
        raise PanopticFormatError(f"{path}: cannot read the mask ({exc})") from exc


def evaluate_instance_predictor(predict: InstancePredictor, samples: Sequence[tuple[str, np.ndarray, np.ndarray]],
                                background: str = "stuff") -> tuple[PQResult, list[ImageMatches]]:
    """PQ of an instance model on (name, RGB image, GT instance-id mask) samples, one thing class."""
    acc = PQAccumulator(instance_categories(background))
    for name, rgb, gt_mask in samples:
        pred_mask, scores = predict(rgb)
        if np.shape(pred_mask) != gt_mask.shape:
            raise PanopticFormatError(f"{name}: prediction is {np.shape(pred_mask)}, ground truth {gt_mask.shape}")
        acc.update(instance_ids_to_panoptic(gt_mask, name, background=background),
                   instance_ids_to_panoptic(pred_mask, name, scores, background=background))
    return acc.result(), acc.images


__all__ = ["BACKGROUND_SEGMENT_ID", "InstancePredictor", "PanopticJson", "VOID", "evaluate_folders",
           "evaluate_instance_predictor", "ids_to_rgb", "instance_categories", "instance_ids_to_panoptic",
           "iter_folder_pairs", "load_panoptic_json", "masks_to_instance_ids", "read_instance_mask",
           "read_panoptic_png", "rgb_to_ids", "segments_from_annotation", "write_panoptic_png"]
