"""``python -m segdemo compare IMAGE --models A B C [--mask GT] [--json]``: the Compare page's table.

Each model is loaded fresh and measured on IMAGE as the page does
(:func:`segdemo.inference.cost.measure_cost`: cold call, warm-up, timed
repeats, peak forward memory, parameters, FLOPs); its cold call's label map
feeds the disagreement and agreement figures. With ``--mask`` each model is
also scored on the image (the Evaluate page's scoring; a mask of another size
is resized with a warning, as there). Bad input prints one
line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segdemo import config, i18n
from segdemo.data.images import ImageError, load_image_file
from segdemo.evaluate import MaskError, decode_mask, describe_notice
from segdemo.evaluate.scoring import EvaluationError
from segdemo.inference import cost as cost_mod
from segdemo.inference import devices
from segdemo.labs import compare
from segdemo.models import registry
from segdemo.models import weights

LANG = "en"


class _InputError(Exception):
    """One line for the user; exit status 2."""


def _size_choice(text: str) -> object:
    if text == "native":
        return "native"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--size is 'native', 0 (original size) or a shorter side in pixels") from None
    if value < 0 or value > 4096:
        raise argparse.ArgumentTypeError("--size must be between 0 and 4096")
    return value


def run_compare(image_path: str, model_names: list[str], mask_path: str | None = None, size: object = "native",
                device: str | None = None, warmup: int = cost_mod.DEFAULT_WARMUP,
                repeats: int = cost_mod.DEFAULT_REPEATS, band_px: int = compare.DEFAULT_BAND_PX) -> dict[str, Any]:
    """Everything the command prints, as a JSON-friendly dict; raises :class:`_InputError` on bad input."""
    try:
        entries = [registry.get(n) for n in model_names]
    except KeyError as exc:
        raise _InputError(str(exc.args[0])) from None
    try:
        compare.check_selection(entries)
    except compare.CompareError as exc:
        raise _InputError(i18n.t(exc.key, LANG, **exc.values)) from None
    if repeats < 1 or warmup < 0 or band_px < 1:
        raise _InputError("--repeats and --band must be >= 1, --warmup >= 0")
    allow_random = config.allow_random_weights()
    for entry in entries:
        if weights.locate(entry) is None and not allow_random:
            raise _InputError(str(weights.WeightsMissingError(entry, "file not found")))
    try:
        image = load_image_file(image_path)
    except ImageError as exc:
        raise _InputError(i18n.t(exc.key, LANG, **exc.values)) from None
    except OSError as exc:
        raise _InputError(f"{image_path}: {exc.strerror or exc}") from None
    label_set = entries[0].label_set
    truth = None
    if mask_path:
        try:
            gt = decode_mask(Path(mask_path).read_bytes(), Path(mask_path).name, label_set,
                             image_size=image.rgb.shape[:2])
        except MaskError as exc:
            raise _InputError(i18n.t(exc.key, LANG, **exc.values)) from None
        except OSError as exc:
            raise _InputError(f"{mask_path}: {exc.strerror or exc}") from None
        for note in gt.notices:  # e.g. a mask of another size, resized as the Evaluate page does
            print(f"{note.level}: {describe_notice(note, LANG)}", file=sys.stderr)
        truth = gt.labels
    device = device or devices.auto_device()
    costs = {}
    for entry in entries:
        costs[entry.name] = cost_mod.measure_cost(
            lambda e=entry: weights.load_model(e, device=device), entry, image.rgb,
            compare.resolve_size(size, entry), device, False, warmup, repeats)
    maps = {n: costs[n].labels for n in model_names}
    scores = None
    if truth is not None:
        try:
            scores = compare.score_models(maps, truth, label_set)
        except EvaluationError as exc:
            raise _InputError(i18n.t(exc.key, LANG, **exc.values)) from None
    dis = compare.disagreement(list(maps.values()), label_set, band_px, truth)
    agreement = compare.class_agreement(list(maps.values()), label_set.num_classes)
    first = costs[model_names[0]]
    return {
        "image": str(image_path), "image_size": [int(image.rgb.shape[1]), int(image.rgb.shape[0])],
        "label_set": label_set.key, "device": devices.device_name(device), "threads": first.threads,
        "warmup": warmup, "repeats": repeats, "memory_method": first.memory_method,
        "rows": compare.comparison_rows(model_names, costs, scores),
        "disagreement": {"share": dis.share, "band_px": band_px, "reference": dis.reference,
                         "in_band": None if np.isnan(dis.in_band) else dis.in_band, "band_share": dis.band_share,
                         "pixels_by_votes_against": dis.histogram()},
        "agreement": [{"class": label_set.classes[a.class_id], "mean_pairwise_IoU": a.mean_iou,
                       "min_pairwise_IoU": a.min_iou,
                       "worst_pair": None if a.worst_pair is None else [model_names[i] for i in a.worst_pair],
                       "models_predicting": a.models_predicting} for a in agreement],
        "costs": {n: c.to_json() for n, c in costs.items()},
    }


def _f(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return format(value, fmt)


def format_table(result: dict[str, Any]) -> str:
    """The cost table (and per-model scores when a mask was given) as plain text."""
    rows = result["rows"]
    width = max(len(r["model"]) for r in rows) + 2
    head = (f"{'model':<{width}}{'input':>9}{'pre ms':>8}{'fwd ms':>8}{'post ms':>8}{'total':>8}{'cold':>8}"
            f"{'peak MiB':>9}{'params M':>14}{'GFLOPs':>8}{'pub mIoU':>9}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['model']:<{width}}{r['input']:>9}{_f(r['preprocess_ms'], '.1f'):>8}"
                     f"{_f(r['forward_ms'], '.1f'):>8}{_f(r['postprocess_ms'], '.1f'):>8}{_f(r['total_ms'], '.1f'):>8}"
                     f"{_f(r['cold_total_ms'], '.1f'):>8}{_f(r['peak_forward_MiB'], '.1f'):>9}"
                     f"{_f(r['params_trainable_M'], '.2f') + '/' + _f(r['params_total_M'], '.2f'):>14}"
                     f"{_f(r['GFLOPs'], '.2f'):>8}{_f(r['published_mIoU'], '.1%'):>9}"
                     + ("  (random weights)" if r["random_weights"] else ""))
    lines.append(f"published mIoU: " + "; ".join(f"{r['model']}: {r['published_on'] or '—'}" for r in rows))
    lines.append(f"device {result['device']}, {result['threads']} threads, input = network input (w x h) per model, "
                 f"warm-up {result['warmup']}, median of {result['repeats']} runs; cold = first call after loading; "
                 f"peak memory: {result['memory_method']}; trainable/total parameters")
    if "image_mIoU" in rows[0]:
        lines.append("")
        lines.append(f"{'model':<{width}}{'mIoU':>8}{'pix acc':>9}{'BF1':>8}   (this image, Evaluate's scoring)")
        for r in rows:
            lines.append(f"{r['model']:<{width}}{_f(r['image_mIoU'], '.1%'):>8}{_f(r['image_pixel_accuracy'], '.1%'):>9}"
                         f"{_f(r['image_mean_boundary_F1'], '.1%'):>8}")
    d = result["disagreement"]
    lines.append("")
    lines.append(f"disagreement: {d['share']:.1%} of pixels; {_f(d['in_band'], '.1%')} of them within {d['band_px']} px "
                 f"of a {d['reference']} boundary (that band is {d['band_share']:.1%} of the image)")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            print("error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        result = run_compare(args.image, args.models, args.mask, args.size, args.device, args.warmup,
                             args.repeats, args.band)
    except _InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else format_table(result))
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``compare``."""
    p = subparsers.add_parser("compare", help="several models on one image: cost, disagreement, scores",
                              description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME")
    p.add_argument("--mask", help="ground-truth mask of IMAGE (palette, index or colour-coded PNG)")
    p.add_argument("--size", type=_size_choice, default="native",
                   help="shorter side fed to every network: native (each model's own, default), 0 = original, or N")
    p.add_argument("--device", choices=devices.available_devices())
    p.add_argument("--warmup", type=int, default=cost_mod.DEFAULT_WARMUP)
    p.add_argument("--repeats", type=int, default=cost_mod.DEFAULT_REPEATS)
    p.add_argument("--band", type=int, default=compare.DEFAULT_BAND_PX, help="boundary band in pixels")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
