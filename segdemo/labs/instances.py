"""Semantic vs instance segmentation, Mask R-CNN step by step, RoIPool vs RoIAlign, PQ of one image.

Everything the "Semantic vs instance" page shows is computed here (no Streamlit):

* **Counting from a semantic mask**: the connected components of a person mask
  (``scipy.ndimage.label`` with **8-connectivity**, the 3x3 structuring element:
  pixels touching at a corner belong to one region). People who touch become one
  region, so a semantic mask cannot count them; :func:`touching_images` finds
  the Penn-Fudan photos where that happens by computing it on their masks.
* **Mask R-CNN step by step** (:func:`maskrcnn_steps`): the torchvision
  ``MaskRCNN`` of :mod:`segdemo.models.maskrcnn` run stage by stage in the order
  of ``GeneralizedRCNN.forward`` (transform, backbone, RPN, RoI heads,
  postprocess). Forward hooks on ``roi_heads.mask_roi_pool`` and
  ``roi_heads.mask_predictor`` capture the RoIAlign features and the 28x28 mask
  logits of every detection; the RPN's objectness scores are read by wrapping
  ``rpn.filter_proposals`` for the call. The modules themselves are not changed.
* **RoIPool vs RoIAlign** (:func:`compare_roi_pooling`): ``torchvision.ops.roi_pool``
  and ``roi_align`` on the backbone's stride-16 map for one box, plus the bins
  and sampling points of torchvision's CPU kernels for drawing (RoIPool rounds
  the box to whole cells, RoIAlign samples bilinearly at exact positions).
* **A semantic person mask**: until a semantic person/background model is
  shipped, :func:`semantic_person_from_instances` takes the union of the
  instance masks (the page says so); :func:`find_semantic_person_model` picks a
  registry model whose label set is exactly background + person when one exists.
* **PQ of one image** (:func:`pq_for_instance_maps`, :func:`pq_for_panoptic_files`):
  through :mod:`segdemo.evaluate.panoptic` / :mod:`segdemo.evaluate.panoptic_io`,
  with the formula's numbers (:func:`pq_formula`) and a drawing of the matches.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch import nn
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import roi_align, roi_pool

from segdemo.evaluate.panoptic import (Category, ClassQuality, ImageMatches, PanopticFormatError, PanopticImage,
                                       PQResult, evaluate_pairs)
from segdemo.evaluate.panoptic_io import (BACKGROUND_SEGMENT_ID, instance_categories, instance_ids_to_panoptic, load_panoptic_json,
                                          masks_to_instance_ids, read_instance_mask, rgb_to_ids,
                                          segments_from_annotation)

DEFAULT_INSTANCE_MODEL = "maskrcnn_mobilenet_v2_pennfudan"
CONNECTIVITY_8 = np.ones((3, 3), dtype=bool)  # 8-connectivity: corner neighbours join a region
PERSON_RGB = (220, 20, 60)  # one colour for the class "person" (Cityscapes' person red)
BACKGROUND_RGB = (0, 0, 0)
# One colour per object (Tableau 10): neighbouring instances stay distinguishable.
INSTANCE_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                   (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127))
TP_GT_RGB = (0, 200, 0)
TP_PRED_RGB = (30, 144, 255)
FP_RGB = (230, 25, 75)
FN_RGB = (255, 165, 0)
MAX_UPLOAD_PIXELS = 60_000_000

_MODEL_LOCK = threading.Lock()  # one model shared by all sessions; hooks and the wrapper are per call


class InstanceLabError(ValueError):
    """Input the page cannot use; ``key`` names the catalogue message, ``values`` fill it."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(f"{key} {values}")
        self.key = key
        self.values = values


# ---------------------------------------------------------------- counting from a semantic mask


def connected_regions(mask: np.ndarray, structure: np.ndarray = CONNECTIVITY_8) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask: (label map 0 = background, 1..K; K)."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=structure)
    return labels.astype(np.int32), int(count)


def adjacent_instance_pairs(instance_ids: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of instances with pixels that are 8-neighbours of each other."""
    ids = np.asarray(instance_ids)
    h, w = ids.shape
    padded = np.zeros((h + 2, w + 2), dtype=ids.dtype)
    padded[1:-1, 1:-1] = ids
    pairs: set[tuple[int, int]] = set()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            neighbour = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            touching = (ids > 0) & (neighbour > 0) & (ids != neighbour)
            for a, b in zip(ids[touching].tolist(), neighbour[touching].tolist()):
                pairs.add((min(a, b), max(a, b)))
    return sorted(pairs)


@dataclass(frozen=True)
class TouchingImage:
    """A photo whose people touch: ``instances`` objects but only ``regions`` connected regions."""

    name: str
    instances: int
    regions: int
    touching_pairs: tuple[tuple[int, int], ...]


def touching_images(samples: Iterable[tuple[str, np.ndarray]]) -> list[TouchingImage]:
    """Of (name, instance-id map) samples, those where the union of the instances has fewer
    connected regions than instances (so counting semantic regions under-counts)."""
    out = []
    for name, ids in samples:
        present = [k for k in np.unique(ids) if k != 0]
        _, regions = connected_regions(np.asarray(ids) > 0)
        if regions < len(present):
            out.append(TouchingImage(name, len(present), regions, tuple(adjacent_instance_pairs(ids))))
    return out


def pennfudan_val_touching(root: Path | None = None) -> list[TouchingImage]:
    """The Penn-Fudan validation photos whose people touch (computed from their masks), the ones with
    most people merged into shared regions first."""
    from segdemo.data.pennfudan import pennfudan_dir, pennfudan_split

    folder = pennfudan_dir(root)

    def samples() -> Iterable[tuple[str, np.ndarray]]:
        for name in pennfudan_split("val", root):
            yield name, np.asarray(Image.open(folder / "PedMasks" / f"{name}_mask.png"))

    return sorted(touching_images(samples()), key=lambda t: t.regions - t.instances)


def sample_instance_ids(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) boolean masks of a data set sample -> instance-id map (instance k-1 gets id k)."""
    ids = np.zeros(masks.shape[1:], dtype=np.int32)
    for k, mask in enumerate(masks, start=1):
        ids[mask & (ids == 0)] = k
    return ids


# ---------------------------------------------------------------- the instance model


@dataclass
class LoadedInstanceModel:
    """The instance model the page uses; ``random_weights``: heads untrained (tests only)."""

    model: nn.Module
    name: str
    card: dict[str, Any] | None
    random_weights: bool


class InstanceModelMissing(LookupError):
    """The instance model's weights are not there (e.g. still training)."""

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__(f"instance model {name!r}: no weights in {folder}")
        self.name = name
        self.folder = folder


def load_instance_model(name: str = DEFAULT_INSTANCE_MODEL) -> LoadedInstanceModel:
    """The shipped instance model; without its weights, random heads on the ImageNet backbone when
    ``SEGDEMO_ALLOW_RANDOM_WEIGHTS`` allows it (tests), else :class:`InstanceModelMissing`."""
    from segdemo import config
    from segdemo.models import instance_registry
    from segdemo.models.maskrcnn import maskrcnn_mobilenet_v2

    cards = instance_registry.list_instance_cards()
    if name in cards:
        model, card = instance_registry.load_instance_model(name)
        return LoadedInstanceModel(model, name, card, False)
    if config.allow_random_weights():
        torch.manual_seed(0)
        return LoadedInstanceModel(maskrcnn_mobilenet_v2(imagenet_weights=True).eval(), name, None, True)
    raise InstanceModelMissing(name, instance_registry.INSTANCE_MODELS_DIR)


def find_semantic_person_model(entries: Iterable[Any]) -> Any | None:
    """The first registry entry whose label set is exactly background + person, else None."""
    for entry in entries:
        try:
            classes = [c.lower() for c in entry.label_set.classes]
        except (AttributeError, KeyError):
            continue
        if sorted(classes) == ["background", "person"]:
            return entry
    return None


# ---------------------------------------------------------------- Mask R-CNN step by step


@dataclass
class MaskRCNNSteps:
    """One photo through Mask R-CNN, stage by stage (boxes x1, y1, x2, y2).

    ``*_input`` boxes are in the network's input (resized) pixels; the others in the photo's.
    """

    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    features: np.ndarray  # (C, fh, fw) backbone output (of the padded input batch)
    spatial_scale: float  # feature cells per input pixel, as the model's MultiScaleRoIAlign infers it (1/16)
    proposals: np.ndarray  # (P, 4) photo pixels, best objectness first
    proposal_scores: np.ndarray  # (P,) RPN objectness after sigmoid
    proposals_input: np.ndarray  # (P, 4)
    boxes: np.ndarray  # (N, 4) photo pixels, best score first
    boxes_input: np.ndarray  # (N, 4)
    labels: np.ndarray  # (N,)
    scores: np.ndarray  # (N,)
    mask_roi_features: np.ndarray  # (N, C, 14, 14) MultiScaleRoIAlign output for the mask head
    mask_logits: np.ndarray  # (N, 28, 28) of each detection's class
    masks: np.ndarray  # (N, H, W) probabilities pasted into the photo (the model's output)

    @property
    def image_per_input(self) -> float:
        """Photo pixels per network-input pixel (the transform's resize, undone)."""
        return self.image_hw[0] / self.input_hw[0]

    @property
    def mask_probabilities(self) -> np.ndarray:
        """(N, 28, 28) sigmoid of the mask logits."""
        return 1.0 / (1.0 + np.exp(-self.mask_logits))


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1], what torchvision's detection models take."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0


@torch.inference_mode()
def maskrcnn_steps(model: nn.Module, rgb: np.ndarray) -> MaskRCNNSteps:
    """Run ``model`` (a torchvision MaskRCNN in eval mode) on ``rgb`` stage by stage; see the module docstring."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InstanceLabError("instances.error.not_rgb", shape=str(rgb.shape))
    h, w = rgb.shape[:2]
    captured: dict[str, Any] = {}
    with _MODEL_LOCK:
        images, _ = model.transform([image_tensor(rgb)])
        features = model.backbone(images.tensors)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        rpn = model.rpn
        original_filter = rpn.filter_proposals

        def filter_and_keep(*args: Any, **kwargs: Any) -> Any:
            out = original_filter(*args, **kwargs)
            captured["rpn"] = out
            return out

        hooks = [model.roi_heads.mask_roi_pool.register_forward_hook(
                     lambda _m, _i, out: captured.__setitem__("roi", out)),
                 model.roi_heads.mask_predictor.register_forward_hook(
                     lambda _m, _i, out: captured.__setitem__("logits", out))]
        rpn.filter_proposals = filter_and_keep  # instance attribute, removed below
        try:
            proposals, _ = rpn(images, features)
            detections, _ = model.roi_heads(features, proposals, images.image_sizes)
        finally:
            del rpn.filter_proposals
            for hook in hooks:
                hook.remove()
        input_hw = tuple(images.image_sizes[0])
        detections_input = detections[0]["boxes"].clone()
        detections = model.transform.postprocess(detections, images.image_sizes, [(h, w)])[0]
    proposal_boxes = proposals[0]
    proposal_scores = captured["rpn"][1][0]
    labels = detections["labels"]
    n = len(labels)
    logits = captured.get("logits")
    roi = captured.get("roi")
    if n and logits is not None:
        class_logits = logits[torch.arange(n), labels]
    else:
        class_logits = torch.zeros((0, 28, 28))
    feature_map = features["0"][0]
    return MaskRCNNSteps(
        image_hw=(h, w), input_hw=(int(input_hw[0]), int(input_hw[1])),
        features=feature_map.float().numpy(), spatial_scale=float(model.roi_heads.box_roi_pool.scales[0]),
        proposals=resize_boxes(proposal_boxes, input_hw, (h, w)).numpy(),
        proposal_scores=proposal_scores.numpy(), proposals_input=proposal_boxes.numpy(),
        boxes=detections["boxes"].numpy(), boxes_input=detections_input.numpy(), labels=labels.numpy(),
        scores=detections["scores"].numpy(),
        mask_roi_features=(roi.numpy() if roi is not None and n
                           else np.zeros((0, feature_map.shape[0], 14, 14), np.float32)),
        mask_logits=class_logits.numpy(),
        masks=detections["masks"][:, 0].numpy() if n else np.zeros((0, h, w), np.float32))


def paste_roi_mask(probabilities: np.ndarray, box: Sequence[float], image_hw: tuple[int, int]) -> np.ndarray:
    """One RoI's M x M mask probabilities pasted into the image at ``box`` (torchvision's
    ``paste_masks_in_image``, as the model's postprocess does): (H, W) float."""
    masks = torch.as_tensor(np.asarray(probabilities, dtype=np.float32))[None, None]
    boxes = torch.as_tensor(np.asarray(box, dtype=np.float32))[None]
    return paste_masks_in_image(masks, boxes, image_hw)[0, 0].numpy()


def roi_feature_heatmap(roi_features: np.ndarray) -> np.ndarray:
    """A (C, S, S) RoI feature block as one (S, S) map: the mean absolute activation over channels."""
    return np.abs(np.asarray(roi_features)).mean(axis=0)


@dataclass(frozen=True)
class Instances:
    """The detections kept by the score threshold, with binary masks at the mask threshold."""

    boxes: np.ndarray  # (K, 4)
    labels: np.ndarray
    scores: np.ndarray
    masks: np.ndarray  # (K, H, W) bool (may overlap)
    indices: np.ndarray  # positions in the steps' detections

    @property
    def count(self) -> int:
        return len(self.scores)


def kept_instances(steps: MaskRCNNSteps, score_threshold: float, mask_threshold: float) -> Instances:
    """Detections with score >= ``score_threshold``; mask pixels with probability >= ``mask_threshold``."""
    keep = np.flatnonzero(steps.scores >= score_threshold)
    return Instances(steps.boxes[keep], steps.labels[keep], steps.scores[keep],
                     steps.masks[keep] >= mask_threshold, keep)


def instance_id_map(steps: MaskRCNNSteps, score_threshold: float, mask_threshold: float) -> tuple[np.ndarray, list[float]]:
    """The kept detections as one non-overlapping instance-id map and its scores (panoptic_io's rule)."""
    return masks_to_instance_ids(steps.masks, steps.scores.tolist(), mask_threshold, score_threshold)


def semantic_person_from_instances(instances: Instances) -> np.ndarray:
    """The person-vs-background mask derived from the instance model: the union of its masks."""
    if instances.count == 0:
        return np.zeros(instances.masks.shape[1:], dtype=bool)
    return instances.masks.any(axis=0)


# ---------------------------------------------------------------- RoIPool vs RoIAlign


def round_half_away(value: float) -> int:
    """C's ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(np.floor(value + 0.5)) if value >= 0 else -int(np.floor(-value + 0.5))


def roi_pool_bins(box: Sequence[float], spatial_scale: float, output_size: int,
                  feature_hw: tuple[int, int]) -> np.ndarray:
    """RoIPool's bins as whole feature cells, as torchvision's kernel computes them.

    The box is rounded to cells (``round`` half away from zero, inclusive end), each
    bin is ``[floor(i*b), ceil((i+1)*b))`` cells of the rounded box, clipped to the
    map. Returns (S, S, 4): cell rows ``y0:y1`` and columns ``x0:x1`` (end exclusive).
    """
    x1, y1, x2, y2 = (float(v) * spatial_scale for v in box)
    start_w, start_h, end_w, end_h = (round_half_away(v) for v in (x1, y1, x2, y2))
    roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
    bin_h, bin_w = roi_h / output_size, roi_w / output_size
    height, width = feature_hw
    bins = np.zeros((output_size, output_size, 4), dtype=np.int64)
    for ph in range(output_size):
        for pw in range(output_size):
            hs = min(max(int(np.floor(ph * bin_h)) + start_h, 0), height)
            he = min(max(int(np.ceil((ph + 1) * bin_h)) + start_h, 0), height)
            ws = min(max(int(np.floor(pw * bin_w)) + start_w, 0), width)
            we = min(max(int(np.ceil((pw + 1) * bin_w)) + start_w, 0), width)
            bins[ph, pw] = (hs, he, ws, we)
    return bins


def roi_align_points(box: Sequence[float], spatial_scale: float, output_size: int, sampling_ratio: int,
                     aligned: bool = False) -> np.ndarray:
    """RoIAlign's sampling points in feature-map coordinates (cell (i, j) is centred on (i, j)).

    As torchvision's kernel: the box is scaled (minus 0.5 when ``aligned``), not
    rounded; each of the S x S bins gets ``sampling_ratio`` x ``sampling_ratio``
    regularly spaced points. Returns (S, S, r, r, 2) of (y, x).
    """
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / output_size, roi_w / output_size
    grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / output_size))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / output_size))
    points = np.zeros((output_size, output_size, grid_h, grid_w, 2))
    for ph in range(output_size):
        for pw in range(output_size):
            for iy in range(grid_h):
                for ix in range(grid_w):
                    points[ph, pw, iy, ix] = (y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h,
                                              x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w)
    return points


def bilinear_sample(feature: np.ndarray, y: float, x: float) -> float:
    """The value of a (H, W) map at (y, x) by bilinear interpolation, with RoIAlign's border rules
    (0 outside [-1, H] x [-1, W]; coordinates below 0 clamp to 0; the last cell is repeated)."""
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return float(hy * hx * feature[y_low, x_low] + hy * lx * feature[y_low, x_high]
                 + ly * hx * feature[y_high, x_low] + ly * lx * feature[y_high, x_high])


@dataclass(frozen=True)
class EdgeOffset:
    """One box edge: exact position on the feature grid vs RoIPool's rounded cell, in pixels."""

    edge: str  # "x1", "y1", "x2", "y2"
    input_px: float  # the edge in network-input pixels
    exact_cells: float  # input_px * spatial_scale
    rounded_cell: int  # RoIPool's cell index
    offset_input_px: float  # (rounded - exact) / spatial_scale
    offset_image_px: float  # the same in the photo's pixels


@dataclass
class RoIComparison:
    """RoIPool and RoIAlign of one box on one feature map (one channel shown, all compared)."""

    box_input: np.ndarray  # (4,) network-input pixels
    spatial_scale: float
    output_size: int
    sampling_ratio: int
    aligned: bool
    channel: int
    feature_channel: np.ndarray  # (fh, fw) the map of ``channel``
    pool_bins: np.ndarray  # (S, S, 4)
    align_points: np.ndarray  # (S, S, r, r, 2)
    pooled: np.ndarray  # (S, S) roi_pool of ``channel``
    aligned_values: np.ndarray  # (S, S) roi_align of ``channel``
    mean_abs_difference: float  # over all channels and bins
    edges: list[EdgeOffset] = field(default_factory=list)

    @property
    def max_offset_image_px(self) -> float:
        return max(abs(e.offset_image_px) for e in self.edges)


def most_active_channel(features: np.ndarray, box_input: Sequence[float], spatial_scale: float) -> int:
    """The channel with the largest mean activation inside the box (a readable map to draw)."""
    _, fh, fw = features.shape
    x1, y1, x2, y2 = (float(v) * spatial_scale for v in box_input)
    r0, r1 = max(int(np.floor(y1)), 0), min(max(int(np.ceil(y2)), int(np.floor(y1)) + 1), fh)
    c0, c1 = max(int(np.floor(x1)), 0), min(max(int(np.ceil(x2)), int(np.floor(x1)) + 1), fw)
    inside = features[:, r0:r1, c0:c1]
    if inside.size == 0:
        return 0
    return int(inside.reshape(len(features), -1).mean(axis=1).argmax())


def compare_roi_pooling(features: np.ndarray, box_input: Sequence[float], spatial_scale: float,
                        image_scale: float = 1.0, output_size: int = 7, sampling_ratio: int = 2,
                        aligned: bool = False, channel: int | None = None) -> RoIComparison:
    """``roi_pool`` vs ``roi_align`` (torchvision.ops) of ``box_input`` on a (C, fh, fw) map.

    ``image_scale``: photo pixels per network-input pixel (to state offsets in the photo).
    Defaults follow the model's box head: 7 x 7, sampling ratio 2, ``aligned=False``.
    """
    fmap = torch.as_tensor(np.asarray(features, dtype=np.float32))[None]
    rois = torch.tensor([[0.0, *[float(v) for v in box_input]]])
    pooled = roi_pool(fmap, rois, output_size, spatial_scale)[0].numpy()
    align = roi_align(fmap, rois, output_size, spatial_scale, sampling_ratio, aligned)[0].numpy()
    if channel is None:
        channel = most_active_channel(np.asarray(features), box_input, spatial_scale)
    bins = roi_pool_bins(box_input, spatial_scale, output_size, features.shape[1:])
    edges = []
    for name, value in zip(("x1", "y1", "x2", "y2"), box_input):
        exact = float(value) * spatial_scale
        rounded = round_half_away(exact)
        offset = (rounded - exact) / spatial_scale
        edges.append(EdgeOffset(name, float(value), exact, int(rounded), offset, offset * image_scale))
    return RoIComparison(np.asarray(box_input, dtype=np.float64), spatial_scale, output_size, sampling_ratio,
                         aligned, int(channel), np.asarray(features)[channel], bins,
                         roi_align_points(box_input, spatial_scale, output_size, sampling_ratio, aligned),
                         pooled[channel], align[channel], float(np.abs(pooled - align).mean()), edges)


def _grey_map(values: np.ndarray, cell_px: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    norm = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    grey = (60 + 170 * norm).astype(np.uint8)
    big = np.repeat(np.repeat(grey, cell_px, axis=0), cell_px, axis=1)
    return np.stack([big] * 3, axis=-1)


def roi_drawing_window(comparison: RoIComparison, margin: int = 2) -> tuple[int, int, int, int]:
    """The feature cells to draw (rows r0:r1, columns c0:c1): the box with ``margin`` cells around it."""
    fh, fw = comparison.feature_channel.shape
    b = comparison.pool_bins
    pts = comparison.align_points
    r0 = max(min(int(b[..., 0].min()), int(np.floor(pts[..., 0].min()))) - margin, 0)
    r1 = min(max(int(b[..., 1].max()), int(np.ceil(pts[..., 0].max())) + 1) + margin, fh)
    c0 = max(min(int(b[..., 2].min()), int(np.floor(pts[..., 1].min()))) - margin, 0)
    c1 = min(max(int(b[..., 3].max()), int(np.ceil(pts[..., 1].max())) + 1) + margin, fw)
    return r0, r1, c0, c1


def draw_roi_pool(comparison: RoIComparison, cell_px: int = 24) -> np.ndarray:
    """The feature map around the box (grey, one square per cell), the exact box (dashed white)
    and RoIPool's quantised bins (orange rectangles on whole cells)."""
    r0, r1, c0, c1 = roi_drawing_window(comparison)
    img = _grey_map(comparison.feature_channel[r0:r1, c0:c1], cell_px)
    for hs, he, ws, we in comparison.pool_bins.reshape(-1, 4):
        if he > hs and we > ws:
            cv2.rectangle(img, ((ws - c0) * cell_px, (hs - r0) * cell_px),
                          ((we - c0) * cell_px - 1, (he - r0) * cell_px - 1), (255, 140, 0), 2)
    _draw_exact_box(img, comparison, r0, c0, cell_px)
    return img


def draw_roi_align(comparison: RoIComparison, cell_px: int = 24) -> np.ndarray:
    """The same map, the exact box split into S x S bins (thin blue) and RoIAlign's sampling
    points (blue dots; each is a bilinear mix of the 4 nearest cell centres)."""
    r0, r1, c0, c1 = roi_drawing_window(comparison)
    img = _grey_map(comparison.feature_channel[r0:r1, c0:c1], cell_px)
    offset = 0.5 if comparison.aligned else 0.0
    x1, y1, x2, y2 = (float(v) * comparison.spatial_scale - offset for v in comparison.box_input)
    s = comparison.output_size

    def to_px(y: float, x: float) -> tuple[int, int]:  # cell (i, j) is centred on (i, j)
        return int(round((x - c0 + 0.5) * cell_px)), int(round((y - r0 + 0.5) * cell_px))

    for i in range(s + 1):
        y = y1 + i * (y2 - y1) / s
        x = x1 + i * (x2 - x1) / s
        cv2.line(img, to_px(y, x1), to_px(y, x2), (70, 130, 255), 1)
        cv2.line(img, to_px(y1, x), to_px(y2, x), (70, 130, 255), 1)
    for y, x in comparison.align_points.reshape(-1, 2):
        cv2.circle(img, to_px(y, x), max(2, cell_px // 8), (0, 90, 255), -1)
    _draw_exact_box(img, comparison, r0, c0, cell_px)
    return img


def _draw_exact_box(img: np.ndarray, comparison: RoIComparison, r0: int, c0: int, cell_px: int) -> None:
    x1, y1, x2, y2 = (float(v) * comparison.spatial_scale for v in comparison.box_input)
    # aligned=False: box coordinate v maps to map coordinate v * scale, a cell centre being an integer.
    p1 = (int(round((x1 - c0 + 0.5) * cell_px)), int(round((y1 - r0 + 0.5) * cell_px)))
    p2 = (int(round((x2 - c0 + 0.5) * cell_px)), int(round((y2 - r0 + 0.5) * cell_px)))
    cv2.rectangle(img, p1, p2, (255, 255, 255), 2, lineType=cv2.LINE_AA)


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


def _label(img: np.ndarray, text: str, x: float, y: float, color: Sequence[int]) -> None:
    scale = max(0.4, min(img.shape[:2]) / 700)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x0 = int(min(max(x, 0), max(img.shape[1] - tw - 4, 0)))
    y0 = int(min(max(y, th + 4), img.shape[0] - 1))
    cv2.rectangle(img, (x0, y0 - th - base - 2), (x0 + tw + 4, y0 + 2), tuple(int(c) for c in color), -1)
    cv2.putText(img, text, (x0 + 2, y0 - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def draw_instances(rgb: np.ndarray, instances: Instances, class_names: Sequence[str], alpha: float = 0.5) -> np.ndarray:
    """One colour per object: its mask, its box and "class score" above the box."""
    out = rgb.copy()
    for k in range(instances.count):
        out = blend(out, instances.masks[k], instance_color(k + 1), alpha)
    for k in range(instances.count):
        color = instance_color(k + 1)
        x1, y1, x2, y2 = (int(round(v)) for v in instances.boxes[k])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        name = class_names[int(instances.labels[k])] if int(instances.labels[k]) < len(class_names) else "?"
        _label(out, f"{k + 1} {name} {instances.scores[k]:.2f}", x1, y1, color)
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
    for m in view.matches.tp:
        cat = view.categories.get(m.category_id)
        if cat is not None and not cat.isthing:
            continue
        ys, xs = np.nonzero(view.gt.ids == m.gt_id)
        if len(ys):
            _label(out, f"IoU {m.iou:.2f}", xs.min(), ys.min() + 2, (0, 120, 0))
    for seg, color, text in ([(s, FP_RGB, "FP") for s in view.matches.fp]
                             + [(s, FN_RGB, "FN") for s in view.matches.fn]):
        ids = view.pred.ids if text == "FP" else view.gt.ids
        ys, xs = np.nonzero(ids == seg.segment_id)
        if len(ys):
            _label(out, text, xs.min(), ys.min() + 2, color)
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
