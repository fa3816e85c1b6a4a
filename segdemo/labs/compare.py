"""Logic of the Compare page: several models on one image, where they disagree, what each scores.

Plain NumPy (no Streamlit). The counting reuses segdemo's own paths: pairwise
agreement is the IoU of :mod:`segdemo.evaluate.metrics` with one model's mask
taken as the reference, scores against ground truth come from
:func:`segdemo.evaluate.scoring.evaluate_pair` (the Evaluate page's function),
error maps from :func:`segdemo.evaluate.maps.error_map`, boundary bands and the
zoom window from :mod:`segdemo.labs.fcn_skips` (the FCN page's).

Disagreement: at each pixel the *majority* class is the one most models
predict (a tie goes to the lowest class index); the map counts how many models
predict something else (0 = all agree, at most N - 1).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segdemo.data.labels import LabelSet
from segdemo.evaluate import metrics
from segdemo.evaluate.scoring import PairResult, Policy, evaluate_pair
from segdemo.i18n.errors import UserError
from segdemo.labs import fcn_skips as fcn_skips
from segdemo.models.registry import ModelEntry

MIN_MODELS = 2
MAX_MODELS = 6
COMPARABLE_LABEL_SETS = ("camvid", "voc")  # street scenes / everyday objects; U-Net's ISBI membranes are not
DEFAULT_MODELS = {
    "camvid": ("fcn32s_camvid", "fcn8s_camvid", "deeplab_slim_camvid", "deeplabv3_mobilenet_v2_camvid",
               "fcn16s_camvid", "deeplabv3_mobilenet_v2_scratch_camvid", "lraspp_mobilenet_v2_camvid"),
    "voc": ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50", "deeplabv3_resnet50"),
}
DEFAULT_COUNT = 4
# shorter side fed to every network: "native" = each model's own (the size its card's mIoU was measured at);
# a number = the same for all (a like-for-like cost comparison); 0 = the original image size
SIZE_CHOICES = ("native", 180, 270, 360, 0)
DEFAULT_BAND_PX = 4

# votes against the majority: 0 stays the (faded) image; 1..5 from yellow to dark purple
DISAGREEMENT_COLORS = ((255, 214, 0), (255, 140, 0), (220, 40, 30), (150, 0, 90), (70, 0, 90))


class CompareError(UserError):
    """A selection of models that cannot be compared; ``key`` is a catalogue key."""


# ---------------------------------------------------------------- which models


def check_selection(entries: Sequence[ModelEntry]) -> None:
    """Raise :class:`CompareError` unless 2..6 distinct models share one label set."""
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise CompareError("compare.err.duplicate", names=", ".join(n for n in names if names.count(n) > 1))
    if not MIN_MODELS <= len(entries) <= MAX_MODELS:
        raise CompareError("compare.err.count", n=len(entries), min=MIN_MODELS, max=MAX_MODELS)
    sets = sorted({e.label_set_key for e in entries})
    if len(sets) > 1:
        raise CompareError("compare.err.label_sets", sets=", ".join(sets))
    if sets[0] not in COMPARABLE_LABEL_SETS:
        raise CompareError("compare.err.not_comparable", labels=sets[0], names=", ".join(names))


def resolve_size(choice: object, entry: ModelEntry) -> int | None:
    """The shorter side ``entry`` runs at for a :data:`SIZE_CHOICES` value (None: the original size)."""
    if choice == "native":
        return entry.preprocess.resize_size
    return int(choice) or None


def short_label(entry: ModelEntry) -> str:
    """Architecture and backbone without the data-set suffix (the label set is shown once on the page)."""
    parts = [p for p in entry.backbone.split(" · ") if p.lower() != entry.label_set_key]
    return " · ".join([entry.architecture] + parts)


def default_selection(label_set_key: str, usable: Sequence[str]) -> list[str]:
    """Up to :data:`DEFAULT_COUNT` models: the preferred ones first (for CamVid: FCN-32s, FCN-8s,
    DeepLab-slim, DeepLabV3-MobileNetV2), then the other usable ones in registry order."""
    preferred = [n for n in DEFAULT_MODELS.get(label_set_key, ()) if n in usable]
    rest = [n for n in usable if n not in preferred]
    return (preferred + rest)[:DEFAULT_COUNT]


# ---------------------------------------------------------------- disagreement


def majority_vote(label_maps: Sequence[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(majority class, number of models that predict another class) at each pixel.

    A tie between classes goes to the lowest class index.
    """
    stack = np.stack([np.asarray(m) for m in label_maps]).astype(np.int64)
    votes = np.zeros((num_classes,) + stack.shape[1:], dtype=np.int32)
    for c in range(num_classes):
        votes[c] = (stack == c).sum(axis=0)
    majority = votes.argmax(axis=0)  # first maximum = lowest class index
    against = len(label_maps) - votes.max(axis=0)
    return majority.astype(np.uint8), against.astype(np.uint8)


@dataclass(frozen=True)
class Disagreement:
    """Where N models disagree, and how much of it lies near class boundaries.

    Shares are over the valid pixels (all pixels without ground truth; with it,
    pixels whose truth is not the ignore label). ``reference`` names the map
    whose boundaries define the band: the ground truth, else the majority.
    """

    majority: np.ndarray  # (H, W) majority class
    votes_against: np.ndarray  # (H, W) models predicting another class than the majority
    valid: np.ndarray  # (H, W) bool
    n_models: int
    band_px: int
    reference: str  # "truth" or "majority"
    share: float  # disagreeing pixels / valid pixels
    in_band: float  # share of the disagreeing pixels within band_px of a reference boundary
    band_share: float  # share of valid pixels within band_px (the in_band of evenly spread disagreement)
    enrichment: float  # in_band / band_share

    def histogram(self) -> list[int]:
        """Valid pixels with 0, 1, ..., N-1 models against the majority."""
        counts = np.bincount(self.votes_against[self.valid].ravel(), minlength=self.n_models)
        return [int(c) for c in counts[: self.n_models]]


def disagreement(label_maps: Sequence[np.ndarray], label_set: LabelSet, band_px: int = DEFAULT_BAND_PX,
                 truth: np.ndarray | None = None) -> Disagreement:
    """The disagreement of ``label_maps`` (see :class:`Disagreement`); boundary band from
    :func:`segdemo.labs.fcn_skips.boundary_concentration`, the FCN page's measure."""
    majority, against = majority_vote(label_maps, label_set.num_classes)
    if truth is not None:
        ignore = label_set.ignore_index if label_set.ignore_index is not None else 255
        reference = np.where((truth >= 0) & (truth < label_set.num_classes), truth, ignore)
        conc = fcn_skips.boundary_concentration(list(label_maps), reference, band_px, ignore)
        valid = reference != ignore
    else:
        conc = fcn_skips.boundary_concentration(list(label_maps), majority, band_px, None)
        valid = np.ones(majority.shape, bool)
    return Disagreement(majority=majority, votes_against=against, valid=valid, n_models=len(label_maps),
                        band_px=band_px, reference="truth" if truth is not None else "majority",
                        share=conc.disagree_share, in_band=conc.disagree_in_band, band_share=conc.band_share,
                        enrichment=conc.enrichment)


def disagreement_image(votes_against: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
    """Full agreement as the faded image (or light grey), k models against the majority in colour k."""
    h, w = votes_against.shape
    base = np.full((h, w, 3), 235, np.uint8) if rgb is None else (0.35 * rgb + 0.65 * 235).astype(np.uint8)
    lut = np.array(DISAGREEMENT_COLORS, np.uint8)
    k = np.clip(votes_against.astype(np.int64), 0, len(DISAGREEMENT_COLORS))
    out = base.copy()
    hit = k > 0
    out[hit] = lut[k[hit] - 1]
    return out


# ---------------------------------------------------------------- agreement between models


def model_pairs(n: int) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, in order."""
    return list(itertools.combinations(range(n), 2))


def pairwise_class_iou(label_maps: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """(pairs, classes) IoU of model i's and model j's mask of each class; NaN where neither predicts it.

    The IoU of :func:`segdemo.evaluate.metrics.per_class_iou` with model j as the
    reference (IoU is symmetric, so the order does not matter).
    """
    out = []
    for i, j in model_pairs(len(label_maps)):
        cm = metrics.confusion_matrix(label_maps[i], label_maps[j], num_classes)
        out.append(metrics.per_class_iou(cm))
    return np.array(out, dtype=np.float64).reshape(-1, num_classes)


def _over_pairs(values: np.ndarray, fn) -> np.ndarray:  # noqa: ANN001
    """``fn`` (a NaN-skipping reduction) over the pairs of each class; NaN where no pair has a value."""
    result = np.full(values.shape[1], np.nan)
    has = np.isfinite(values).any(axis=0)
    result[has] = fn(values[:, has], axis=0)
    return result


@dataclass(frozen=True)
class ClassAgreement:
    """Per class: how well the models' masks agree (pairwise IoU over the pairs that show the class)."""

    class_id: int
    mean_iou: float  # mean over pairs where at least one model predicts the class
    min_iou: float
    worst_pair: tuple[int, int] | None  # model indices of the least agreeing pair
    models_predicting: int  # how many models predict the class somewhere
    pixel_share: float  # share of the image where at least one model predicts it


def class_agreement(label_maps: Sequence[np.ndarray], num_classes: int) -> list[ClassAgreement]:
    """:class:`ClassAgreement` of every class that at least one model predicts."""
    ious = pairwise_class_iou(label_maps, num_classes)
    pairs = model_pairs(len(label_maps))
    mean, low = _over_pairs(ious, np.nanmean), _over_pairs(ious, np.nanmin)
    stack = np.stack([np.asarray(m) for m in label_maps])
    rows = []
    for c in range(num_classes):
        present = stack == c
        n_pred = int(present.reshape(len(label_maps), -1).any(axis=1).sum())
        if n_pred == 0:
            continue
        col = ious[:, c]
        worst = pairs[int(np.nanargmin(col))] if np.isfinite(col).any() else None
        rows.append(ClassAgreement(c, float(mean[c]), float(low[c]), worst, n_pred, float(present.any(axis=0).mean())))
    return rows


def pairwise_miou(label_maps: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """(N, N) mean over classes (predicted by either model) of the pairwise IoU; 1 on the diagonal."""
    n = len(label_maps)
    out = np.eye(n)
    ious = pairwise_class_iou(label_maps, num_classes)
    for k, (i, j) in enumerate(model_pairs(n)):
        row = ious[k]
        out[i, j] = out[j, i] = float(np.nanmean(row)) if np.isfinite(row).any() else float("nan")
    return out


# ---------------------------------------------------------------- scores against ground truth


def score_models(label_maps: dict[str, np.ndarray], truth: np.ndarray, label_set: LabelSet) -> dict[str, PairResult]:
    """Each model's label map scored against ``truth`` by the Evaluate page's
    :func:`~segdemo.evaluate.scoring.evaluate_pair` (default policy, boundary F1 on)."""
    return {name: evaluate_pair(labels, truth, label_set, label_set.ignore_index, Policy(), None, True, name)
            for name, labels in label_maps.items()}


SCORE_KEYS = ("mIoU", "pixel_accuracy", "mean_boundary_F1")


def score_summary(result: PairResult) -> dict[str, float]:
    """The three scores the Compare page shows, read from the Evaluate summary."""
    return {k: float(result.scores.summary[k]) for k in SCORE_KEYS}


# ---------------------------------------------------------------- the table


def comparison_rows(names: Sequence[str], costs: dict[str, object], scores: dict[str, PairResult] | None = None
                    ) -> list[dict[str, object]]:
    """One row per model: cost (see :class:`segdemo.inference.cost.Cost`) and, with truth, this image's scores.

    Column names are the machine names of the CSV / JSON export; the page translates the headers.
    """
    rows = []
    for name in names:
        c = costs[name]
        row: dict[str, object] = {
            "model": name,
            "input": f"{c.input_size[1]}x{c.input_size[0]}",
            "preprocess_ms": c.warm_ms["preprocess"], "forward_ms": c.warm_ms["forward"],
            "postprocess_ms": c.warm_ms["postprocess"], "total_ms": c.warm_total_ms,
            "cold_total_ms": c.cold_total_ms, "cold_forward_ms": c.cold_ms["forward"],
            "peak_forward_MiB": None if c.peak_forward_bytes is None else c.peak_forward_bytes / 2**20,
            "params_trainable_M": c.params_trainable / 1e6, "params_total_M": c.params_total / 1e6,
            "GFLOPs": c.gflops,
            "published_mIoU": c.published_miou, "published_on": c.published_source,
        }
        if scores is not None:
            row.update({f"image_{k}": v for k, v in score_summary(scores[name]).items()})
        row["random_weights"] = c.random_weights
        rows.append(row)
    return rows


def rows_csv(rows: list[dict[str, object]]) -> bytes:
    """The table as CSV (UTF-8, header = machine column names)."""
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------- the grid as one picture


# Fonts with Hangul, tried in order for the titles of the exported grid; without one,
# Pillow's own font is used and characters outside Latin-1 become "?".
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
             "/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


def _font(size: int) -> tuple[ImageFont.ImageFont, bool]:
    """A font of ``size`` px and whether it has Hangul."""
    for path in CJK_FONTS:
        try:
            return ImageFont.truetype(path, size), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size), False
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default(), False


def grid_image(panels: Iterable[tuple[str, np.ndarray]], columns: int = 3, max_side: int = 640,
               gap: int = 6, title_px: int = 26) -> np.ndarray:
    """Panels (title, RGB) in a grid of ``columns``, each scaled to fit ``max_side``, titled above."""
    from segdemo.data.images import downscale_for_display

    items = [(t, downscale_for_display(np.asarray(p, np.uint8), max_side)) for t, p in panels]
    if not items:
        raise ValueError("no panels")
    cell_h = max(p.shape[0] for _, p in items) + title_px
    cell_w = max(p.shape[1] for _, p in items)
    cols = max(1, min(columns, len(items)))
    rows = -(-len(items) // cols)
    canvas = Image.new("RGB", (cols * cell_w + (cols + 1) * gap, rows * cell_h + (rows + 1) * gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, unicode_font = _font(max(10, title_px - 10))
    for k, (title, panel) in enumerate(items):
        r, c = divmod(k, cols)
        x, y = gap + c * (cell_w + gap), gap + r * (cell_h + gap)
        text = title if unicode_font else title.encode("latin-1", "replace").decode("latin-1")
        while len(text) > 1 and draw.textlength(text, font=font) > cell_w - 4:  # keep the title over its panel
            text = text[:-2] + "…" if unicode_font else text[:-2] + "."
        draw.text((x + 2, y + 4), text, fill=(20, 20, 20), font=font)
        canvas.paste(Image.fromarray(panel), (x, y + title_px))
    return np.asarray(canvas)
