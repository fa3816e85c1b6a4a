"""Semantic vs instance segmentation, Mask R-CNN step by step, RoIPool vs RoIAlign, PQ of one image.

Everything the "Semantic vs instance" page shows is computed here and in
:mod:`segdemo.labs.roi_pooling` and :mod:`segdemo.labs.instance_views` (no Streamlit):

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
* **A semantic person mask**: :func:`find_semantic_person_model` picks the
  registry model whose label set is exactly background + person (segdemo ships
  ``lraspp_mobilenet_v2_pennfudan``); beside torchvision's COCO Mask R-CNN a
  VOC-label model's "person" is used, with :data:`COCO_TO_VOC` for the other
  classes. Without either, :func:`semantic_person_from_instances` takes the
  union of the instance masks (the page says so).
* **PQ of one image** (:func:`pq_for_instance_maps`, :func:`pq_for_panoptic_files`):
  through :mod:`segdemo.evaluate.panoptic` / :mod:`segdemo.evaluate.panoptic_io`,
  with the formula's numbers (:func:`pq_formula`) and a drawing of the matches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch import nn
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes

from segdemo.data.labels import PERSON
from segdemo.evaluate.panoptic_io import masks_to_instance_ids
from segdemo.i18n.errors import UserError

DEFAULT_INSTANCE_MODEL = "maskrcnn_mobilenet_v2_pennfudan"
CONNECTIVITY_8 = np.ones((3, 3), dtype=bool)  # 8-connectivity: corner neighbours join a region
PERSON_RGB = PERSON.colors[PERSON.classes.index("person")]  # one colour for the class "person"
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


class InstanceLabError(UserError):
    """Input the page cannot use; ``key`` names the catalogue message, ``values`` fill it."""


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
    categories: tuple[str, ...] = ("__background__", "person")  # label id -> class name
    trained_on: str = "Penn-Fudan pedestrians"

    @property
    def person_label(self) -> int:
        """The label id of the class "person"."""
        return self.categories.index("person")


class InstanceModelMissing(LookupError):
    """The instance model's weights are not there (e.g. still training)."""

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__(f"instance model {name!r}: no weights in {folder}")
        self.name = name
        self.folder = folder


def load_instance_model(name: str = DEFAULT_INSTANCE_MODEL, fetch: bool = False,
                        progress: Any = None) -> LoadedInstanceModel:
    """An instance model of :mod:`segdemo.models.instance_registry`.

    segdemo's Penn-Fudan model without its weights: random heads on the ImageNet
    backbone when ``SEGDEMO_ALLOW_RANDOM_WEIGHTS`` allows it (tests), else
    :class:`InstanceModelMissing`. torchvision's COCO model: downloaded with
    ``fetch``; without weights :class:`~segdemo.models.weights.WeightsMissingError`
    (or random weights in tests).
    """
    from segdemo import config
    from segdemo.models import instance_registry
    from segdemo.models.maskrcnn import maskrcnn_mobilenet_v2

    known = {e.name for e in instance_registry.list_instance_models()}
    if name in known:
        model, entry, path = instance_registry.load_instance_model(name, fetch=fetch, progress=progress)
        return LoadedInstanceModel(model, name, entry.card, path is None, entry.categories, entry.trained_on)
    if name == DEFAULT_INSTANCE_MODEL and config.allow_random_weights():
        torch.manual_seed(0)
        return LoadedInstanceModel(maskrcnn_mobilenet_v2(imagenet_weights=True).eval(), name, None, True)
    raise InstanceModelMissing(name, instance_registry.INSTANCE_MODELS_DIR)


# torchvision's VOC-label semantic models were trained on COCO images keeping 20 COCO
# categories (torchvision references/segmentation/coco_utils.py, CAT_LIST); by name:
COCO_TO_VOC = {
    "airplane": "aeroplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat", "bottle": "bottle",
    "bus": "bus", "car": "car", "cat": "cat", "chair": "chair", "cow": "cow", "dining table": "diningtable",
    "dog": "dog", "horse": "horse", "motorcycle": "motorbike", "person": "person", "potted plant": "pottedplant",
    "sheep": "sheep", "couch": "sofa", "train": "train", "tv": "tvmonitor",
}


def voc_class_of(coco_name: str) -> str | None:
    """The VOC class a COCO category is counted as by the VOC-label models (None: no VOC class)."""
    return COCO_TO_VOC.get(coco_name)


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


def semantic_partner(loaded: LoadedInstanceModel, entries: Iterable[Any],
                     has_weights: Callable[[Any], bool]) -> Any | None:
    """The semantic model put beside ``loaded``: for a person-only model the background +
    person one; for a COCO model a VOC-label model (its classes per :data:`COCO_TO_VOC`);
    only entries whose weights are here (``has_weights``). None: there is none."""
    entries = list(entries)
    if len(loaded.categories) > 2:
        return next((e for e in entries if e.label_set_key == "voc" and has_weights(e)), None)
    entry = find_semantic_person_model(entries)
    return entry if entry is not None and has_weights(entry) else None


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
