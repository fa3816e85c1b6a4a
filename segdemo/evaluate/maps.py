"""Pictures of an evaluation: label maps with ignored pixels hatched, error maps.

All functions return HxWx3 uint8 RGB arrays computed from the same arrays the
scores come from, so what the page shows is what was counted.
"""

from __future__ import annotations

import numpy as np

from segdemo.render import overlay
from segdemo.data.labels import LabelSet

# Okabe-Ito-like colours that stay distinct for colour-blind viewers.
TP_COLOR = (0, 158, 115)     # bluish green: right
FP_COLOR = (230, 159, 0)     # orange: predicted here, truth says otherwise
FN_COLOR = (86, 180, 233)    # sky blue: truth here, prediction missed it
WRONG_COLOR = (213, 94, 0)   # vermillion: wrong (all-class view)
OTHER_COLOR = (96, 96, 96)   # predictions mapped to no truth class
HATCH_DARK = (40, 40, 40)
HATCH_LIGHT = (235, 235, 235)


def hatch(rgb: np.ndarray, mask: np.ndarray, period: int = 8) -> np.ndarray:
    """Paint diagonal stripes over ``mask`` (the ignored pixels): clearly "not counted"."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    stripe = ((yy + xx) % period) < (period // 2)
    out[mask & stripe] = HATCH_DARK
    out[mask & ~stripe] = HATCH_LIGHT
    return out


def colorize_labels(
    labels: np.ndarray, label_set: LabelSet, valid: np.ndarray | None = None, other_id: int | None = None
) -> np.ndarray:
    """Class colours of ``label_set``; ``other_id`` pixels grey; invalid pixels hatched."""
    labels = np.asarray(labels)
    rgb = overlay.colorize(np.clip(labels, 0, 255), label_set)
    if other_id is not None:
        rgb[labels == other_id] = OTHER_COLOR
    if valid is not None:
        rgb = hatch(rgb, ~valid)
    return rgb


def error_map(
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray,
    valid: np.ndarray,
    class_id: int | None = None,
    alpha: float = 0.6,
) -> np.ndarray:
    """Errors over the image; ignored pixels hatched.

    One class (``class_id``): TP, FP and FN pixels of that class in three colours,
    everything else the dimmed image. All classes (``None``): right pixels
    green, wrong pixels vermillion (each wrong pixel is an FN of its true class
    and an FP of its predicted class).
    """
    base = np.asarray(image, dtype=np.float32)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    out = base * 0.45  # dimmed image under the colours
    colour = np.zeros_like(base)
    painted = np.zeros(valid.shape, dtype=bool)
    if class_id is None:
        right = valid & (pred == truth)
        wrong = valid & (pred != truth)
        for m, c in ((right, TP_COLOR), (wrong, WRONG_COLOR)):
            colour[m] = c
            painted |= m
    else:
        is_pred = pred == class_id
        is_true = truth == class_id
        for m, c in ((valid & is_pred & is_true, TP_COLOR), (valid & is_pred & ~is_true, FP_COLOR),
                     (valid & ~is_pred & is_true, FN_COLOR)):
            colour[m] = c
            painted |= m
    out[painted] = (1 - alpha) * base[painted] + alpha * colour[painted]
    return hatch(np.clip(out, 0, 255).astype(np.uint8), ~valid)


def error_counts(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray, class_id: int) -> dict[str, int]:
    """TP, FP, FN pixel counts of one class read off the error map's masks."""
    is_pred = pred == class_id
    is_true = truth == class_id
    return {"TP": int((valid & is_pred & is_true).sum()), "FP": int((valid & is_pred & ~is_true).sum()),
            "FN": int((valid & ~is_pred & is_true).sum())}
