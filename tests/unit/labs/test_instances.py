"""segdemo.labs.instances (with roi_pooling and instance_views) against independent computations.

Connected components and adjacency on constructed masks (counted by hand);
RoIAlign's sampling points by hand on a tiny map and, averaged through a
bilinear formula written here, against ``torchvision.ops.roi_align``; RoIPool's
bins by hand (torchvision's rounding: halves away from zero) and their maxima
against ``roi_pool``; the pasted mask against a numpy re-implementation of the
paste and against the model's own output; PQ of constructed maps by hand.

The Mask R-CNN tests use the shipped instance model; where it is not shipped
they fall back to random heads on the ImageNet backbone, allowed only because
the test setup sets SEGDEMO_ALLOW_RANDOM_WEIGHTS. They check plumbing (the
stage-by-stage run equals ``model(x)``), not the quality of the detections.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import roi_align, roi_pool

from segdemo.evaluate.panoptic_io import evaluate_folders, ids_to_rgb, rgb_to_ids, write_panoptic_png
from segdemo.labs import instances as inst
from segdemo.labs import roi_pooling as roi
from segdemo.labs import instance_views as views

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------- counting


def test_corner_touching_squares_are_one_region_with_8_connectivity() -> None:
    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:4] = True  # square A
    mask[4:7, 4:7] = True  # square B touches A only at a corner (3,3)-(4,4)
    mask[8:10, 0:2] = True  # square C apart
    labels, count = inst.connected_regions(mask)
    assert count == 2  # A+B, C
    assert labels[2, 2] == labels[5, 5] != labels[9, 0]
    _, count4 = inst.connected_regions(mask, structure=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    assert count4 == 3


def test_adjacent_pairs_and_touching_images() -> None:
    ids = np.zeros((8, 12), np.int32)
    ids[1:7, 1:4] = 1
    ids[1:7, 4:7] = 2  # shares an edge with 1
    ids[1:7, 9:11] = 3  # two columns away from 2
    assert inst.adjacent_instance_pairs(ids) == [(1, 2)]
    apart = np.zeros_like(ids)
    apart[1:3, 1:3] = 1
    apart[5:7, 5:7] = 2
    found = inst.touching_images([("touching", ids), ("apart", apart)])
    assert [(t.name, t.instances, t.regions, t.touching_pairs) for t in found] == [("touching", 3, 2, ((1, 2),))]


def test_sample_instance_ids_numbers_masks_in_order() -> None:
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 2:] = True
    np.testing.assert_array_equal(inst.sample_instance_ids(masks), np.array([[1] * 4] * 2 + [[2] * 4] * 2))


def test_pennfudan_val_touching_photos(data_dir: Path) -> None:
    found = {t.name: t for t in inst.pennfudan_val_touching(data_dir)}
    # PennPed00058: 4 people in 2 touching pairs (checked on the mask by eye as well).
    assert found["PennPed00058"].instances == 4 and found["PennPed00058"].regions == 2
    assert all(t.regions < t.instances and t.touching_pairs for t in found.values())
    merged = [t.instances - t.regions for t in inst.pennfudan_val_touching(data_dir)]
    assert merged == sorted(merged, reverse=True)  # the most merged photo is offered first


def test_semantic_person_model_lookup() -> None:
    class Labels:
        def __init__(self, classes: list[str]) -> None:
            self.classes = classes

    class Entry:
        def __init__(self, name: str, classes: list[str]) -> None:
            self.name, self.label_set = name, Labels(classes)

    entries = [Entry("voc", ["background", "aeroplane", "person"]), Entry("people", ["background", "person"])]
    assert inst.find_semantic_person_model(entries).name == "people"
    assert inst.find_semantic_person_model(entries[:1]) is None


# ---------------------------------------------------------------- RoIAlign / RoIPool


def bilinear_reference(f: np.ndarray, y: float, x: float) -> float:
    """Bilinear interpolation between the four surrounding cell centres (inside the map)."""
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, f.shape[0] - 1), min(x0 + 1, f.shape[1] - 1)
    dy, dx = y - y0, x - x0
    return ((1 - dy) * (1 - dx) * f[y0, x0] + (1 - dy) * dx * f[y0, x1]
            + dy * (1 - dx) * f[y1, x0] + dy * dx * f[y1, x1])


def test_roi_align_points_by_hand() -> None:
    # Box (0, 0)-(4, 2) at scale 0.5 -> map box (0, 0)-(2, 1); 1x1 output, 2x2 samples per bin:
    # bin is 2 wide, 1 high; points at x = 0.5, 1.5 and y = 0.25, 0.75.
    pts = roi.roi_align_points((0, 0, 4, 2), 0.5, output_size=1, sampling_ratio=2)
    expected = np.array([[[0.25, 0.5], [0.25, 1.5]], [[0.75, 0.5], [0.75, 1.5]]])
    np.testing.assert_allclose(pts[0, 0], expected)
    # aligned=True shifts everything by half a cell.
    np.testing.assert_allclose(roi.roi_align_points((0, 0, 4, 2), 0.5, 1, 2, aligned=True)[0, 0], expected - 0.5)


def test_bilinear_sample_on_a_linear_map_is_exact() -> None:
    f = 10.0 * np.arange(4)[:, None] + np.arange(5)[None, :]  # f(y, x) = 10 y + x
    for y, x in [(0.25, 0.5), (1.5, 2.75), (2.9, 3.1)]:
        assert roi.bilinear_sample(f, y, x) == pytest.approx(10 * y + x)
        assert roi.bilinear_sample(f, y, x) == pytest.approx(bilinear_reference(f, y, x))
    assert roi.bilinear_sample(f, -1.5, 0) == 0.0  # outside: zero, as torchvision


@pytest.mark.parametrize("aligned", [False, True])
def test_averaged_bilinear_samples_equal_torchvision_roi_align(aligned: bool) -> None:
    rng = np.random.default_rng(0)
    feature = rng.normal(size=(1, 9, 11)).astype(np.float32)
    for box in [(3.3, 5.1, 120.7, 90.2), (0.0, 0.0, 40.0, 40.0), (60.5, 17.25, 170.0, 140.0)]:
        ref = roi_align(torch.from_numpy(feature)[None], torch.tensor([[0.0, *box]]), 3, 1 / 16, 2, aligned)[0, 0]
        pts = roi.roi_align_points(box, 1 / 16, 3, 2, aligned)
        ours = np.array([[np.mean([roi.bilinear_sample(feature[0], y, x) for y, x in pts[i, j].reshape(-1, 2)])
                          for j in range(3)] for i in range(3)])
        np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)


def test_roi_pool_bins_by_hand_use_c_rounding() -> None:
    # Box x 1.2..5.4, y 0.6..2.5 at scale 1: C round -> x 1..5, y 1..3 (2.5 goes away from zero, to 3;
    # Python's round would give 2). roi_w = 5, roi_h = 3; 2x2 bins of 2.5 x 1.5 cells:
    # rows floor(0)=0..ceil(1.5)=2 and floor(1.5)=1..ceil(3)=3, plus the start 1; columns 0..3 and 2..5, plus 1.
    bins = roi.roi_pool_bins((1.2, 0.6, 5.4, 2.5), 1.0, 2, (6, 8))
    assert bins.tolist() == [[[1, 3, 1, 4], [1, 3, 3, 6]], [[2, 4, 1, 4], [2, 4, 3, 6]]]
    feature = np.arange(48, dtype=np.float32).reshape(6, 8)  # increasing: a bin's max is its last cell
    pooled = roi_pool(torch.from_numpy(feature)[None, None], torch.tensor([[0, 1.2, 0.6, 5.4, 2.5]]), 2, 1.0)
    assert pooled[0, 0].tolist() == [[feature[2, 3], feature[2, 5]], [feature[3, 3], feature[3, 5]]]


def test_roi_pool_bin_maxima_equal_torchvision() -> None:
    rng = np.random.default_rng(1)
    feature = rng.normal(size=(10, 13)).astype(np.float32)
    for box in [(7.9, 8.0, 150.3, 121.6), (24.0, 40.0, 100.0, 100.0), (0.0, 0.0, 207.0, 159.0)]:
        ref = roi_pool(torch.from_numpy(feature)[None, None], torch.tensor([[0.0, *box]]), 7, 1 / 16)[0, 0].numpy()
        bins = roi.roi_pool_bins(box, 1 / 16, 7, feature.shape)
        ours = np.array([[feature[b[0]:b[1], b[2]:b[3]].max() if b[1] > b[0] and b[3] > b[2] else 0.0
                          for b in row] for row in bins])
        np.testing.assert_array_equal(ours, ref)


def test_compare_roi_pooling_values_and_offsets() -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(4, 10, 12)).astype(np.float32)
    box = (37.0, 20.0, 151.0, 139.0)
    c = roi.compare_roi_pooling(features, box, 1 / 16, image_scale=2.0, channel=1)
    fmap, rois = torch.from_numpy(features)[None], torch.tensor([[0.0, *box]])
    np.testing.assert_array_equal(c.pooled, roi_pool(fmap, rois, 7, 1 / 16)[0, 1].numpy())
    np.testing.assert_array_equal(c.aligned_values, roi_align(fmap, rois, 7, 1 / 16, 2, False)[0, 1].numpy())
    # x1 = 37 px = 2.3125 cells -> cell 2 = 32 px: 5 px off; in the photo (2 photo px per input px) 10 px.
    x1 = c.edges[0]
    assert (x1.edge, x1.rounded_cell, x1.offset_input_px, x1.offset_image_px) == ("x1", 2, -5.0, -10.0)
    # y2 = 139 px = 8.6875 cells -> 9 = 144 px: +5 px.
    assert c.edges[3].offset_input_px == pytest.approx(5.0)
    # y1 = 20 px = 1.25 cells -> 16 px: -4; x2 = 151 px = 9.4375 cells -> 144 px: -7, the largest (14 photo px).
    assert [e.offset_input_px for e in c.edges] == pytest.approx([-5.0, -4.0, -7.0, 5.0])
    assert c.max_offset_image_px == pytest.approx(14.0)
    assert roi.draw_roi_pool(c).ndim == 3 and roi.draw_roi_align(c).shape == roi.draw_roi_pool(c).shape


# ---------------------------------------------------------------- pasting and Mask R-CNN


def paste_reference(mask: np.ndarray, box: tuple[float, float, float, float], h: int, w: int) -> np.ndarray:
    """Paste written from the Mask R-CNN recipe: pad the M x M mask by one zero cell, widen the box by
    (M+2)/M around its centre, truncate it to integers, resize bilinearly (half-pixel centres) to the
    box's (x2 - x1 + 1) x (y2 - y1 + 1) pixels and place it."""
    m = mask.shape[0]
    padded = np.pad(mask, 1)
    scale = (m + 2) / m
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) / 2 * scale, (box[3] - box[1]) / 2 * scale
    x0, y0, x1, y1 = (int(v) for v in (cx - hw, cy - hh, cx + hw, cy + hh))
    bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    src_y = np.clip((np.arange(bh) + 0.5) * padded.shape[0] / bh - 0.5, 0, None)
    src_x = np.clip((np.arange(bw) + 0.5) * padded.shape[1] / bw - 0.5, 0, None)
    resized = np.array([[bilinear_reference(padded, y, x) for x in src_x] for y in src_y])
    out = np.zeros((h, w))
    for yy in range(bh):
        for xx in range(bw):
            if 0 <= y0 + yy < h and 0 <= x0 + xx < w:
                out[y0 + yy, x0 + xx] = resized[yy, xx]
    return out


def test_pasted_mask_equals_the_recipe() -> None:
    rng = np.random.default_rng(3)
    probs = rng.uniform(size=(28, 28)).astype(np.float32)
    for box in [(10.4, 5.2, 50.9, 70.3), (-3.0, 2.0, 30.0, 95.5)]:
        np.testing.assert_allclose(inst.paste_roi_mask(probs, box, (80, 64)), paste_reference(probs, box, 80, 64),
                                   atol=1e-5)


@pytest.fixture(scope="module")
def instance_model() -> inst.LoadedInstanceModel:
    """The shipped instance model, or (tests only) its random-head stand-in when it is not shipped."""
    return inst.load_instance_model()


def test_steps_equal_the_models_own_output(instance_model: inst.LoadedInstanceModel, data_dir: Path) -> None:
    from segdemo.data.pennfudan import load_pennfudan

    rgb = np.ascontiguousarray(load_pennfudan("PennPed00058", data_dir).image[:200, :150])
    steps = inst.maskrcnn_steps(instance_model.model, rgb)
    with torch.inference_mode():
        out = instance_model.model([inst.image_tensor(rgb)])[0]
    np.testing.assert_allclose(steps.boxes, out["boxes"].numpy(), atol=1e-4)
    np.testing.assert_allclose(steps.scores, out["scores"].numpy(), atol=1e-6)
    assert steps.masks.shape == (len(steps.scores), 200, 150)
    np.testing.assert_allclose(steps.masks, out["masks"][:, 0].numpy(), atol=1e-5)
    assert steps.input_hw == (426, 320)  # shorter side to the model's min_size 320: 200 * 320/150, floored
    assert len(steps.scores) > 0, "a crop with people gives detections"
    assert steps.spatial_scale == 1 / 16 and steps.features.shape[0] == 128
    assert len(steps.proposals) <= 200 and np.all(np.diff(steps.proposal_scores) <= 1e-6)
    assert steps.mask_roi_features.shape[1:] == (128, 14, 14) and steps.mask_logits.shape[1:] == (28, 28)
    for i in range(min(2, len(steps.scores))):  # each detection's 28x28 mask, pasted, is its output mask
        pasted = inst.paste_roi_mask(steps.mask_probabilities[i], steps.boxes[i], steps.image_hw)
        np.testing.assert_allclose(pasted, steps.masks[i], atol=1e-5)
    # the hooks and the wrapper are gone afterwards
    assert "filter_proposals" not in vars(instance_model.model.rpn)
    assert not instance_model.model.roi_heads.mask_predictor._forward_hooks


def test_kept_instances_and_the_semantic_union() -> None:
    masks = np.zeros((3, 6, 6), np.float32)
    masks[0, :3, :3] = 0.9
    masks[1, 3:, 3:] = 0.6
    masks[2, :, :] = 0.7
    steps = inst.MaskRCNNSteps((6, 6), (6, 6), np.zeros((1, 1, 1)), 1 / 16, np.zeros((0, 4)), np.zeros(0),
                               np.zeros((0, 4)), np.zeros((3, 4)), np.zeros((3, 4)), np.ones(3, np.int64),
                               np.array([0.95, 0.8, 0.3]), np.zeros((3, 1, 14, 14)), np.zeros((3, 28, 28)), masks)
    kept = inst.kept_instances(steps, score_threshold=0.5, mask_threshold=0.65)
    assert kept.count == 2 and kept.masks[0].sum() == 9 and kept.masks[1].sum() == 0
    assert inst.semantic_person_from_instances(kept).sum() == 9
    ids, scores = inst.instance_id_map(steps, 0.5, 0.5)
    assert scores == [0.95, 0.8] and (ids == 1).sum() == 9 and (ids == 2).sum() == 9


# ---------------------------------------------------------------- PQ


def two_people() -> np.ndarray:
    gt = np.zeros((20, 20), np.int32)
    gt[2:12, 2:6] = 1  # 40 px
    gt[2:12, 10:14] = 2  # 40 px
    return gt


def test_pq_of_instance_maps_by_hand() -> None:
    gt = two_people()
    pred = np.zeros_like(gt)
    pred[2:12, 2:6] = 1  # exact: IoU 1
    pred[4:12, 10:14] = 2  # 32 of 40 px: IoU 0.8
    pred[15:18, 15:18] = 3  # false positive
    view = views.pq_for_instance_maps(gt, pred)  # background = a stuff class: every pixel counts
    person = view.result.per_class[1]
    assert (person.tp, person.fp, person.fn) == (2, 1, 0)
    assert person.iou_sum == pytest.approx(1.8)
    f = views.pq_formula(person)
    assert f.denominator == 2.5
    assert f.pq == pytest.approx(1.8 / 2.5) and f.sq == pytest.approx(0.9) and f.rq == pytest.approx(0.8)
    assert f.pq == pytest.approx(f.sq * f.rq)
    # with void background the extra prediction lies wholly on void: set aside, not an FP
    void_view = views.pq_for_instance_maps(gt, pred, background="void")
    assert (void_view.result.per_class[1].tp, void_view.result.per_class[1].fp) == (2, 0)
    assert [s.segment_id for s in void_view.matches.ignored_predictions] == [3]
    assert views.draw_pq_matches(view).shape == (20, 20, 3)


def test_pq_size_mismatch_is_a_user_error() -> None:
    with pytest.raises(inst.InstanceLabError) as err:
        views.pq_for_instance_maps(np.zeros((4, 5)), np.zeros((5, 4)))
    assert err.value.key == "instances.pq.error.size"


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def panoptic_pair(tmp_path: Path) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    gt_ids = np.zeros((20, 20), np.uint32)
    gt_ids[2:12, 2:6] = 7
    gt_ids[12:20, :] = 9
    pred_ids = np.zeros_like(gt_ids)
    pred_ids[3:12, 2:6] = 70
    pred_ids[13:20, :] = 90
    cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 5, "name": "road", "isthing": 0}]
    gt_json = {"annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
        {"id": 7, "category_id": 1, "area": 40}, {"id": 9, "category_id": 5, "area": 160}]}], "categories": cats}
    pred_json = {"annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
        {"id": 70, "category_id": 1}, {"id": 90, "category_id": 5}]}]}
    for name, ids, data in (("gt", gt_ids, gt_json), ("pred", pred_ids, pred_json)):
        (tmp_path / name).mkdir()
        write_panoptic_png(tmp_path / name / "a.png", ids)
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    return gt_json, pred_json, gt_ids, pred_ids


def test_panoptic_uploads_score_like_the_folder_evaluation(tmp_path: Path) -> None:
    gt_json, pred_json, gt_ids, pred_ids = panoptic_pair(tmp_path)
    view = views.pq_for_panoptic_files(png_bytes(ids_to_rgb(gt_ids)), json.dumps(gt_json).encode(), "a.png",
                                      png_bytes(ids_to_rgb(pred_ids)), json.dumps(pred_json).encode(), "a.png")
    folder_result, _ = evaluate_folders(tmp_path / "gt.json", tmp_path / "gt", tmp_path / "pred.json",
                                        tmp_path / "pred")
    assert view.result.to_dict() == folder_result.to_dict()
    # by hand: person 36 of 40 px -> IoU 0.9; road 140 of 160 px (none on void) -> 0.875; All = the mean
    assert view.result.per_class[1].iou_sum == pytest.approx(0.9)
    assert view.result.per_class[5].iou_sum == pytest.approx(0.875)
    assert view.result.all.pq == pytest.approx(0.8875)


@pytest.mark.parametrize("case,key", [
    ("grey_panoptic", "instances.pq.error.not_rgb_panoptic"),
    ("bad_json", "instances.pq.error.json"),
    ("no_categories", "instances.pq.error.json"),
    ("wrong_name", "instances.pq.error.no_annotation"),
    ("not_png", "instances.pq.error.unreadable"),
])
def test_bad_panoptic_uploads_give_catalogue_messages(tmp_path: Path, case: str, key: str) -> None:
    gt_json, pred_json, gt_ids, pred_ids = panoptic_pair(tmp_path)
    gt_png, pred_png = png_bytes(ids_to_rgb(gt_ids)), png_bytes(ids_to_rgb(pred_ids))
    gt_bytes, pred_bytes, name = json.dumps(gt_json).encode(), json.dumps(pred_json).encode(), "a.png"
    two = dict(gt_json, annotations=gt_json["annotations"] * 1 + [dict(gt_json["annotations"][0], image_id=2,
                                                                       file_name="b.png")])
    if case == "grey_panoptic":
        gt_png = png_bytes(np.zeros((20, 20), np.uint8))
    elif case == "bad_json":
        gt_bytes = b"{not json"
    elif case == "no_categories":
        gt_bytes = json.dumps({"annotations": gt_json["annotations"]}).encode()
    elif case == "wrong_name":
        gt_bytes, name = json.dumps(two).encode(), "c.png"
    elif case == "not_png":
        pred_png = b"GIF89a garbage"
    with pytest.raises(inst.InstanceLabError) as err:
        views.pq_for_panoptic_files(gt_png, gt_bytes, name, pred_png, pred_bytes, name)
    assert err.value.key == key


def test_instance_id_png_upload() -> None:
    ids = two_people().astype(np.uint8)
    np.testing.assert_array_equal(views.read_instance_id_png(png_bytes(ids), "gt"), ids)
    with pytest.raises(inst.InstanceLabError) as err:
        views.read_instance_id_png(png_bytes(np.zeros((4, 4, 3), np.uint8)), "gt")
    assert err.value.key == "instances.pq.error.not_single_channel"


def test_every_error_key_is_in_both_catalogues() -> None:
    from segdemo import i18n

    source = "".join((REPO / "segdemo" / "labs" / f"{name}.py").read_text(encoding="utf-8")
                     for name in ("instances", "roi_pooling", "instance_views"))
    keys = set(re.findall(r'"(instances\.[a-z_.]+)"', source))
    assert keys
    for lang in i18n.LANGUAGES:
        missing = sorted(k for k in keys if k not in i18n.catalogue(lang))
        assert not missing, f"{lang}: {missing}"


def test_coco_upload_finds_its_annotation_and_scores_a_dropped_segment(data_dir: Path) -> None:
    """The real COCO panoptic JSON (100 images) as the ground-truth upload: the annotation is found by
    the PNG's file name; a prediction without one thing segment gives that class one FN."""
    root = data_dir / "coco_panoptic"
    gt_json = root / "panoptic_train2017.json"
    data = json.loads(gt_json.read_text(encoding="utf-8"))
    ann = data["annotations"][3]
    things = {c["id"] for c in data["categories"] if c["isthing"]}
    png = (root / "panoptic" / ann["file_name"]).read_bytes()
    same = views.pq_for_panoptic_files(png, gt_json.read_bytes(), ann["file_name"], png,
                                      json.dumps({"annotations": [ann]}).encode(), ann["file_name"])
    plain = [s for s in ann["segments_info"] if not s.get("iscrowd")]
    assert len(same.matches.tp) == len(plain) and not same.matches.fp and not same.matches.fn
    assert same.result.all.pq == pytest.approx(1.0)
    # drop one thing segment: its pixels become void in the prediction
    dropped = next(s for s in plain if s["category_id"] in things)
    ids = rgb_to_ids(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))).copy()
    ids[ids == dropped["id"]] = 0
    pred_ann = dict(ann, segments_info=[s for s in ann["segments_info"] if s["id"] != dropped["id"]])
    view = views.pq_for_panoptic_files(png, gt_json.read_bytes(), ann["file_name"], png_bytes(ids_to_rgb(ids)),
                                      json.dumps({"annotations": [pred_ann]}).encode(), ann["file_name"])
    assert [s.segment_id for s in view.matches.fn] == [dropped["id"]]
    cls = view.result.per_class[dropped["category_id"]]
    n_cls = sum(s["category_id"] == dropped["category_id"] for s in plain)
    assert (cls.tp, cls.fn) == (n_cls - 1, 1)
    expected_pq = (n_cls - 1) / (n_cls - 1 + 0.5) if n_cls > 1 else 0.0  # IoU 1 for every match left
    assert cls.pq == pytest.approx(expected_pq)
