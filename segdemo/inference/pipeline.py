"""Running a segmentation model on one image: preprocess, forward, postprocess.

Preprocessing follows the model's own recipe (torchvision: shorter side resized
to 520 with antialiasing, ImageNet normalisation). The logits are upsampled
bilinearly to the original image size, where the label map, the confidence
(max probability) and the entropy are computed. The network-resolution logits
are kept so any pixel's class probabilities can be looked up later without
holding a full-size C x H x W array.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from segdemo.models.registry import ModelEntry

_forward_lock = threading.Lock()
_forward_passes = 0

# Upsampled logits larger than this many elements are processed in row bands.
_MAX_FULL_RES_ELEMENTS = 1 << 26
# The largest network input, in pixels. "Original size" on a 12-megapixel photo, or
# a 520-pixel shorter side on a long panorama, would otherwise need tens of GB;
# such inputs are scaled down (keeping the aspect ratio) to this many pixels.
MAX_NETWORK_PIXELS = 2048 * 2048


def forward_pass_count() -> int:
    """How many model forward passes this process has run (tests use it)."""
    return _forward_passes


@dataclass
class Prediction:
    """The result of one model run on one image.

    Only the label map is computed eagerly; confidence and entropy maps are
    derived from the kept logits the first time a view asks for them.
    """

    labels: np.ndarray  # (H, W) uint8 class index at the original size
    logits: torch.Tensor  # (C, h, w) float32 on CPU, at the network's input size
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    device: str = "cpu"
    model_name: str = ""
    input_size: tuple[int, int] = (0, 0)  # (height, width) fed to the network, padding excluded
    input_capped: bool = False  # True when MAX_NETWORK_PIXELS made the input smaller than asked
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.labels.shape[0], self.labels.shape[1]

    @property
    def confidence(self) -> np.ndarray:
        """(H, W) float32: the maximum softmax probability at each pixel."""
        if "confidence" not in self._maps:
            self._maps["confidence"], self._maps["entropy"] = uncertainty_maps(self.logits, self.size)
        return self._maps["confidence"]

    @property
    def entropy(self) -> np.ndarray:
        """(H, W) float32: softmax entropy divided by log(C), so 0 = certain, 1 = uniform."""
        self.confidence  # noqa: B018 - computes both maps
        return self._maps["entropy"]

    def probabilities_at(self, x: int, y: int) -> torch.Tensor:
        """Class probabilities at original pixel (x, y), identical to upsampling first."""
        return pixel_probabilities(self.logits, self.size, x, y)

    def topk_at(self, x: int, y: int, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most likely classes at (x, y) with their probabilities."""
        probs = self.probabilities_at(x, y)
        values, indices = probs.topk(min(k, probs.numel()))
        return [(int(i), float(v)) for v, i in zip(values, indices)]


def source_index(dst: torch.Tensor, in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear source rows/cols for ``align_corners=False`` (PyTorch's convention).

    Returns the lower index, the upper index and the weight of the upper one.
    """
    scale = in_size / out_size
    src = ((dst.to(torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
    lower = src.floor().long().clamp(max=in_size - 1)
    upper = (lower + 1).clamp(max=in_size - 1)
    return lower, upper, (src - lower).to(torch.float32)


def pixel_probabilities(logits: torch.Tensor, size: tuple[int, int], x: int, y: int) -> torch.Tensor:
    """Softmax of the logits bilinearly interpolated at one output pixel."""
    c, h, w = logits.shape
    y0, y1, wy = source_index(torch.tensor([y]), h, size[0])
    x0, x1, wx = source_index(torch.tensor([x]), w, size[1])
    top = logits[:, y0, x0] * (1 - wx) + logits[:, y0, x1] * wx
    bottom = logits[:, y1, x0] * (1 - wx) + logits[:, y1, x1] * wx
    value = (top * (1 - wy) + bottom * wy).reshape(c)
    return value.float().softmax(0)


def upsample_rows(logits_wide: torch.Tensor, rows: torch.Tensor, in_h: int, out_h: int) -> torch.Tensor:
    """Interpolate output ``rows`` from logits already upsampled along the width."""
    y0, y1, wy = source_index(rows, in_h, out_h)
    wy = wy.to(logits_wide.dtype).to(logits_wide.device)[None, :, None]
    return logits_wide[:, y0] * (1 - wy) + logits_wide[:, y1] * wy


def as_batch(scores: torch.Tensor) -> torch.Tensor:
    """(C, H, W) scores as a batch of one, (1, C, H, W), in the same memory layout.

    ``scores[None]`` of channels-last scores has a batch stride PyTorch does not
    recognise as channels-last, and its interpolation then takes a path about
    5x slower on the CPU; this view keeps the layout explicit.
    """
    if scores.stride(0) == 1 and scores.shape[0] > 1:
        return scores.permute(1, 2, 0).contiguous()[None].permute(0, 3, 1, 2)
    return scores[None]


def map_upsampled(logits: torch.Tensor, size: tuple[int, int],
                  fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Apply ``fn`` to the (C, H, W) logits bilinearly upsampled to ``size``.

    Large outputs are processed in bands of rows (same values, bounded memory):
    bilinear interpolation is separable, so the width is interpolated once and
    each band of rows afterwards.
    """
    c, h, w = logits.shape
    out_h, out_w = size
    if (h, w) == (out_h, out_w):
        return fn(logits)
    if c * out_h * out_w <= _MAX_FULL_RES_ELEMENTS:
        return fn(F.interpolate(as_batch(logits), size=size, mode="bilinear", align_corners=False)[0])
    wide = F.interpolate(as_batch(logits), size=(h, out_w), mode="bilinear", align_corners=False)[0]
    band = max(1, _MAX_FULL_RES_ELEMENTS // (c * out_w))
    parts = [fn(upsample_rows(wide, torch.arange(y, min(out_h, y + band), device=logits.device), h, out_h))
             for y in range(0, out_h, band)]
    return tuple(torch.cat([p[i] for p in parts], 0) for i in range(len(parts[0])))


def _labels(up: torch.Tensor) -> tuple[torch.Tensor]:
    """Argmax over classes (the first maximum wins, as in ``torch.argmax``).

    For channels-first scores, a running maximum (a loop of elementwise ops over
    C classes) is about twice as fast on the CPU as torch's reduction over the
    strided class dimension.
    """
    if up.shape[0] > 255:  # labels are stored as uint8
        return (up.max(0).indices,)
    if up.stride(0) == 1 and up.shape[0] > 1:
        # Channels-last scores (segdemo runs models channels-last on the CPU): each
        # pixel's classes are adjacent in memory and argmax over them is fastest.
        return (up.permute(1, 2, 0).argmax(-1).to(torch.uint8),)
    best = up[0].clone()
    labels = torch.zeros(up.shape[1:], dtype=torch.uint8, device=up.device)
    for c in range(1, up.shape[0]):
        labels.masked_fill_(up[c] > best, c)
        torch.maximum(best, up[c], out=best)
    return (labels,)


def _uncertainty(up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp = up.float().log_softmax(0)
    p = logp.exp()
    entropy = -(p * logp).sum(0) / math.log(up.shape[0])
    return p.max(0).values, entropy


def upsampled_labels(logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Argmax class of the logits bilinearly upsampled to ``size`` (H, W) as uint8."""
    return map_upsampled(logits, size, _labels)[0].to(torch.uint8).cpu().numpy()


def uncertainty_maps(logits: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Max probability and normalised entropy of the upsampled logits, as float32 maps."""
    conf, entropy = map_upsampled(logits.float(), size, _uncertainty)
    return conf.cpu().numpy().astype(np.float32), entropy.cpu().numpy().astype(np.float32)


def network_input_size(size: tuple[int, int], resize_size: int | None,
                       max_pixels: float | None = None) -> tuple[int, int]:
    """(h, w) after resizing the shorter side to ``resize_size`` (None: unchanged).

    A result above ``max_pixels`` (default :data:`MAX_NETWORK_PIXELS`) is scaled
    down to it, keeping the aspect ratio.
    """
    max_pixels = MAX_NETWORK_PIXELS if max_pixels is None else max_pixels
    h, w = size
    if resize_size is not None:
        if h <= w:
            h, w = resize_size, max(1, int(resize_size * w / h))
        else:
            h, w = max(1, int(resize_size * h / w)), resize_size
    if h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
        h, w = max(1, int(h * scale)), max(1, int(w * scale))
    return h, w


def normalize(images_uint8: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """N x C x H x W uint8 (or float 0..255) -> float, scaled to [0, 1] then standardised per channel."""
    x = images_uint8.float() / 255.0
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def preprocess(rgb: np.ndarray, entry: ModelEntry, inference_size: int | None, device: str,
               dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, tuple[int, int]]:
    """RGB uint8 (H, W, 3) to the normalised network input [1, C, h, w] on ``device``.

    Returns the tensor and the unpadded (h, w), so the padding can be cropped off.
    """
    pre = entry.preprocess
    # MPS lacks antialiased resizing: prepare on the CPU there, on the target device elsewhere.
    work_device = "cpu" if device == "mps" else device
    if not rgb.flags.writeable:  # torch cannot wrap read-only arrays (e.g. np.asarray of a PIL image)
        rgb = rgb.copy()
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(work_device).permute(2, 0, 1)[None]
    h, w = network_input_size(rgb.shape[:2], inference_size)
    resize = (h, w) != tuple(rgb.shape[:2])
    if resize and h < rgb.shape[0] and x.device.type == "cpu":
        # Shrinking a photo: the uint8 antialiased kernel (like PIL's resize in the
        # reference recipe) is about 20x faster on the CPU than resizing floats.
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        resize = False
    x = x.float().div_(255)
    if pre.grayscale:
        # ITU-R 601 luma, as Pillow's convert("L") computes it
        x = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    if resize:
        # Antialiasing matters only when shrinking (as PIL's resize in the reference recipe).
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                          antialias=h < rgb.shape[0])
    mean = torch.tensor(pre.mean, device=work_device)[: x.shape[1], None, None]
    std = torch.tensor(pre.std, device=work_device)[: x.shape[1], None, None]
    x = (x - mean) / std
    m = pre.pad_multiple
    if m > 1 and (h % m or w % m):
        pad_h, pad_w = (-h) % m, (-w) % m
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
    return x.to(device=device, dtype=dtype), (h, w)


def _sync(device: str) -> None:
    # GPU work is asynchronous: wait for it so each stage's time is its own.
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def locked_forward(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model(x)`` behind the process-wide forward lock (one model object serves every session)."""
    def run(x: torch.Tensor) -> torch.Tensor:
        with _forward_lock:
            return model(x)
    return run


def predict(model: torch.nn.Module, entry: ModelEntry, rgb: np.ndarray,
            inference_size: int | None = None, device: str = "cpu", half: bool = False,
            run_forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Prediction:
    """Segment one RGB image with ``model`` (already on ``device``).

    ``inference_size`` is the shorter side fed to the network (None: the
    original size). Forward passes are serialised by a lock: one model object
    serves every browser session, and reruns run in new threads.
    ``run_forward`` replaces the direct call (the shared batching worker,
    :mod:`segdemo.inference.batching`, passes one); it may record extra timings
    in a ``timings`` attribute (dict of seconds) that is merged into the result's.
    """
    global _forward_passes
    dtype = torch.float16 if half else torch.float32
    with torch.inference_mode():
        t0 = time.perf_counter()
        x, (h, w) = preprocess(rgb, entry, inference_size, device, dtype)
        _sync(device)
        t1 = time.perf_counter()
        logits = (run_forward or locked_forward(model))(x)
        with _forward_lock:
            _forward_passes += 1  # images through a forward pass (a batch of 3 counts 3)
        _sync(device)
        t2 = time.perf_counter()
        logits = logits.float()
        if logits.shape[-2:] != x.shape[-2:]:  # networks with a coarse output (e.g. stride 8)
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        logits = logits[0, :, :h, :w]  # crop the padding
        labels = upsampled_labels(logits, rgb.shape[:2])
        logits_cpu = logits.cpu()
        t3 = time.perf_counter()
    timings = {"preprocess": t1 - t0, "forward": t2 - t1, "postprocess": t3 - t2}
    timings.update(getattr(run_forward, "timings", {}))  # "forward" then excludes the wait in the queue
    return Prediction(
        labels=labels, logits=logits_cpu, timings=timings,
        device=device, model_name=entry.name, input_size=(h, w),
        input_capped=(h, w) != network_input_size(rgb.shape[:2], inference_size, math.inf),
    )


def predict_with_cpu_fallback(
    model: torch.nn.Module, entry: ModelEntry, rgb: np.ndarray, inference_size: int | None,
    device: str, half: bool, cpu_model: Callable[[], torch.nn.Module],
    run_forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[Prediction, bool]:
    """Like :func:`predict`; on CUDA out-of-memory, free the cache and run on the CPU.

    ``cpu_model`` returns the same model on the CPU (only called when needed; the
    fallback runs it directly, not through ``run_forward``).
    Returns the prediction and whether it fell back.
    """
    try:
        return predict(model, entry, rgb, inference_size, device, half, run_forward), False
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return predict(cpu_model(), entry, rgb, inference_size, "cpu", False), True
