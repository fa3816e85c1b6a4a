"""The instance model: Mask R-CNN builder, Penn-Fudan loader and split, COCO-style AP50, shipped weights."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from segdemo.evaluate.instance_ap import APAccumulator, average_precision, box_iou_matrix, mask_iou_matrix, match_image

# ------------------------------------------------------------------ AP50 (hand-worked cases)


def test_ap_perfect_detections_is_one():
    ious = np.array([[0.9, 0.0], [0.0, 0.8]])
    assert average_precision([(np.array([0.9, 0.8]), ious)]) == pytest.approx(1.0)


def test_ap_false_positive_at_higher_score():
    # Ranked: FP (0.95), TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1. The monotone envelope is
    # 2/3 everywhere, so all 101 recall points read 2/3.
    ious = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.7]])
    assert average_precision([(np.array([0.95, 0.9, 0.8]), ious)]) == pytest.approx(2 / 3)


def test_ap_false_positive_at_lower_score_costs_nothing():
    ious = np.array([[1.0, 0.0], [0.0, 0.7], [0.0, 0.0]])
    assert average_precision([(np.array([0.9, 0.8, 0.1]), ious)]) == pytest.approx(1.0)


def test_ap_missed_object_caps_recall():
    # One of two objects found: recall reaches 0.5, so recall points 0..0.50 (51 of 101) read precision 1.
    ious = np.array([[0.9, 0.0]])
    assert average_precision([(np.array([0.9]), ious)]) == pytest.approx(51 / 101)


def test_ap_duplicate_detection_is_false_positive_and_greedy_by_score():
    # Both detections overlap object 0 only; the higher-scoring one takes it, the other is a FP.
    scores, ious = np.array([0.6, 0.9]), np.array([[0.95], [0.6]])
    kept, tp = match_image(scores, ious)
    assert kept.tolist() == [0.9, 0.6] and tp.tolist() == [True, False]


def test_ap_matches_the_highest_iou_free_ground_truth_and_iou_half_counts():
    kept, tp = match_image(np.array([0.9, 0.8]), np.array([[0.5, 0.7], [0.5, 0.0]]))
    assert tp.tolist() == [True, True]  # det 0 takes gt 1 (0.7); det 1 gets gt 0 at exactly 0.5 (>=, as COCO)
    _, tp_below = match_image(np.array([0.9]), np.array([[0.4999]]))
    assert tp_below.tolist() == [False]


def test_ap_across_images_sorts_by_score():
    # Image A: FP at 0.7. Image B: TP at 0.9, TP at 0.5. Ranked: TP, FP, TP -> precision 1, 1/2, 2/3;
    # recall 1/2 at the first, 1 at the third. Envelope: 1 up to recall 0.5, then 2/3.
    acc = APAccumulator()
    acc.add(np.array([0.7]), np.zeros((1, 0)))
    acc.add(np.array([0.9, 0.5]), np.array([[0.8, 0.0], [0.0, 0.9]]))
    assert acc.average_precision() == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_ap_no_detections_is_zero_and_no_ground_truth_is_nan():
    assert average_precision([(np.zeros(0), np.zeros((0, 3)))]) == 0.0
    assert math.isnan(average_precision([(np.array([0.5]), np.zeros((1, 0)))]))


def test_ap_max_detections_drops_the_lowest_scores():
    ious = np.array([[0.0], [0.0], [0.9]])
    assert average_precision([(np.array([0.9, 0.8, 0.1]), ious)], max_detections=2) == 0.0
    assert average_precision([(np.array([0.9, 0.8, 0.1]), ious)], max_detections=3) == pytest.approx(1 / 3)


def test_mask_and_box_iou():
    a = np.zeros((1, 4, 4), bool)
    a[0, :2, :] = True  # 8 pixels
    b = np.zeros((1, 4, 4), bool)
    b[0, :, :2] = True  # 8 pixels, 4 shared
    assert mask_iou_matrix(a, b)[0, 0] == pytest.approx(4 / 12)
    assert box_iou_matrix(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2]]))[0, 0] == pytest.approx(2 / 6)


# ------------------------------------------------------------------ the builder


def test_maskrcnn_structure_and_outputs():
    from torchvision.models.detection import MaskRCNN
    from torchvision.ops import MultiScaleRoIAlign

    from segdemo.models.builders import count_params
    from segdemo.models.maskrcnn import maskrcnn_mobilenet_v2

    torch.manual_seed(0)
    model = maskrcnn_mobilenet_v2(num_classes=2)
    assert isinstance(model, MaskRCNN)
    assert isinstance(model.roi_heads.box_roi_pool, MultiScaleRoIAlign)
    assert model.roi_heads.mask_roi_pool.output_size == (14, 14)
    total, trainable = count_params(model), count_params(model, trainable_only=True)
    assert 4.0e6 < total < 5.0e6  # the light heads; torchvision's defaults on 1280 channels are ~87 M
    assert trainable < total  # the stem and first stages are frozen
    assert not any(p.requires_grad for p in model.backbone[0][:4].parameters())
    # Stride 16, 128 channels out of the backbone.
    assert model.backbone(torch.zeros(1, 3, 320, 320)).shape == (1, 128, 20, 20)

    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 240, 200)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"}
    assert out["masks"].shape[1:] == (1, 240, 200)

    model.train()
    target = {"boxes": torch.tensor([[20.0, 30.0, 80.0, 200.0]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 240, 200, dtype=torch.uint8)}
    target["masks"][0, 30:200, 20:80] = 1
    losses = model([torch.rand(3, 240, 200)], [target])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())


def test_imagenet_backbone_weights_are_loaded():
    from segdemo.models.backbones import mobilenet_v2_weights_path, read_backbone_state
    from segdemo.models.maskrcnn import maskrcnn_mobilenet_v2

    model = maskrcnn_mobilenet_v2(imagenet_weights=True)
    state = read_backbone_state(mobilenet_v2_weights_path())
    first_conv = model.backbone[0][0][0].weight
    assert torch.equal(first_conv, state["features.0.0.weight"])


# ------------------------------------------------------------------ the Penn-Fudan loader


def test_pennfudan_missing_folder_raises(tmp_path):
    from segdemo.data.pennfudan import pennfudan_names
    from segdemo.data.datasets import DatasetMissingError

    with pytest.raises(DatasetMissingError, match="SEGDEMO_DATA_DIR"):
        pennfudan_names(tmp_path)


def test_masks_to_boxes_is_tight_and_exclusive():
    from segdemo.data.pennfudan import instance_masks, masks_to_boxes

    ids = np.zeros((6, 8), np.uint8)
    ids[1:4, 2:5] = 1
    ids[5, 7] = 2
    masks = instance_masks(ids)
    assert masks.shape == (2, 6, 8)
    assert masks_to_boxes(masks).tolist() == [[2, 1, 5, 4], [7, 5, 8, 6]]


def test_pennfudan_split_and_samples(data_dir):
    from segdemo.data.pennfudan import load_pennfudan, pennfudan_names, pennfudan_split

    names = pennfudan_names()
    train, val = pennfudan_split("train"), pennfudan_split("val")
    assert (len(names), len(train), len(val)) == (149, 119, 30)
    assert not set(train) & set(val) and sorted(train + val) == names
    assert val == names[::5]

    for name in (val[0], train[-1]):
        sample = load_pennfudan(name)
        id_map = np.asarray(Image.open(data_dir / "pennfudan" / "PedMasks" / f"{name}_mask.png"))
        assert sample.image.shape == (*id_map.shape, 3)
        assert len(sample.masks) == id_map.max() >= 1
        for k, (mask, box) in enumerate(zip(sample.masks, sample.boxes), start=1):
            assert np.array_equal(mask, id_map == k)
            x1, y1, x2, y2 = box.astype(int)
            assert mask[y1:y2, x1:x2].sum() == mask.sum()  # the box holds the whole mask ...
            assert mask[y1].any() and mask[y2 - 1].any() and mask[:, x1].any() and mask[:, x2 - 1].any()  # tight


# ------------------------------------------------------------------ training (tiny, resumable) and the CLI


def test_train_instance_cli_is_registered():
    from segdemo.cli import build_parser

    args = build_parser().parse_args(["train-instance", "--epochs", "3", "--resume"])
    assert args.epochs == 3 and args.resume and args.model == "maskrcnn_mobilenet_v2"


@pytest.mark.slow
def test_tiny_training_run_writes_card_and_resumes(data_dir, tmp_path, monkeypatch):
    from segdemo.training import instance

    monkeypatch.setattr(instance, "RUNS_DIR", tmp_path / "runs")
    args = argparse.Namespace(model="maskrcnn_mobilenet_v2", dataset="pennfudan", epochs=1, lr=0.005,
                              weight_decay=1e-4, warmup_steps=1, batch_size=2, seed=0, threads=1, eval_every=0,
                              limit=2, name="tiny", out_dir=str(tmp_path / "out"), resume=False)
    assert instance.train(args) == 0
    card = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert card["task"] == "instance" and card["epochs"] == 1 and len(card["history"]) == 1
    assert 0.0 <= card["metrics"]["mask_ap50"] <= 1.0
    assert (tmp_path / "runs" / "tiny" / "last.pt").is_file()
    # Resuming a finished run trains nothing more and keeps the history.
    assert instance.train(argparse.Namespace(**{**vars(args), "resume": True})) == 0
    resumed = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert resumed["history"] == card["history"]


# ------------------------------------------------------------------ the shipped model


def test_instance_models_stay_out_of_the_semantic_registry():
    from segdemo import config

    semantic_cards = [p.name for p in config.SHIPPED_MODELS_DIR.glob("*.json")]
    assert not any("maskrcnn" in name for name in semantic_cards)


def test_shipped_maskrcnn_remeasures_its_card(data_dir):
    """Val mask AP50 of the shipped fp16 file, on the whole val split (30 images, ~15 s on one thread)."""
    from segdemo.data.pennfudan import load_pennfudan, pennfudan_split
    from segdemo.models.instance_registry import INSTANCE_MODELS_DIR, load_instance_model
    from segdemo.training.instance import evaluate_instances

    if not (INSTANCE_MODELS_DIR / "maskrcnn_mobilenet_v2_pennfudan.json").is_file():
        pytest.skip("maskrcnn_mobilenet_v2_pennfudan not shipped")
    model, entry, _ = load_instance_model("maskrcnn_mobilenet_v2_pennfudan")
    card = entry.card
    assert (INSTANCE_MODELS_DIR / card["weights_file"]).stat().st_size < 10_500_000
    assert "research" in card["data_licence"] and card["val_images"] == 30
    samples = [load_pennfudan(n) for n in pennfudan_split("val")]
    scores = evaluate_instances(model, samples, with_pq=False)
    assert scores["mask_ap50"] == pytest.approx(card["metrics"]["mask_ap50"], abs=0.01)
    assert scores["box_ap50"] == pytest.approx(card["metrics"]["box_ap50"], abs=0.01)
