"""The distillation page's logic: soft labels at a pixel, masks on a val frame, the live pair, the cards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segdemo.labs import distillation as kd


def test_soft_labels_at_a_pixel_are_torch_softmax_of_z_over_t() -> None:
    logits = np.random.default_rng(0).normal(size=(11, 6, 8)).astype(np.float32) * 4
    probs = kd.soft_labels_at(logits, 2, 5, (1.0, 2.0, 8.0))
    assert probs.shape == (3, 11)
    z = torch.from_numpy(logits[:, 2, 5])
    for row, t in zip(probs, (1.0, 2.0, 8.0)):
        assert np.allclose(row, torch.softmax(z / t, dim=0).numpy(), atol=1e-7)
        assert row.sum() == pytest.approx(1.0, abs=1e-6)
    # the ranking of the classes never changes with T; only the spread does
    assert len({tuple(np.argsort(r)) for r in probs}) == 1
    assert probs[0].max() > probs[1].max() > probs[2].max()


def test_live_pair_differs_only_in_the_teacher() -> None:
    student, control = kd.live_configs(3.0, 0.7, 2, 10, True)
    assert student.teacher == kd.TEACHER and control.teacher is None
    assert (student.kd_temperature, student.kd_mix) == (3.0, 0.7)
    assert student.architecture == control.architecture == kd.STUDENT_ARCHITECTURE
    for f in ("strategy", "train_size", "lr", "epochs", "seed", "augment", "batch_size"):
        assert getattr(student, f) == getattr(control, f), f
    assert len(kd.live_configs(3.0, 0.7, 2, 10, False)) == 1


def test_mark_pixel_and_distillation_gain() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    out = kd.mark_pixel(img, 10, 15)
    assert out[10, 15].tolist() == [255, 255, 255] and img.max() == 0
    assert kd.distillation_gain([{"role": "student", "miou": 0.6}, {"role": "control", "miou": 0.55}]) == \
        pytest.approx(0.05)
    assert kd.distillation_gain([{"role": "teacher", "miou": 0.6}]) is None


def test_parameter_counts_are_the_networks() -> None:
    from segdemo.models.mobilenet_v2 import lraspp_mobilenet_v2, lraspp_mobilenet_v2_slim

    teacher, student = kd.parameter_counts()
    assert teacher == sum(p.numel() for p in lraspp_mobilenet_v2().parameters())
    assert student == sum(p.numel() for p in lraspp_mobilenet_v2_slim().parameters())


def test_teacher_on_a_val_frame_and_its_mask_score(data_dir: Path) -> None:
    frame = kd.val_frame(0)
    assert frame.rgb.shape == (270, 360, 3) and frame.labels.shape == (270, 360)
    z = kd.teacher_logits(0)
    assert z.shape == (11, 270, 360)
    # the same numbers as the registry model run directly
    from segdemo.inference.pipeline import normalize
    from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD
    from segdemo.models.weights import load_model

    ref_model = load_model(kd.TEACHER, allow_random=False)
    x = normalize(torch.from_numpy(frame.rgb).permute(2, 0, 1)[None], IMAGENET_MEAN, IMAGENET_STD)
    with torch.no_grad():
        ref = ref_model(x)[0].numpy()
    assert np.allclose(z, ref, atol=1e-4)
    # per-frame mIoU against a hand computation from the confusion matrix
    pred = z.argmax(0)
    valid = frame.labels != 11
    inter = np.array([((pred == c) & (frame.labels == c) & valid).sum() for c in range(11)])
    union = np.array([(((pred == c) | (frame.labels == c)) & valid).sum() for c in range(11)])
    assert kd.mask_iou(pred, frame.labels) == pytest.approx(float(np.mean(inter[union > 0] / union[union > 0])),
                                                            abs=1e-6)
    assert kd.mask_iou(frame.labels.copy(), frame.labels) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        kd.val_frame(101)
