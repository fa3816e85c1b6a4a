"""Distillation: the loss against a hand computation, soft labels, mix = 0 is the plain run."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from torch import nn

from segdemo.data.labels import CAMVID
from segdemo.models.mobilenet_v2 import lraspp_mobilenet_v2, lraspp_mobilenet_v2_slim
from segdemo.training.distill import DistillationLoss, kd_loss, loss_from_args, soft_labels
from segdemo.training.loop import train_epoch
from segdemo.training.recipes import RECIPES, apply_strategy, build


def hand_kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))


def hand_softmax(z: list[float], t: float) -> list[float]:
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def test_kd_loss_equals_a_hand_computation_including_t_squared() -> None:
    # two pixels (1 x 3 classes x 1 x 2), worked out with math.exp / math.log
    teacher = torch.tensor([[[[2.0, 0.0]], [[1.0, 0.5]], [[-1.0, 3.0]]]])
    student = torch.tensor([[[[0.5, 1.0]], [[0.0, 0.0]], [[0.2, 1.5]]]])
    t = 2.0
    kl = [hand_kl(hand_softmax([float(v) for v in teacher[0, :, 0, j]], t),
                  hand_softmax([float(v) for v in student[0, :, 0, j]], t)) for j in range(2)]
    expected = t * t * (kl[0] + kl[1]) / 2
    assert kd_loss(student, teacher, t).item() == pytest.approx(expected, rel=1e-6)
    # only the valid pixel counts (void excluded from the mean)
    valid = torch.tensor([[[False, True]]])
    assert kd_loss(student, teacher, t, valid).item() == pytest.approx(t * t * kl[1], rel=1e-6)
    # T^2: the same KL at T=1 is not scaled
    kl1 = hand_kl(hand_softmax([2.0, 1.0, -1.0], 1.0), hand_softmax([0.5, 0.0, 0.2], 1.0))
    assert kd_loss(student[..., :1], teacher[..., :1], 1.0).item() == pytest.approx(kl1, rel=1e-6)


def test_kd_loss_matches_torch_kl_div_and_is_zero_for_equal_logits() -> None:
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 11, 5, 7, generator=g), torch.randn(2, 11, 5, 7, generator=g) * 3
    ref = nn.functional.kl_div(torch.log_softmax(s / 3, 1), torch.log_softmax(t / 3, 1), log_target=True,
                               reduction="sum") / (2 * 5 * 7) * 9
    assert kd_loss(s, t, 3.0).item() == pytest.approx(ref.item(), rel=1e-5)
    assert kd_loss(t, t, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, t, 3.0, torch.zeros(2, 5, 7, dtype=torch.bool)).item() == 0.0


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_soft_labels_sum_to_one_and_match_torch(temperature: float) -> None:
    z = torch.randn(2, 11, 4, 6, generator=torch.Generator().manual_seed(1)) * 5
    p = soft_labels(z, temperature)
    assert torch.allclose(p.sum(1), torch.ones(2, 4, 6), atol=1e-6)
    assert torch.allclose(p, torch.softmax(z / temperature, dim=1))
    vec = soft_labels(z[0, :, 0, 0], temperature)
    assert vec.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert vec.tolist() == pytest.approx(hand_softmax(z[0, :, 0, 0].tolist(), temperature), abs=1e-6)


def test_higher_temperature_is_softer() -> None:
    z = torch.tensor([4.0, 1.0, 0.0, -2.0])
    entropies = [float(-(p * p.log()).sum()) for p in (soft_labels(z, t) for t in (1.0, 2.0, 4.0, 8.0))]
    assert entropies == sorted(entropies)


def test_mixed_loss_is_the_weighted_sum_and_bad_settings_are_refused() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 8, 8, generator=g)
    y = torch.randint(0, 12, (1, 8, 8), generator=g)
    student = torch.randn(1, 11, 8, 8, generator=g)
    teacher_net = nn.Conv2d(3, 11, 1)
    ce = nn.CrossEntropyLoss(ignore_index=CAMVID.ignore_index)
    loss = DistillationLoss(ce, teacher_net, 3.0, 0.25, CAMVID.ignore_index)
    expected = 0.75 * ce(student, y) + 0.25 * kd_loss(student, teacher_net(x).detach(), 3.0, y != 11)
    assert loss(student, x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.epoch_summary()["ce"] == pytest.approx(round(ce(student, y).item(), 4))
    with pytest.raises(ValueError):
        DistillationLoss(ce, teacher_net, 0.0, 0.5)
    with pytest.raises(ValueError):
        DistillationLoss(ce, teacher_net, 2.0, 1.5)


def _run(teacher: nn.Module | None, mix: float, steps: int = 3) -> tuple[list[float], dict[str, torch.Tensor]]:
    """A few real optimizer steps of the student (ImageNet init) on fixed random batches."""
    torch.manual_seed(0)
    model = build(RECIPES["lraspp_mobilenet_v2_slim"])
    groups = apply_strategy(model, "finetune", None, 1e-3)
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    criterion = nn.CrossEntropyLoss(ignore_index=CAMVID.ignore_index)
    loss_fn = None if teacher is None else DistillationLoss(criterion, teacher, 4.0, mix, CAMVID.ignore_index)
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(2, 3, 64, 80, generator=g), torch.randint(0, 12, (2, 64, 80), generator=g))
               for _ in range(steps)]
    losses: list[float] = []
    train_epoch(model, optimizer, criterion, lambda s: batches[s], steps, torch.device("cpu"), "finetune",
                lambda s: 1e-3, on_step=lambda s, m: losses.append(m), loss_fn=loss_fn)
    return losses, {k: v.clone() for k, v in model.state_dict().items()}


def test_mix_zero_is_exactly_the_plain_run() -> None:
    torch.manual_seed(9)
    teacher = lraspp_mobilenet_v2().eval()  # any frozen network will do for the identity
    plain_losses, plain_state = _run(None, 0.0)
    kd0_losses, kd0_state = _run(teacher, 0.0)
    assert kd0_losses == plain_losses
    assert all(torch.equal(plain_state[k], kd0_state[k]) for k in plain_state)
    kd_losses, kd_state = _run(teacher, 0.5)  # and the teacher does change a run with mix > 0
    assert kd_losses[1:] != plain_losses[1:]
    assert not all(torch.equal(plain_state[k], kd_state[k]) for k in plain_state)


def test_loading_the_teacher_leaves_the_random_numbers_alone() -> None:
    args = argparse.Namespace(teacher="lraspp_mobilenet_v2_camvid", kd_temperature=4.0, kd_mix=0.5)
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    loss = loss_from_args(args, nn.CrossEntropyLoss(), 11, torch.device("cpu"))
    assert torch.equal(torch.rand(4), expected)
    assert loss is not None and not loss.teacher.training
    assert not any(p.requires_grad for p in loss.teacher.parameters())
    assert loss_from_args(argparse.Namespace(teacher=None), nn.CrossEntropyLoss(), 11, torch.device("cpu")) is None


def test_student_is_much_smaller_and_keeps_imagenet_weights() -> None:
    from safetensors.torch import load_file

    from segdemo.models.backbones import mobilenet_v2_weights_path

    student, teacher = lraspp_mobilenet_v2_slim(), lraspp_mobilenet_v2()
    n_s, n_t = (sum(p.numel() for p in m.parameters()) for m in (student, teacher))
    assert n_s < 0.35 * n_t
    assert len(student.backbone) == 14 and student.backbone[-1].out_channels == 96
    assert student(torch.zeros(1, 3, 64, 96)).shape == (1, 11, 64, 96)
    apply_strategy(student, "finetune", None, 1e-3)
    ref = load_file(str(mobilenet_v2_weights_path()))
    assert torch.equal(student.backbone[13].conv[0][0].weight, ref["features.13.conv.0.0.weight"].float())


def test_live_run_with_a_teacher_records_both_terms(data_dir) -> None:  # noqa: ANN001
    from segdemo.labs import distillation as lab
    from segdemo.training import live

    worker = live.TrainingWorker()
    student, control = lab.live_configs(4.0, 0.5, 1, 10, True)
    ids = [worker.submit(student, "owner-kd"), worker.submit(control, "owner-kd")]
    done = [worker.wait(i, 300) for i in ids]
    assert [r.status for r in done] == ["done", "done"], [r.error for r in done]
    kd_entry, plain_entry = done[0].history[-1], done[1].history[-1]
    assert {"ce", "kd", "loss", "val_miou"} <= set(kd_entry)
    assert "kd" not in plain_entry
    # loss = (1 - mix) * CE + mix * KD, as means over the same steps
    assert kd_entry["loss"] == pytest.approx(0.5 * kd_entry["ce"] + 0.5 * kd_entry["kd"], abs=2e-4)
    assert done[0].total_params == done[1].total_params == lab.parameter_counts()[1]


def test_speed_vs_teacher_counts_and_times_both() -> None:
    from segdemo.training.distill import speed_vs_teacher

    student, teacher = lraspp_mobilenet_v2_slim(), lraspp_mobilenet_v2()
    out = speed_vs_teacher(student, teacher, (1, 3, 64, 96), rounds=1)
    assert out["student_params"] == sum(p.numel() for p in student.parameters())
    assert out["teacher_params"] == sum(p.numel() for p in teacher.parameters())
    assert out["params_ratio"] == round(out["student_params"] / out["teacher_params"], 3)
    assert out["student_cpu_ms"] > 0 and out["teacher_cpu_ms"] > 0 and out["input"] == "1x3x64x96"


def test_soft_targets_one_hot_give_the_hard_label_loss() -> None:
    """MixUp's soft labels go through the same loss: one-hot soft targets (void = no mass) give
    exactly the loss of the hard labels they encode, distillation term included."""
    from segdemo.training.losses import SegmentationLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    hard = torch.randint(0, 3, (2, 4, 5))
    hard[0, 0, :2] = 7  # void
    soft = torch.zeros(2, 3, 4, 5)
    valid = hard != 7
    soft.permute(0, 2, 3, 1)[valid] = torch.nn.functional.one_hot(hard[valid], 3).float()
    teacher = nn.Conv2d(3, 3, 1)
    x = torch.randn(2, 3, 4, 5)
    loss = DistillationLoss(SegmentationLoss(ignore_index=7), teacher, 2.0, 0.5, 7)
    assert loss(logits, x, soft).item() == pytest.approx(loss(logits, x, hard).item(), rel=1e-6)
