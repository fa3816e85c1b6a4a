"""The shipped distilled student and its control: cards, the same recipe but the teacher, re-measured on
CamVid val (the documented 11-image subset with boundary F1, and the full val mIoU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segdemo import config
from segdemo.labs import distillation as kd
from segdemo.models import registry, weights
from segdemo.training import cards

TOL = 2e-3  # float round-off between machines only


def card(name: str) -> dict:
    return json.loads((config.SHIPPED_MODELS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def input_size(c: dict) -> tuple[int, int]:
    _, _, h, w = (int(v) for v in c["inference_input"].split("x"))
    return w, h


def test_student_and_control_differ_only_in_the_teacher() -> None:
    student, control, teacher = card(kd.STUDENT), card(kd.CONTROL), card(kd.TEACHER)
    assert student["distillation"]["teacher"] == kd.TEACHER and "distillation" not in control
    assert student["distillation"]["temperature"] > 0 and 0 < student["distillation"]["mix"] <= 1
    for key in ("builder", "builder_kwargs", "epochs", "batch_size", "optimizer", "augmentation", "seed",
                "strategy", "training_split", "inference_input", "num_params", "preprocess"):
        assert student[key] == control[key], key
    assert student["builder"] == kd.STUDENT_ARCHITECTURE
    # the student is much smaller than the teacher, measured the same way (same input size)
    assert student["inference_input"] == teacher["inference_input"]
    assert student["num_params"] < 0.35 * teacher["num_params"]
    assert "--teacher lraspp_mobilenet_v2_camvid" in student["training_command"]
    assert "--teacher" not in control["training_command"]
    for c in (student, control):
        assert (config.SHIPPED_MODELS_DIR / c["weights_file"]).stat().st_size < 1.5e6  # fp16, small
        assert c["weights_dtype"] == "float16"
        assert c["val_by_input_size"]["miou"]["360x270"] == c["metrics"]["miou"]
    entry_s, entry_c = registry.get(kd.STUDENT), registry.get(kd.CONTROL)
    assert entry_s.backbone != entry_c.backbone  # told apart in the registry (architecture + backbone)
    assert registry.find(entry_s.architecture, entry_s.backbone).name == kd.STUDENT


@pytest.mark.slow
@pytest.mark.parametrize("name", [kd.STUDENT, kd.CONTROL])
def test_distillation_cards_are_re_measured(name: str, data_dir: Path) -> None:
    c = card(name)
    model = weights.load_model(registry.get(name), allow_random=False)
    assert sum(p.numel() for p in model.parameters()) == c["num_params"]
    res = cards.evaluate_camvid(model, "cpu", indices=c["val_subset"]["indices"], size=input_size(c))
    assert res.miou == pytest.approx(c["val_subset"]["miou"], abs=TOL)
    assert res.pixel_acc == pytest.approx(c["val_subset"]["pixel_acc"], abs=TOL)
    assert res.boundary_f1 == pytest.approx(c["val_subset"]["boundary_f1"], abs=TOL)
    full = cards.evaluate_camvid(model, "cpu", with_boundary=False, size=input_size(c))
    assert full.images == 101
    assert full.miou == pytest.approx(c["metrics"]["miou"], abs=TOL)
