"""Transfer-learning training: strategies, augmentations, the live worker and the CLI flags."""

from __future__ import annotations

import json
import time

import pytest
import torch

from segdemo import cli
from segdemo.data.labels import CAMVID
from segdemo.training.recipes import BACKBONE_LR_MULT, RECIPES, apply_strategy, build, camvid_train_subset
from segdemo.training import augment, live


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("strategy", ["scratch", "frozen", "finetune", "discriminative"])
def test_strategy_parameter_counts(strategy: str) -> None:
    model = build(RECIPES["lraspp_mobilenet_v2"])
    groups = apply_strategy(model, strategy, None, 1e-3)
    head = sum(p.numel() for p in model.classifier.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert trainable(model) == (head if strategy == "frozen" else total)
    assert sum(p.numel() for g in groups for p in g["params"]) == trainable(model)
    assert live.trainable_parameter_counts(strategy) == (trainable(model), total)
    expected = {"scratch": [1.0, 1.0], "frozen": [1.0], "finetune": [1.0, 1.0],
                "discriminative": [BACKBONE_LR_MULT, 1.0]}
    assert sorted(g["lr_mult"] for g in groups) == expected[strategy]


def test_pretrained_strategies_load_imagenet_and_scratch_does_not() -> None:
    from safetensors.torch import load_file

    from segdemo.models.backbones import mobilenet_v2_weights_path

    ref = load_file(str(mobilenet_v2_weights_path()))["features.0.0.weight"].float()
    torch.manual_seed(0)
    scratch = build(RECIPES["deeplabv3_mobilenet_v2"])
    apply_strategy(scratch, "scratch", None, 1e-3)
    tuned = build(RECIPES["deeplabv3_mobilenet_v2"])
    apply_strategy(tuned, "finetune", None, 1e-3)
    assert torch.equal(tuned.backbone[0][0].weight, ref)
    assert not torch.allclose(scratch.backbone[0][0].weight, ref)


def test_subset_is_fixed_and_sized() -> None:
    assert camvid_train_subset(10, 367) == camvid_train_subset(10, 367)
    assert len(set(camvid_train_subset(50, 367))) == 50
    assert camvid_train_subset(0, 367) == list(range(367))


def pattern() -> tuple[torch.Tensor, torch.Tensor]:
    """A test image whose colour says its class: left half class 3 (red), right half class 8 (blue)."""
    labels = torch.full((1, 64, 80), 3, dtype=torch.uint8)
    labels[:, :, 40:] = 8
    image = torch.zeros(1, 3, 64, 80, dtype=torch.uint8)
    image[:, 0][labels == 3] = 250
    image[:, 2][labels == 8] = 250
    return image, labels


@pytest.mark.parametrize("name", ["flip", "rotate", "elastic"])
def test_geometric_augmentations_keep_image_and_labels_aligned(name: str) -> None:
    image, labels = pattern()
    out, lbl = augment.augment_crop(image, labels, {name}, torch.Generator().manual_seed(3), CAMVID.ignore_index)
    assert set(lbl.unique().tolist()) <= {3, 8, CAMVID.ignore_index}  # nearest neighbour invents no class
    red, blue = out[0, 0].int(), out[0, 2].int()
    inside = lbl[0] != CAMVID.ignore_index
    # away from the edge (where bilinear blends the two colours), the colour matches the label
    sure = inside & ((red - blue).abs() > 200)
    assert sure.sum() > 0.8 * inside.sum()
    assert torch.all((lbl[0][sure] == 3) == (red[sure] > blue[sure]))


def test_rotation_fills_void_and_jitter_leaves_labels() -> None:
    image, labels = pattern()
    _, lbl = augment.rotate_pair(image, labels, 10.0, CAMVID.ignore_index)
    assert (lbl == CAMVID.ignore_index).any() and lbl[0, 32, 20] == 3
    out, lbl2 = augment.augment_crop(image, labels, {"jitter"}, torch.Generator().manual_seed(1), 11)
    assert torch.equal(lbl2, labels) and not torch.equal(out, image)


def test_augmentation_names_are_checked() -> None:
    assert augment.parse_augmentations("scale,flip") == augment.BASIC
    assert augment.parse_augmentations("none") == frozenset()
    with pytest.raises(ValueError, match="unknown"):
        augment.parse_augmentations("mosaic")


@pytest.mark.data
def test_live_run_trains_stops_and_registers(data_dir) -> None:  # noqa: ANN001
    worker = live.TrainingWorker()
    cfg = live.LiveRunConfig(strategy="frozen", train_size=10, epochs=2, lr=5e-3)
    first = worker.submit(cfg, "owner-a")
    second = worker.submit(cfg, "owner-b")
    assert worker.position(second) >= 1
    worker.stop(second)  # a queued run is dropped at once
    assert worker.status(second).status == "stopped"
    done = worker.wait(first, 240)
    assert done.status == "done", done.error
    assert [h["epoch"] for h in done.history] == [1, 2]
    assert all(0.0 <= h["val_miou"] <= 1.0 for h in done.history)
    assert done.trainable_params == live.trainable_parameter_counts("frozen")[0]
    entry = live.register_live_model(done, "my run")
    from segdemo.models import weights

    model = weights.load_model(entry, allow_random=False)
    assert model(torch.zeros(1, 3, 180, 240)).shape == (1, 11, 180, 240)

    stopped = worker.submit(live.LiveRunConfig(strategy="scratch", train_size=50, epochs=5), "owner-a")
    deadline = time.monotonic() + 120
    while worker.status(stopped).status != "running" or worker.status(stopped).step < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    worker.stop(stopped)
    end = worker.wait(stopped, 60)
    assert end.status == "stopped" and len(end.history) < 5


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.slow
def test_train_command_records_strategy_and_backbone(data_dir, tmp_path) -> None:  # noqa: ANN001
    code = cli.main(["train", "--model", "lraspp_mobilenet_v2", "--dataset", "camvid", "--strategy", "frozen",
                     "--train-size", "10", "--epochs", "1", "--threads", "1", "--eval-every", "0",
                     "--augment", "scale,flip,jitter", "--out-dir", str(tmp_path / "out"),
                     "--run-dir", str(tmp_path / "runs")])
    assert code == 0
    card = json.loads((tmp_path / "out" / "lraspp_mobilenet_v2_camvid.json").read_text())
    assert card["strategy"] == "frozen" and card["backbone"] == "MobileNetV2 (ImageNet) · CamVid"
    assert card["pretrained_backbone"]["source_sha256"].startswith("b0353104")
    assert card["training_split"] == "train (10 images, a fixed seeded subset)"
    assert "colour jitter" in card["augmentation"]
