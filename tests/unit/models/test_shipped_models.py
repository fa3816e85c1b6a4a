"""segdemo's shipped models: present, small, found by the registry through their
cards, loadable, and the cards' validation numbers re-measured on the data directory.

Re-measuring: CamVid cards carry, besides the full-val numbers, those of a fixed,
documented subset (val images 0, 10, ..., 100 in name order) that is re-measured
here for every model (metrics incl. boundary F1); FCN-8s, the offline default, also
gets its full-val mIoU re-measured. The U-Net's held-out slices 25-29 and the
person model's 30 Penn-Fudan val photos are re-measured in full. Tolerances only absorb float round-off between machines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segdemo import config
from segdemo.models import registry, weights
from segdemo.training import cards

EXPECTED = {"fcn32s_camvid", "fcn16s_camvid", "fcn8s_camvid", "deeplab_slim_camvid", "unet_isbi2012",
            "deeplabv3_mobilenet_v2_camvid", "deeplabv3_mobilenet_v2_scratch_camvid", "lraspp_mobilenet_v2_camvid",
            "lraspp_mobilenet_v2_pennfudan"}
OFFLINE_DEFAULT = "lraspp_mobilenet_v2_camvid"
CARDS = {p.stem: p for p in sorted(config.SHIPPED_MODELS_DIR.glob("*.json"))}
CAMVID = sorted(n for n in EXPECTED if n.endswith("_camvid"))
TOL = 2e-3
REQUIRED = ("name", "architecture", "backbone", "label_set", "builder", "builder_kwargs", "preprocess", "metrics",
            "output_stride", "dataset", "dataset_license", "resolution", "epochs", "training_command",
            "num_params", "inference_ms_cpu", "val", "val_subset")


def card(name: str) -> dict:
    return json.loads(CARDS[name].read_text(encoding="utf-8"))


def test_every_model_is_shipped() -> None:
    assert EXPECTED <= set(CARDS), f"missing cards: {EXPECTED - set(CARDS)}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_and_weights(name: str) -> None:
    c = card(name)
    for field in REQUIRED:
        assert field in c, field
    weights_file = CARDS[name].with_name(c["weights_file"])
    assert weights_file.exists()
    assert weights_file.stat().st_size <= 10.5e6
    for field in ("resize_size", "mean", "std", "grayscale", "pad_multiple"):
        assert field in c["preprocess"]
    for field in ("miou", "pixel_acc", "boundary_f1"):
        assert 0.0 <= c["metrics"][field] <= 1.0
    if c["label_set"] == "camvid":
        assert "CC BY-NC 4.0" in c["dataset_license"]
        assert set(c["val"]["per_class_iou"]) == {
            "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
            "Bicyclist"}
    entry = registry.get(name)
    assert entry.source == "segdemo" and entry.weights.shipped_path == weights_file
    assert entry.architecture == c["architecture"] and entry.backbone == c["backbone"]
    model = weights.load_model(entry, allow_random=False)  # strict: every key fits the builder
    assert not model.random_weights
    assert sum(p.numel() for p in model.parameters()) == c["num_params"]


def test_architecture_names() -> None:
    names = {card(n)["architecture"] for n in EXPECTED}
    assert names == {"FCN-32s", "FCN-16s", "FCN-8s", "U-Net", "DeepLab (dilated, slim)", "DeepLabV3", "LR-ASPP"}


def test_best_camvid_model_is_the_offline_default() -> None:
    defaults = [n for n in CARDS if card(n).get("offline_default")]
    assert defaults == [OFFLINE_DEFAULT]
    assert registry.default_model().name == OFFLINE_DEFAULT
    assert card(OFFLINE_DEFAULT)["metrics"]["miou"] == max(card(n)["metrics"]["miou"] for n in CAMVID)


def input_size(c: dict) -> tuple[int, int]:
    """(width, height) of the card's network input ("1x3xHxW")."""
    _, _, h, w = (int(v) for v in c["inference_input"].split("x"))
    return w, h


def test_pretrained_backbone_cards() -> None:
    """The transfer-learning claim as the cards measure it, and where the backbone came from."""
    tuned, scratch = card("deeplabv3_mobilenet_v2_camvid"), card("deeplabv3_mobilenet_v2_scratch_camvid")
    assert tuned["strategy"] == "finetune" and scratch["strategy"] == "scratch"
    assert tuned["pretrained_backbone"]["source_sha256"].startswith("b0353104") and "pretrained_backbone" not in scratch
    for key in ("epochs", "batch_size", "optimizer", "augmentation", "training_split", "inference_input"):
        assert tuned[key] == scratch[key], key  # the same budget and recipe: only the initialisation differs
    assert tuned["metrics"]["miou"] > scratch["metrics"]["miou"]
    for c in (tuned, scratch, card("lraspp_mobilenet_v2_camvid")):
        assert set(c["val_by_input_size"]["miou"]) == {"240x180", "360x270", "480x360"}
        w, h = input_size(c)
        assert c["val_by_input_size"]["miou"][f"{w}x{h}"] == c["metrics"]["miou"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CAMVID)
def test_camvid_card_is_re_measured(name: str, data_dir: Path) -> None:
    c = card(name)
    model = weights.load_model(registry.get(name), allow_random=False)
    res = cards.evaluate_camvid(model, "cpu", indices=c["val_subset"]["indices"], size=input_size(c))
    assert res.miou == pytest.approx(c["val_subset"]["miou"], abs=TOL)
    assert res.pixel_acc == pytest.approx(c["val_subset"]["pixel_acc"], abs=TOL)
    assert res.boundary_f1 == pytest.approx(c["val_subset"]["boundary_f1"], abs=TOL)
    if name in ("fcn8s_camvid", OFFLINE_DEFAULT):
        full = cards.evaluate_camvid(model, "cpu", with_boundary=False, size=input_size(c))
        assert full.images == 101
        assert full.miou == pytest.approx(c["metrics"]["miou"], abs=TOL)
        assert full.pixel_acc == pytest.approx(c["metrics"]["pixel_acc"], abs=TOL)


@pytest.mark.slow
def test_unet_card_is_re_measured(data_dir: Path) -> None:
    c = card("unet_isbi2012")
    model = weights.load_model(registry.get("unet_isbi2012"), allow_random=False)
    res = cards.evaluate_isbi(model, "cpu", indices=c["val_subset"]["indices"])
    assert c["val_subset"]["indices"] == [25, 26, 27, 28, 29]
    assert res.miou == pytest.approx(c["metrics"]["miou"], abs=TOL)
    assert res.boundary_f1 == pytest.approx(c["metrics"]["boundary_f1"], abs=TOL)


def test_paper_ordering_in_the_cards() -> None:
    """FCN-32s < FCN-16s < FCN-8s in val mIoU and in boundary F1 (the paper's Table 2 ordering)."""
    m = {n: card(n)["metrics"] for n in ("fcn32s_camvid", "fcn16s_camvid", "fcn8s_camvid")}
    assert m["fcn32s_camvid"]["miou"] < m["fcn16s_camvid"]["miou"] < m["fcn8s_camvid"]["miou"]
    assert m["fcn32s_camvid"]["boundary_f1"] < m["fcn16s_camvid"]["boundary_f1"] < m["fcn8s_camvid"]["boundary_f1"]


@pytest.mark.slow
def test_person_card_is_re_measured(data_dir: Path) -> None:
    """The semantic twin of the Mask R-CNN: same Penn-Fudan val split, every number of its card re-measured."""
    from segdemo.data.pennfudan import pennfudan_split

    c = card("lraspp_mobilenet_v2_pennfudan")
    assert c["label_set"] == "person" and "research" in c["dataset_license"]
    assert c["val_subset"]["names"] == pennfudan_split("val") and len(c["val_subset"]["names"]) == 30
    model = weights.load_model(registry.get("lraspp_mobilenet_v2_pennfudan"), allow_random=False)
    res = cards.evaluate_pennfudan(model, "cpu", short_side=c["preprocess"]["resize_size"])
    assert res.images == 30
    assert res.miou == pytest.approx(c["metrics"]["miou"], abs=TOL)
    assert res.pixel_acc == pytest.approx(c["metrics"]["pixel_acc"], abs=TOL)
    assert res.boundary_f1 == pytest.approx(c["metrics"]["boundary_f1"], abs=TOL)
    assert c["val"]["per_class_iou"]["person"] > 0.7
