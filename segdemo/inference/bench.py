"""Benchmark: segdemo's whole predict path against the bare forward and torchvision's recipe.

``python -m segdemo bench [--models NAME ...] [--size 520] [--repeats N] [--device cpu|cuda]``

For each available model (weights on disk; with ``--allow-random`` also models
without weights, flagged as random) three things are timed in one run, on the
same model object and the same encoded test image:

* **bare**: ``model(x)`` on an already prepared input tensor;
* **whole** (segdemo): encoded bytes -> :func:`segdemo.data.images.decode_image` ->
  :func:`segdemo.inference.pipeline.predict` (preprocess, forward, upsample to the
  original size, labels) -> :func:`segdemo.render.overlay.overlay`;
* **reference** (torchvision's documented recipe): bytes -> PIL image -> the
  weights' ``transforms()`` -> model -> logits upsampled to the original size ->
  argmax -> :func:`torchvision.utils.draw_segmentation_masks`. For segdemo's own
  models the transforms are built from the model card's preprocessing.

The three measurements are interleaved in each repeat (the CPU may be shared
with other work, so drift hits all three alike); each figure is the median over
the repeats after warm-up runs, with ``torch.cuda.synchronize`` around every
timed stage on CUDA. The label agreement is the fraction of pixels where
segdemo's label map equals the reference's.

Goal (issue 2): whole <= 1.10 x bare, and whole < reference.
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from segdemo import config
from segdemo.inference import devices
from segdemo.models import registry
from segdemo.models import weights
from segdemo.data.images import decode_image
from segdemo.inference.pipeline import predict, preprocess
from segdemo.models.registry import ModelEntry
from segdemo.render.overlay import overlay

DEFAULT_IMAGE = config.SAMPLES_DIR / "astronaut.jpg"  # 512x512, a person (a VOC class)
DEFAULT_SIZE = 520
OPACITY = 0.5  # the app's default overlay opacity, used for both overlays
WHOLE_GOAL = 1.10  # whole path / bare forward


# ---------------------------------------------------------------- results


@dataclass
class BenchResult:
    """Median times (milliseconds) of one model's three paths, and their agreement."""

    model: str
    random_weights: bool
    device: str
    half: bool
    image: str
    image_size: tuple[int, int]  # (width, height) of the test image
    input_size: tuple[int, int]  # (height, width) of the network input
    repeats: int
    bare_ms: float
    whole_ms: float
    reference_ms: float
    overhead_ms: float  # whole path minus its own forward pass (median of per-run differences)
    reference_overhead_ms: float  # reference recipe minus its own forward pass
    whole_stages_ms: dict[str, float] = field(default_factory=dict)
    reference_stages_ms: dict[str, float] = field(default_factory=dict)
    agreement: float = float("nan")
    labels_segdemo: np.ndarray | None = field(default=None, repr=False)
    labels_reference: np.ndarray | None = field(default=None, repr=False)

    @property
    def whole_over_bare(self) -> float:
        return self.whole_ms / self.bare_ms

    @property
    def whole_over_reference(self) -> float:
        return self.whole_ms / self.reference_ms

    @property
    def normalised_whole_over_bare(self) -> float:
        """(bare + segdemo's overhead) / bare: the ratio with the forward's run-to-run noise removed.

        All three paths run the same forward pass on the same model; on a busy
        machine its time varies more between runs than the overheads do, so the
        ratios are also given with one forward time (the bare one) for all paths.
        """
        return (self.bare_ms + self.overhead_ms) / self.bare_ms

    @property
    def normalised_whole_over_reference(self) -> float:
        """(bare + segdemo's overhead) / (bare + reference overhead)."""
        return (self.bare_ms + self.overhead_ms) / (self.bare_ms + self.reference_overhead_ms)

    @property
    def meets_goal(self) -> bool:
        """Whole path within 1.10x of the bare forward and faster than the reference (forward-normalised)."""
        return self.normalised_whole_over_bare <= WHOLE_GOAL and self.overhead_ms < self.reference_overhead_ms

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict (label maps left out)."""
        d = asdict(self)
        d.pop("labels_segdemo")
        d.pop("labels_reference")
        d.update(whole_over_bare=self.whole_over_bare, whole_over_reference=self.whole_over_reference,
                 normalised_whole_over_bare=self.normalised_whole_over_bare,
                 normalised_whole_over_reference=self.normalised_whole_over_reference, meets_goal=self.meets_goal)
        return d


def label_agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Fraction of pixels where two label maps of the same shape carry the same class."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty label maps")
    return float(np.count_nonzero(a == b)) / a.size


# ---------------------------------------------------------------- timing helpers


class _Clock:
    """Stage timer: ``lap(name)`` records the time since the previous lap (synchronising CUDA)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.laps: dict[str, float] = {}
        self._sync()
        self.start = self._last = time.perf_counter()

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elif self.device == "mps":
            torch.mps.synchronize()

    def lap(self, name: str) -> None:
        self._sync()
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + (now - self._last)
        self._last = now

    def split(self, stages: dict[str, float]) -> None:
        """Attribute the time since the last lap to ``stages`` measured inside it (seconds each)."""
        self._sync()
        self._last = time.perf_counter()
        for name, seconds in stages.items():
            self.laps[name] = self.laps.get(name, 0.0) + seconds

    @property
    def total(self) -> float:
        return self._last - self.start


def _median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000.0


# ---------------------------------------------------------------- the three paths


def reference_transforms(entry: ModelEntry, size: int | None) -> Callable[[Any], torch.Tensor]:
    """The preprocessing of torchvision's reference recipe for ``entry``.

    torchvision models: the official weights' ``transforms()`` (PIL resize of the
    shorter side, to-tensor, ImageNet normalisation); with another ``size`` it is
    passed as ``resize_size`` (as torchvision's docs do with ``resize_size=None``).
    segdemo's own models: the same preset class with the card's mean and std
    (and conversion to grayscale first when the card says so).
    """
    from torchvision.transforms._presets import SemanticSegmentation

    if entry.source == "torchvision":
        from torchvision.models import get_model_weights

        tv_weights = get_model_weights(entry.name).COCO_WITH_VOC_LABELS_V1
        return tv_weights.transforms() if size == DEFAULT_SIZE else tv_weights.transforms(resize_size=size)
    pre = entry.preprocess
    channels = 1 if pre.grayscale else 3
    preset = SemanticSegmentation(resize_size=size, mean=pre.mean[:channels], std=pre.std[:channels])
    if pre.grayscale:
        return lambda img: preset(img.convert("L"))
    return preset


def run_reference(model: torch.nn.Module, entry: ModelEntry, data: bytes, transforms: Callable[[Any], torch.Tensor],
                  device: str, dtype: torch.dtype, clock: _Clock) -> tuple[np.ndarray, torch.Tensor]:
    """torchvision's recipe from encoded bytes to the drawn overlay; returns (labels, overlay)."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor
    from torchvision.utils import draw_segmentation_masks

    pil = Image.open(io.BytesIO(data)).convert("RGB")
    image_uint8 = pil_to_tensor(pil).to(device)
    clock.lap("decode")
    x = transforms(pil).unsqueeze(0).to(device=device, dtype=dtype)
    m = entry.preprocess.pad_multiple
    h, w = x.shape[-2:]
    if m > 1 and (h % m or w % m):
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")
    clock.lap("transforms")
    logits = model(x)
    clock.lap("forward")
    logits = logits[..., :h, :w].float()
    logits = F.interpolate(logits, size=image_uint8.shape[-2:], mode="bilinear", align_corners=False)
    labels = logits[0].argmax(0)
    clock.lap("upsample+argmax")
    label_set = entry.label_set
    class_ids = torch.arange(label_set.num_classes, device=device)
    masks = labels[None] == class_ids[:, None, None]
    drawn = draw_segmentation_masks(image_uint8, masks, alpha=OPACITY, colors=[tuple(c) for c in label_set.colors])
    clock.lap("draw")
    return labels.to(torch.uint8).cpu().numpy(), drawn


def run_segdemo(model: torch.nn.Module, entry: ModelEntry, data: bytes, name: str, size: int | None,
                device: str, half: bool, clock: _Clock) -> tuple[np.ndarray, np.ndarray]:
    """segdemo's whole path from encoded bytes to the overlay; returns (labels, overlay)."""
    image = decode_image(data, name)
    clock.lap("decode")
    pred = predict(model, entry, image.rgb, size, device, half)
    clock.split(pred.timings)  # predict times its own stages (synchronised on CUDA)
    drawn = overlay(image.rgb, pred.labels, entry.label_set, OPACITY)
    clock.lap("overlay")
    return pred.labels, drawn


def bench_model(entry: ModelEntry, model: torch.nn.Module, data: bytes, image_name: str, size: int | None = DEFAULT_SIZE,
                device: str = "cpu", half: bool = False, repeats: int = 5, warmup: int = 2) -> BenchResult:
    """Time bare forward, segdemo's whole path and the reference recipe for one model."""
    dtype = torch.float16 if half else torch.float32
    rgb = decode_image(data, image_name).rgb
    transforms = reference_transforms(entry, size)
    with torch.inference_mode():
        x, _ = preprocess(rgb, entry, size, device, dtype)
    bare: list[float] = []
    whole: list[float] = []
    overhead: list[float] = []
    ref: list[float] = []
    ref_overhead: list[float] = []
    whole_stages: dict[str, list[float]] = {}
    ref_stages: dict[str, list[float]] = {}
    labels_seg = labels_ref = None
    for i in range(warmup + repeats):
        measured = i >= warmup
        with torch.inference_mode():
            clock = _Clock(device)
            model(x)
            clock.lap("forward")
            if measured:
                bare.append(clock.total)

        clock = _Clock(device)
        labels_seg, _ = run_segdemo(model, entry, data, image_name, size, device, half, clock)
        if measured:
            whole.append(clock.total)
            overhead.append(clock.total - clock.laps["forward"])
            for k, v in clock.laps.items():
                whole_stages.setdefault(k, []).append(v)

        with torch.inference_mode():
            clock = _Clock(device)
            labels_ref, _ = run_reference(model, entry, data, transforms, device, dtype, clock)
        if measured:
            ref.append(clock.total)
            ref_overhead.append(clock.total - clock.laps["forward"])
            for k, v in clock.laps.items():
                ref_stages.setdefault(k, []).append(v)
    assert labels_seg is not None and labels_ref is not None
    return BenchResult(
        model=entry.name,
        random_weights=bool(getattr(model, "random_weights", False)),
        device=device,
        half=half,
        image=image_name,
        image_size=(rgb.shape[1], rgb.shape[0]),
        input_size=(int(x.shape[-2]), int(x.shape[-1])),
        repeats=repeats,
        bare_ms=_median_ms(bare),
        whole_ms=_median_ms(whole),
        reference_ms=_median_ms(ref),
        overhead_ms=_median_ms(overhead),
        reference_overhead_ms=_median_ms(ref_overhead),
        whole_stages_ms={k: _median_ms(v) for k, v in whole_stages.items()},
        reference_stages_ms={k: _median_ms(v) for k, v in ref_stages.items()},
        agreement=label_agreement(labels_seg, labels_ref),
        labels_segdemo=labels_seg,
        labels_reference=labels_ref,
    )


def available_models(names: Sequence[str] | None, allow_random: bool) -> list[tuple[ModelEntry, bool]]:
    """(entry, has weights) for the requested models (default: all) that can run."""
    entries = [registry.get(n) for n in names] if names else registry.list_models()
    chosen = []
    for entry in entries:
        has_weights = weights.locate(entry) is not None
        if has_weights or allow_random:
            chosen.append((entry, has_weights))
    return chosen


def reencode_short_side(data: bytes, short_side: int) -> bytes:
    """The image resized (Pillow, bilinear) so its shorter side is ``short_side``, as JPEG quality 95."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    scale = short_side / min(w, h)
    img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def run_benchmark(model_names: Sequence[str] | None = None, size: int | None = DEFAULT_SIZE,
                  repeats: int = 5, warmup: int = 2, device: str | None = None, half: bool = False,
                  allow_random: bool | None = None, image_path: str | Path = DEFAULT_IMAGE,
                  log: Callable[[str], None] | None = None, short_side: int | None = None) -> list[BenchResult]:
    """Benchmark every available model (see the module docstring); returns one result per model.

    ``short_side`` re-encodes the test image with that shorter side first (e.g. 520:
    a photo that needs no resizing before the network).
    """
    device = device or devices.auto_device()
    if allow_random is None:
        allow_random = config.allow_random_weights()
    image_path = Path(image_path)
    data = image_path.read_bytes()
    if short_side:
        data = reencode_short_side(data, short_side)
    results = []
    for entry, _ in available_models(model_names, allow_random):
        if log:
            log(f"{entry.name}: loading on {device}…")
        model = weights.load_model(entry, device=device, half=half, allow_random=allow_random)
        if log:
            log(f"{entry.name}: {warmup} warm-up + {repeats} timed runs…")
        results.append(bench_model(entry, model, data, image_path.name, size, device, half, repeats, warmup))
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return results
