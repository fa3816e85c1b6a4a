"""Live training for the transfer-learning lab: a background worker, one run at a time.

A Streamlit script run must stay short, so a run started from the page goes to
:class:`TrainingWorker`, a single thread per server process that trains the
runs in its queue one after the other (a 2-core laptop cannot train two at
once usefully). The page polls :meth:`TrainingWorker.status` for progress,
curves and its place in the queue, and can stop its run at any step.

The training itself is segdemo's one loop (:func:`segdemo.training.loop.train_epoch`)
with the same recipe pieces as ``python -m segdemo train`` (strategies, class
weights, augmentations, schedule, quick val mIoU on the fixed val subset).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from segdemo.data import datasets
from segdemo.data.labels import CAMVID
from segdemo.training.augment import BASIC

LIVE_ARCHITECTURE = "lraspp_mobilenet_v2"  # a small head: trains in seconds per epoch on a CPU
TRAIN_SIZES = (10, 50, 367)
MAX_QUEUE = 4  # runs waiting behind the current one; more are refused with a message
MAX_RUNS_KEPT = 16  # finished runs whose curves and weights stay available


class QueueFullError(RuntimeError):
    """The worker's queue is full; the page says so and asks to try again later."""


@dataclass(frozen=True)
class LiveRunConfig:
    """What the student chose for one run."""

    strategy: str = "frozen"
    train_size: int = 50
    lr: float = 5e-3
    epochs: int = 3
    augment: frozenset[str] = BASIC
    batch_size: int = 8
    seed: int = 0
    architecture: str = LIVE_ARCHITECTURE
    # distillation lab: a shipped teacher (None: plain CE), its temperature and the loss mix
    teacher: str | None = None
    kd_temperature: float = 4.0
    kd_mix: float = 0.5


@dataclass
class LiveRun:
    """A run's state as the page sees it (a snapshot is copied out under the worker's lock)."""

    run_id: int
    owner: str
    config: LiveRunConfig
    status: str = "queued"  # queued | running | done | stopped | error
    phase: str = ""  # while running: loading | training | validating
    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    started: float | None = None
    finished: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0
    error: str = ""  # English, for logs and tests
    exception: BaseException | None = None  # what the page explains in the user's language
    weights_path: Path | None = None
    stop_requested: bool = False

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def fraction(self) -> float:
        total = self.steps_per_epoch * self.config.epochs
        return 0.0 if total == 0 else min(1.0, (self.epoch * self.steps_per_epoch + self.step) / total)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left, extrapolated from the steps done so far (None before the first step)."""
        frac = self.fraction
        if self.status != "running" or frac <= 0:
            return None
        return self.elapsed / frac - self.elapsed


def trainable_parameter_counts(strategy: str, architecture: str = LIVE_ARCHITECTURE) -> tuple[int, int]:
    """(trainable, total) parameters of ``architecture`` under ``strategy`` (no weights loaded)."""
    from segdemo.training.recipes import RECIPES, apply_strategy, build

    model = build(RECIPES[architecture])
    apply_strategy(model, strategy, None, 1.0)
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


_data_lock = threading.Lock()
_data: dict[str, Any] = {}


def camvid_in_memory() -> dict[str, Any]:
    """CamVid train at the training store scale (tensors) and the quick-val subset, loaded once."""
    from segdemo.training.recipes import CAMVID_SIZE, CAMVID_VAL_SUBSET, TRAIN_STORE_SCALE

    with _data_lock:
        if not _data:
            store_size = (round(480 * TRAIN_STORE_SCALE), round(360 * TRAIN_STORE_SCALE))
            imgs, lbls, _ = datasets.load_camvid("train", size=store_size)
            small, _, _ = datasets.load_camvid("val", size=CAMVID_SIZE, indices=CAMVID_VAL_SUBSET)
            _, val_lbls, _ = datasets.load_camvid("val", size=None, indices=CAMVID_VAL_SUBSET)
            _data.update(train_x=torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(),
                         train_y=torch.from_numpy(lbls), train_labels=lbls, val_small=small, val_labels=val_lbls)
        return _data


def preload_camvid() -> None:
    """Start loading CamVid on a background thread (the lab calls it when the page opens),
    so a student's first run does not wait for the data; a missing data set is ignored here."""

    def load() -> None:
        try:
            camvid_in_memory()
        except datasets.DatasetMissingError:
            pass

    if not _data:
        threading.Thread(target=load, name="segdemo-camvid-preload", daemon=True).start()


def train_live_run(run: LiveRun, report: Any, should_stop: Any, out_dir: Path) -> None:
    """Train ``run`` (called on the worker thread); ``report(**fields)`` updates its state."""
    from segdemo.evaluate.scoring import score_predictions
    from segdemo.training.cards import predict_camvid
    from segdemo.training.losses import SegmentationLoss
    from segdemo.training.loop import camvid_batch, save_weights, seed_everything, train_epoch
    from segdemo.training.recipes import RECIPES, apply_strategy, build, camvid_train_subset, class_weights, lr_at

    cfg = run.config
    report(phase="loading")
    data = camvid_in_memory()
    subset = camvid_train_subset(cfg.train_size, len(data["train_x"]), cfg.seed)
    train_x, train_y = data["train_x"][subset], data["train_y"][subset]
    seed_everything(cfg.seed)
    model = build(RECIPES[cfg.architecture])
    groups = apply_strategy(model, cfg.strategy, None, cfg.lr)
    report(trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
           total_params=sum(p.numel() for p in model.parameters()))
    weights = class_weights(data["train_labels"][subset], CAMVID.num_classes, CAMVID.ignore_index)
    criterion = SegmentationLoss(weight=weights, ignore_index=CAMVID.ignore_index)  # soft targets with MixUp
    loss_fn = None
    if cfg.teacher:
        from segdemo.training.distill import DistillationLoss, load_teacher

        loss_fn = DistillationLoss(criterion, load_teacher(cfg.teacher), cfg.kd_temperature, cfg.kd_mix,
                                   CAMVID.ignore_index, cfg.teacher)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-4)
    steps = max(len(train_x) // cfg.batch_size, 1)
    total = steps * cfg.epochs
    warmup = min(steps, total // 10)
    device = torch.device("cpu")
    report(steps_per_epoch=steps, phase="training")
    losses: list[float] = []
    for epoch in range(cfg.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(len(train_x), generator=gen)

        def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            return camvid_batch(train_x, train_y, idx, gen, cfg.augment)

        def on_step(step: int, mean_loss: float, epoch: int = epoch) -> None:
            losses.append(mean_loss)
            report(epoch=epoch, step=step + 1, step_losses=list(losses),
                   phase="validating" if step + 1 == steps else "training")

        mean = train_epoch(model, optimizer, criterion, next_batch, steps, device, cfg.strategy,
                           lambda s, e=epoch: lr_at(e * steps + s, total, cfg.lr, warmup), on_step, should_stop,
                           loss_fn)
        if mean is None:
            report(status="stopped")
            break
        preds = predict_camvid(model, data["val_small"], data["val_labels"].shape[1:], device)
        val = score_predictions(preds, list(data["val_labels"]), CAMVID, with_boundary=False)
        report(epoch=epoch + 1, step=0, phase="training", history=run.history + [
            {"epoch": epoch + 1, "loss": round(mean, 4), "val_miou": round(val.miou, 4),
             "seconds": round(run.elapsed, 1), **(loss_fn.epoch_summary() if loss_fn else {})}])
    path = out_dir / f"live_run_{run.run_id}.safetensors"
    save_weights(model, path, half=False)
    report(weights_path=path)


class TrainingWorker:
    """One background thread per server that trains queued runs one at a time."""

    def __init__(self, out_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[int] = deque()
        self._runs: dict[int, LiveRun] = {}
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self.out_dir = out_dir or Path(tempfile.mkdtemp(prefix="segdemo-live-"))

    def submit(self, config: LiveRunConfig, owner: str) -> int:
        """Queue a run for ``owner`` (a session id); raises :class:`QueueFullError` when full."""
        with self._lock:
            if len(self._queue) >= MAX_QUEUE:
                raise QueueFullError(f"{len(self._queue)} runs are waiting")
            run_id = next(self._ids)
            self._runs[run_id] = LiveRun(run_id, owner, config)
            self._queue.append(run_id)
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="segdemo-training", daemon=True)
                self._thread.start()
            self._wake.notify()
            return run_id

    def stop(self, run_id: int) -> None:
        """Ask a run to stop at its next step (a queued run is dropped at once)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return
            run.stop_requested = True
            if run.status == "queued":
                self._queue.remove(run_id)
                run.status = "stopped"

    def status(self, run_id: int) -> LiveRun | None:
        """A copy of the run's state (None when unknown or forgotten)."""
        with self._lock:
            run = self._runs.get(run_id)
            return None if run is None else replace(run, history=list(run.history),
                                                    step_losses=list(run.step_losses))

    def position(self, run_id: int) -> int:
        """How many runs are ahead of ``run_id`` (the running one included); 0 when it runs."""
        with self._lock:
            if run_id not in self._queue:
                return 0
            running = any(r.status == "running" for r in self._runs.values())
            return list(self._queue).index(run_id) + int(running)

    def wait(self, run_id: int, timeout: float) -> LiveRun | None:
        """Block until ``run_id`` has finished or ``timeout`` seconds passed (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.status(run_id)
            if run is None or run.status in ("done", "stopped", "error"):
                return run
            time.sleep(0.1)
        return self.status(run_id)

    def _forget_old(self) -> None:
        finished = [r for r in self._runs.values() if r.status in ("done", "stopped", "error")]
        for run in sorted(finished, key=lambda r: r.run_id)[: max(0, len(finished) - MAX_RUNS_KEPT)]:
            if run.weights_path is not None:
                run.weights_path.unlink(missing_ok=True)
            del self._runs[run.run_id]

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    if not self._wake.wait(timeout=60):
                        self._thread = None
                        return
                run = self._runs[self._queue.popleft()]
                run.status, run.started = "running", time.monotonic()

            def report(**fields: Any) -> None:
                with self._lock:
                    for k, v in fields.items():
                        setattr(run, k, v)

            try:
                train_live_run(run, report, lambda: run.stop_requested, self.out_dir)
                with self._lock:
                    if run.status == "running":
                        run.status = "done"
            except Exception as exc:  # shown in the page as a message, never a traceback
                with self._lock:
                    run.status, run.error, run.exception = "error", f"{type(exc).__name__}: {exc}", exc
            finally:
                with self._lock:
                    run.finished = time.monotonic()


_worker: TrainingWorker | None = None
_worker_lock = threading.Lock()


def worker() -> TrainingWorker:
    """The server's one training worker."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = TrainingWorker()
        return _worker


def register_live_model(run: LiveRun, label: str) -> Any:
    """Register a finished run's weights as a user model entry (source ``user``) named after the run.

    The page keeps the entry's name in its session, so only that session lists it.
    """
    from segdemo.models import registry
    from segdemo.models.builders import BUILDERS
    from segdemo.training.recipes import CAMVID_SIZE, RECIPES

    if run.weights_path is None or not run.weights_path.is_file():
        raise ValueError("this run has no weights (stopped before its first epoch?)")
    recipe = RECIPES[run.config.architecture]
    kwargs = dict(recipe.builder_kwargs)
    builder = BUILDERS[recipe.builder]
    last = run.history[-1] if run.history else {}
    entry = registry.ModelEntry(
        name=f"user-live-{run.owner[:8]}-{run.run_id}",
        architecture=recipe.architecture,
        backbone=label,
        label_set_key="camvid",
        build=lambda: builder(**kwargs),
        weights=registry.WeightsSpec(filename=run.weights_path.name, shipped_path=run.weights_path,
                                     size_bytes=run.weights_path.stat().st_size),
        preprocess=registry.Preprocess(resize_size=CAMVID_SIZE[1]),
        metrics={"miou": float(last["val_miou"])} if "val_miou" in last else {},
        metrics_source="CamVid val subset (11 images), after the last epoch",
        num_params=run.total_params,
        source="user",
        output_stride=recipe.output_stride,
        card={"owner": run.owner, "live_run": run.run_id, "strategy": run.config.strategy,
              "train_size": run.config.train_size},
    )
    registry.register(entry)
    return entry


def recorded_curves(names: list[str]) -> dict[str, list[dict[str, float]]]:
    """Per shipped model, the per-epoch history of its card (loss and quick val mIoU)."""
    from segdemo.models import registry

    out = {}
    for name in names:
        try:
            entry = registry.get(name)
        except KeyError:
            continue
        hist = entry.card.get("history") or []
        out[name] = [{"epoch": h["epoch"], "loss": h.get("loss"), "val_miou": h.get("val_miou_quick"),
                      "seconds": h.get("seconds")} for h in hist]
    return out

