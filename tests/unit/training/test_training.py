"""Training: one step lowers the loss, batches are aligned, runs resume exactly,
cards are written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segdemo.cli import train as cli_train
from segdemo.training import cards, loop, recipes
from segdemo.models.deeplab_slim import DilatedSlimDeepLab
from segdemo.models.fcn import FCN
from segdemo.models.unet import UNet

@pytest.mark.parametrize("kind", ["fcn8s", "unet", "deeplab"])
def test_one_batch_training_step_lowers_the_loss(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "fcn8s":
        net = FCN(num_classes=4, stride=8, width="slim", batch_norm=True, dropout=0.0)
        x, size = torch.randn(2, 3, 48, 64), (48, 64)
        forward = net
    elif kind == "unet":
        net = UNet(base=4, depth=2, padding="valid")
        x, size = torch.randn(2, 1, 60, 60), (20, 20)
        forward = net
    else:
        net = DilatedSlimDeepLab(num_classes=4, aspp_channels=8, dropout=0.0)
        x, size = torch.randn(2, 3, 48, 64), (48, 64)
        forward = net
    classes = 2 if kind == "unet" else 4
    y = torch.randint(0, classes, (2, *size))
    net.train()
    # the optimiser of `segdemo train`, with a step small enough for the first-order guarantee
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    before = F.cross_entropy(forward(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(forward(x), y)
    assert after.item() < before.item()


def test_class_weights_median_frequency() -> None:
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[0, :, :2] = 1  # class 1: 8 px in image 0 (16 px) -> freq 0.5
    labels[1, :, :] = 0  # class 0: 8 + 16 px over 2 images (32 px) -> freq 0.75
    labels[1, 0, 0] = 2  # class 2: 1 px in image 1 -> freq 1/16; void-free
    w = recipes.class_weights(labels, 3, None).numpy()
    freq = np.array([23 / 32, 8 / 16, 1 / 16])
    np.testing.assert_allclose(w, np.sqrt(np.median(freq) / freq), rtol=1e-6)


def test_lr_schedule() -> None:
    assert recipes.lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert recipes.lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert recipes.lr_at(100, 100, 1.0, 10) == pytest.approx(0.0)


def test_camvid_batch_shapes_and_labels() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (3, 3, 270, 360), dtype=torch.uint8)
    labels = torch.randint(0, 12, (3, 270, 360), dtype=torch.uint8)
    x, y = loop.camvid_batch(images, labels, torch.tensor([0, 2]), g)
    assert x.shape == (2, 3, 176, 224) and y.shape == (2, 176, 224)
    assert y.dtype == torch.int64 and int(y.max()) <= 11


def test_isbi_batch_labels_are_aligned_with_the_image_centre() -> None:
    """Image = 255 * label: after flips, rotations and the elastic warp the label tile
    must still match the centre of the image tile (a misaligned crop would not)."""
    rng = np.random.default_rng(0)
    lbl = (rng.random((2, 12, 12)) > 0.5).repeat(8, axis=1).repeat(8, axis=2).astype(np.int64)  # 96x96 blocks
    img = torch.from_numpy(lbl * 255.0)[:, None]
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        x, y = loop.isbi_batch(img, torch.from_numpy(lbl), torch.tensor([0, 1]), 60, 20, g)
        assert x.shape == (2, 1, 60, 60) and y.shape == (2, 20, 20)
        centre = x[:, 0, 20:40, 20:40] * 0.5 + 0.5  # undo normalisation
        agree = ((centre > 0.5).long() == y).float().mean()
        assert agree > 0.95


# ------------------------------------------------------------------ end to end, resumable


def _tiny_isbi_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = recipes.Recipe("unet", {"in_channels": 1, "num_classes": 2, "base": 4, "depth": 2, "padding": "valid",
                                 "batch_norm": True, "tile_output": 40}, "isbi2012", "U-Net", "tiny · test",
                        None, batch_size=2, extra={"tile_input": 80})
    monkeypatch.setitem(recipes.RECIPES, "unet", tiny)
    for module in (loop, cards):  # each imports the split by name
        monkeypatch.setattr(module, "ISBI_TRAIN_SLICES", [0, 1])
    monkeypatch.setattr(cards, "ISBI_VAL_SLICES", [25])


def _args(tmp: Path, epochs: int, resume: bool, name: str, stop_after: int = 0) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_train.add_subcommand(sub)
    argv = ["train", "--model", "unet", "--dataset", "isbi2012", "--epochs", str(epochs), "--isbi-steps", "2",
            "--threads", "1", "--eval-every", "0", "--name", name, "--out-dir", str(tmp / "out"),
            "--run-dir", str(tmp / "runs"), "--device", "cpu", "--stop-after", str(stop_after)]
    argv += ["--resume"] if resume else []
    return parser.parse_args(argv)


@pytest.mark.slow
def test_training_resumes_exactly_and_writes_a_card(data_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    _tiny_isbi_recipe(monkeypatch)
    card = loop.train(_args(tmp_path, 2, False, "straight"), ["--epochs", "2"])
    assert loop.train(_args(tmp_path, 2, False, "resumed", stop_after=1), ["--epochs", "2"]) == {}
    assert not (tmp_path / "out" / "resumed.safetensors").exists()  # interrupted: no weights yet
    loop.train(_args(tmp_path, 2, True, "resumed"), ["--epochs", "2", "--resume"])
    a = load_file(str(tmp_path / "out" / "straight.safetensors"))
    b = load_file(str(tmp_path / "out" / "resumed.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert all(v.dtype == torch.float16 for v in a.values() if v.is_floating_point())
    stored = json.loads((tmp_path / "out" / "straight.json").read_text())
    assert stored == json.loads(json.dumps(card))
    for field in ("name", "architecture", "backbone", "label_set", "builder", "builder_kwargs", "preprocess",
                  "metrics", "dataset", "dataset_license", "resolution", "epochs", "training_command",
                  "num_params", "inference_ms_cpu", "val"):
        assert field in stored
    assert set(stored["val"]["per_class_iou"]) == {"membrane", "cell"}
    assert stored["training_command"].startswith("python -m segdemo train")
    # the card's metrics are those of the stored (fp16) weights, re-measured here
    net = loop.load_weights(recipes.build(recipes.RECIPES["unet"]), tmp_path / "out" / "straight.safetensors")
    res = cards.evaluate_isbi(net, "cpu", indices=[25])
    assert res.miou == pytest.approx(stored["metrics"]["miou"], abs=1e-4)


def test_unet_base_option_changes_only_the_width() -> None:
    wide = recipes.with_unet_base(recipes.RECIPES["unet"], 24)
    assert wide.builder_kwargs["base"] == 24
    assert {k: v for k, v in wide.builder_kwargs.items() if k != "base"} == {
        k: v for k, v in recipes.RECIPES["unet"].builder_kwargs.items() if k != "base"}
    assert "24 ch" in wide.backbone
    assert recipes.build(wide).widths[0] == 24
    with pytest.raises(SystemExit):
        recipes.with_unet_base(recipes.RECIPES["fcn8s"], 24)
