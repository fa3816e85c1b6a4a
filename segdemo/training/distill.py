"""Knowledge distillation for segmentation (Hinton et al. 2015, applied per pixel).

A large *teacher* (segdemo's best shipped CamVid model) is frozen in eval mode
and run on the same augmented batch as the small *student*. At every pixel the
teacher's logits ``z`` become soft labels at temperature ``T``::

    p_T = softmax(z / T)            (sums to 1 over the classes)
    q_T = softmax(s / T)            (the student's, same T)
    KD  = T^2 * mean over pixels of KL(p_T || q_T) = T^2 * sum_c p_T,c (log p_T,c - log q_T,c)

The ``T^2`` keeps the soft term's gradients on the scale of the hard term's as
``T`` grows (the gradient of KL at temperature T scales as 1/T^2). The loss the
student minimises mixes it with the ground-truth cross-entropy ``CE`` (the
recipe's class-weighted CE)::

    loss = (1 - mix) * CE + mix * KD

Void pixels (label ``ignore_index``) are left out of both terms: CE ignores them
already, and KD is averaged over the non-void pixels only, so a crop with much
void (padding, unlabelled regions) does not dilute the teacher's signal and the
teacher is never imitated where the data set has no ground truth. With
``mix = 0`` the loss is exactly the plain CE run's (``1.0 * CE + 0.0 * KD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TEMPERATURE = 4.0
DEFAULT_MIX = 0.5


def soft_labels(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the class dimension (dim 1 of N x C x H x W, or the last of a vector)."""
    dim = 1 if logits.dim() == 4 else -1
    return torch.softmax(logits / temperature, dim=dim)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
            valid: torch.Tensor | None = None) -> torch.Tensor:
    """``T^2 *`` the mean over (``valid``) pixels of ``KL(softmax(t/T) || softmax(s/T))``.

    ``student_logits``, ``teacher_logits``: N x C x H x W; ``valid``: N x H x W bool
    (None: every pixel). Returns 0 (with a gradient) when no pixel is valid.
    """
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    per_pixel = (log_p.exp() * (log_p - log_q)).sum(dim=1)  # KL(p || q) at each pixel
    if valid is not None:
        per_pixel = per_pixel[valid]
    if per_pixel.numel() == 0:
        return student_logits.sum() * 0.0
    return per_pixel.mean() * temperature**2


@dataclass
class DistillationLoss:
    """``loss_fn(logits, x, y)`` for :func:`segdemo.training.loop.train_epoch`: the mixed loss above.

    ``teacher`` maps a normalised batch to logits at the batch's size (a frozen
    model in eval mode, see :func:`load_teacher`); ``criterion`` is the
    ground-truth loss. The running sums of both terms give per-epoch means
    for the curves (:meth:`epoch_summary`).
    """

    criterion: nn.Module
    teacher: nn.Module
    temperature: float = DEFAULT_TEMPERATURE
    mix: float = DEFAULT_MIX
    ignore_index: int = -100
    teacher_name: str = ""
    _sums: dict[str, float] = field(default_factory=lambda: {"ce": 0.0, "kd": 0.0, "n": 0})

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("the temperature must be positive")
        if not 0.0 <= self.mix <= 1.0:
            raise ValueError("the mix must be in [0, 1]")

    def __call__(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(x).float()
        ce = self.criterion(logits, y)
        # hard labels: void is ignore_index; MixUp's soft labels (N x C x H x W): void carries no mass
        valid = y.sum(1) > 0 if y.is_floating_point() else y != self.ignore_index
        kd = kd_loss(logits, teacher_logits, self.temperature, valid)
        self._sums["ce"] += float(ce.detach())
        self._sums["kd"] += float(kd.detach())
        self._sums["n"] += 1
        return (1.0 - self.mix) * ce + self.mix * kd

    def epoch_summary(self) -> dict[str, float]:
        """Mean CE and KD terms since the last call (for the history), then reset."""
        n = max(int(self._sums["n"]), 1)
        out = {"ce": round(self._sums["ce"] / n, 4), "kd": round(self._sums["kd"] / n, 4)}
        self._sums.update(ce=0.0, kd=0.0, n=0)
        return out

    def annotate_card(self, card: dict[str, Any], student: nn.Module | None = None,
                      shape: tuple[int, ...] | None = None) -> None:
        """Add the ``distillation`` section to a model card; the backbone label says "distilled"
        (the registry tells models apart by architecture + backbone).

        With ``student`` and an input ``shape``, the section also holds both models'
        parameters and CPU ms measured now, alternately, under the same load.
        """
        card["distillation"] = self.describe()
        if student is not None and shape is not None:
            card["distillation"]["vs_teacher"] = speed_vs_teacher(student, self.teacher, shape)
        card["backbone"] += f" · distilled (T={self.temperature:g}, mix {self.mix:g})"
        card["loss"] = f"(1 - {self.mix:g}) * [{card['loss']}] + {self.mix:g} * T^2 * KL to the teacher, T={self.temperature:g}"

    def describe(self) -> dict[str, Any]:
        """The model card's ``distillation`` section."""
        return {"teacher": self.teacher_name, "temperature": self.temperature, "mix": self.mix,
                "loss": "(1 - mix) * CE + mix * T^2 * mean KL(softmax(teacher/T) || softmax(student/T)) "
                        "over non-void pixels; teacher frozen (eval mode), run on the same augmented batch"}


def load_teacher(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """The shipped model ``name``, frozen in eval mode (no gradients).

    Loaded under :func:`torch.random.fork_rng`, so loading it does not change the
    student's random numbers (``load_model`` reseeds torch's generator).
    """
    from segdemo.models.weights import load_model

    with torch.random.fork_rng(devices=[]):
        model = load_model(name, device=str(device), allow_random=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def loss_from_args(args: Any, criterion: nn.Module, ignore_index: int,
                   device: torch.device) -> DistillationLoss | None:
    """The CLI's ``--teacher NAME --kd-temperature T --kd-mix a`` as a loss (None without ``--teacher``)."""
    name = getattr(args, "teacher", None)
    if not name:
        return None
    return DistillationLoss(criterion, load_teacher(name, device), float(args.kd_temperature), float(args.kd_mix),
                            ignore_index, name)


def speed_vs_teacher(student: nn.Module, teacher: nn.Module, shape: tuple[int, ...],
                     rounds: int = 5) -> dict[str, Any]:
    """Parameters and median CPU ms per forward pass of student and teacher, measured alternately
    (``rounds`` x :func:`segdemo.training.cards.inference_ms` each), so both see the same machine load."""
    from segdemo.training.cards import inference_ms

    cpu = torch.device("cpu")
    # the bare networks in the default memory layout, as the cards' inference_ms_cpu are measured
    student, teacher = getattr(student, "net", student), getattr(teacher, "net", teacher)
    student, teacher = student.cpu().eval(), teacher.cpu().eval()
    times: dict[str, list[float]] = {"student": [], "teacher": []}
    for _ in range(rounds):
        times["student"].append(inference_ms(student, shape, cpu))
        times["teacher"].append(inference_ms(teacher, shape, cpu))
    ms = {k: float(np.median(v)) for k, v in times.items()}
    n_s, n_t = (sum(p.numel() for p in m.parameters()) for m in (student, teacher))
    return {"input": "x".join(map(str, shape)), "student_params": n_s, "teacher_params": n_t,
            "student_cpu_ms": round(ms["student"], 1), "teacher_cpu_ms": round(ms["teacher"], 1),
            "params_ratio": round(n_s / n_t, 3), "speedup": round(ms["teacher"] / ms["student"], 2),
            "threads": torch.get_num_threads()}
