"""Logic of the distillation page: teacher vs student on CamVid, soft labels, the live runs.

* The teacher is segdemo's best shipped CamVid model (:data:`TEACHER`), the
  student a truncated-MobileNetV2 LR-ASPP (:data:`STUDENT_ARCHITECTURE`); the
  shipped distilled student and its control (same recipe, no teacher) are
  compared from their model cards (:func:`shipped_table`).
* :func:`frame_logits` runs a model on a CamVid val frame at the teacher's
  native input (360x270); :func:`soft_labels_at` turns the teacher's logits at
  one pixel into ``softmax(z / T)`` for several temperatures
  (:func:`segdemo.training.distill.soft_labels`, the function the loss uses).
* :func:`live_configs` is the pair of live runs the page queues: the student
  with the teacher, and the same run without it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segdemo.data import datasets
from segdemo.data.labels import CAMVID
from segdemo.training.distill import soft_labels

TEACHER = "lraspp_mobilenet_v2_camvid"
STUDENT = "lraspp_mobilenet_v2_slim_kd_camvid"
CONTROL = "lraspp_mobilenet_v2_slim_camvid"
STUDENT_ARCHITECTURE = "lraspp_mobilenet_v2_slim"
FRAME_SIZE = (360, 270)  # (width, height): the teacher's native input (its card's preprocess)
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
VAL_FRAMES = 101
_lock = threading.Lock()  # models shared by every session: one forward at a time


def live_configs(temperature: float, mix: float, epochs: int, train_size: int, with_control: bool,
                 seed: int = 0) -> list[Any]:
    """The live runs to queue: the distilled student, then (optionally) its control without the teacher.

    Both use the same student, data, augmentation, schedule and seed; only the loss differs.
    """
    from segdemo.training.live import LiveRunConfig

    student = LiveRunConfig(strategy="finetune", train_size=train_size, lr=1e-3, epochs=epochs, seed=seed,
                            architecture=STUDENT_ARCHITECTURE, teacher=TEACHER, kd_temperature=float(temperature),
                            kd_mix=float(mix))
    return [student] + ([replace(student, teacher=None)] if with_control else [])


def shipped_table() -> list[dict[str, Any]]:
    """Teacher, distilled student and control as their cards describe them (missing cards left out)."""
    from segdemo.models import registry

    rows = []
    for role, name in (("teacher", TEACHER), ("student", STUDENT), ("control", CONTROL)):
        try:
            card = registry.get(name).card
        except KeyError:
            continue
        kd = card.get("distillation") or {}
        rows.append({"role": role, "name": name, "params": int(card["num_params"]),
                     "cpu_ms": float(card["inference_ms_cpu"]), "input": card["inference_input"],
                     "miou": float(card["metrics"]["miou"]), "pixel_acc": float(card["metrics"]["pixel_acc"]),
                     "teacher": kd.get("teacher"), "temperature": kd.get("temperature"), "mix": kd.get("mix"),
                     "epochs": int(card["epochs"]), "seconds": float(card["training_seconds"]),
                     "history": card.get("history", []), "vs_teacher": kd.get("vs_teacher")})
    return rows


@dataclass(frozen=True)
class ValFrame:
    """One CamVid val frame: the network input and the ground truth."""

    index: int
    name: str
    rgb: np.ndarray  # FRAME_SIZE, uint8 (what the models see)
    labels: np.ndarray  # the same size, nearest-neighbour (11 = void)


@lru_cache(maxsize=8)
def val_frame(index: int) -> ValFrame:
    """CamVid val image ``index`` (name order) at :data:`FRAME_SIZE`; raises DatasetMissingError."""
    if not 0 <= index < VAL_FRAMES:
        raise ValueError(f"val frames are 0..{VAL_FRAMES - 1}")
    imgs, lbls, names = datasets.load_camvid("val", size=FRAME_SIZE, indices=[index])
    return ValFrame(index, names[0], imgs[0], lbls[0])


@lru_cache(maxsize=1)
def teacher_model() -> nn.Module:
    """The shipped teacher, frozen (see :func:`segdemo.training.distill.load_teacher`)."""
    from segdemo.training.distill import load_teacher

    return load_teacher(TEACHER)


@lru_cache(maxsize=4)
def student_model(name_or_path: str) -> nn.Module:
    """A shipped student (registry name) or a live run's weights (a ``.safetensors`` path), eval mode."""
    from segdemo.training.loop import load_weights
    from segdemo.training.recipes import RECIPES, build

    if name_or_path.endswith(".safetensors"):
        return load_weights(build(RECIPES[STUDENT_ARCHITECTURE]), Path(name_or_path)).eval()
    from segdemo.models.weights import load_model

    with torch.random.fork_rng(devices=[]):
        return load_model(name_or_path, allow_random=False)


@torch.inference_mode()
def frame_logits(model: nn.Module, frame: ValFrame) -> np.ndarray:
    """The model's logits on the frame, C x H x W float32 (ImageNet normalisation, as in training)."""
    from segdemo.inference.pipeline import normalize
    from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(frame.rgb).permute(2, 0, 1)[None]
    with _lock:
        out = model(normalize(x, IMAGENET_MEAN, IMAGENET_STD))
    return out[0].float().numpy()


def teacher_logits(index: int) -> np.ndarray:
    """The teacher's logits on val frame ``index`` (cached per frame)."""
    return _teacher_logits(int(index))


@lru_cache(maxsize=8)
def _teacher_logits(index: int) -> np.ndarray:
    return frame_logits(teacher_model(), val_frame(index))


def soft_labels_at(logits: np.ndarray, y: int, x: int,
                   temperatures: tuple[float, ...] = TEMPERATURES) -> np.ndarray:
    """``softmax(z / T)`` of the logits ``z`` at pixel (y, x): one row per temperature, columns = classes."""
    z = torch.from_numpy(np.ascontiguousarray(logits[:, y, x]))
    return np.stack([soft_labels(z, t).numpy() for t in temperatures])


def mask_iou(pred: np.ndarray, labels: np.ndarray) -> float:
    """mIoU of one prediction against the frame's labels (void ignored; classes absent from both skipped)."""
    from segdemo.evaluate.scoring import score_predictions

    return float(score_predictions([pred.astype(np.uint8)], [labels], CAMVID, with_boundary=False).miou)


def colour_mask(labels: np.ndarray) -> np.ndarray:
    """Labels in CamVid's palette (void in its own colour)."""
    from segdemo.render.overlay import colorize

    return colorize(labels.astype(np.uint8), CAMVID)


def mark_pixel(rgb: np.ndarray, y: int, x: int, radius: int = 6) -> np.ndarray:
    """A copy of ``rgb`` with a white-and-black cross at (y, x)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    for d, colour in ((1, (0, 0, 0)), (0, (255, 255, 255))):
        out[max(0, y - d):min(h, y + d + 1), max(0, x - radius):min(w, x + radius + 1)] = colour
        out[max(0, y - radius):min(h, y + radius + 1), max(0, x - d):min(w, x + d + 1)] = colour
    return out


def soft_label_figure(probs: np.ndarray, temperatures: tuple[float, ...], title: str,
                      class_names: list[str]) -> object:
    """Grouped bars: the teacher's probability per class, one bar group per temperature."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for t, row in zip(temperatures, probs):
        fig.add_trace(go.Bar(x=class_names, y=row.tolist(), name=f"T = {t:g}"))
    fig.update_layout(title=title, barmode="group", height=300, margin=dict(l=40, r=10, t=40, b=40),
                      yaxis=dict(title="p", range=[0, 1]),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0))
    return fig


def run_series(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run's history with ``ce`` (the ground-truth term) filled in for plain runs (there loss = CE)."""
    return [{**h, "ce": h.get("ce", h.get("loss"))} for h in history]


def distillation_gain(rows: list[dict[str, Any]]) -> float | None:
    """Val mIoU of the distilled student minus its control's (None unless both cards are there)."""
    by_role = {r["role"]: r for r in rows}
    if "student" not in by_role or "control" not in by_role:
        return None
    return by_role["student"]["miou"] - by_role["control"]["miou"]


@dataclass(frozen=True)
class FrameMasks:
    """Ground truth, teacher and student on one val frame (coloured, the clicked pixel marked)."""

    truth: np.ndarray
    teacher: np.ndarray
    student: np.ndarray
    teacher_miou: float
    student_miou: float


def frame_masks(frame: ValFrame, teacher_z: np.ndarray, student: str, yx: tuple[int, int]) -> FrameMasks:
    """Argmax masks of the teacher (its logits ``teacher_z``) and of ``student`` (see :func:`student_model`),
    each with its mIoU on this frame."""
    teacher_pred = teacher_z.argmax(0)
    student_pred = frame_logits(student_model(student), frame).argmax(0)
    y, x = yx
    return FrameMasks(mark_pixel(colour_mask(frame.labels), y, x), mark_pixel(colour_mask(teacher_pred), y, x),
                      mark_pixel(colour_mask(student_pred), y, x), mask_iou(teacher_pred, frame.labels),
                      mask_iou(student_pred, frame.labels))


@lru_cache(maxsize=1)
def parameter_counts() -> tuple[int, int]:
    """(teacher, student) parameters of the two architectures, counted on freshly built networks."""
    from segdemo.models import registry
    from segdemo.training.recipes import RECIPES, build

    teacher = registry.get(TEACHER).build()
    student = build(RECIPES[STUDENT_ARCHITECTURE])
    return (sum(p.numel() for p in teacher.parameters()), sum(p.numel() for p in student.parameters()))
