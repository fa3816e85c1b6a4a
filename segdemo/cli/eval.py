"""``python -m segdemo eval``: score a model (or saved predictions) against ground truth.

    python -m segdemo eval --model NAME --images DIR --masks DIR [--ignore-index N] [--json]
    python -m segdemo eval --pred DIR --masks DIR --labels voc [--json]

Images and masks pair on the file stem (``x.jpg`` with ``x.png``; suffixes such
as ``_mask`` or ``_labels`` are ignored). One confusion matrix is accumulated
over every pixel of every pair; the mean of per-image mIoUs is printed beside it.
A pair that cannot be scored is reported and the rest still run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from segdemo import i18n
from segdemo.evaluate import (ABSENT_POLICIES, BatchAccumulator, BatchResult, Notice, Policy, decode_mask,
                              describe_notice, pair_by_name, per_class_csv, per_image_csv, preset_mapping, read_folder,
                              run_batch, short_list, to_json)
from segdemo.evaluate.scoring import EvaluationError
from segdemo.data.labels import LABEL_SETS, LabelSet, get_label_set


def describe(notice: Notice, lang: str = "en") -> str:
    """A notice (or an error from another module) as text in ``lang``."""
    return describe_notice(notice, lang)


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return f"{'—':>6}" if pct else "—"
    if pct and x < 0:  # the -1 of the torchmetrics policy is a marker, not a percentage
        return f"{x:6.0f}"
    return f"{100 * x:6.2f}" if pct else f"{x:.4f}"


def format_report(result: BatchResult, label_set: LabelSet, lang: str = "en") -> str:
    """The plain-text report: per-class table, summary, both dataset means, errors."""
    lines: list[str] = []
    s = result.scores
    if s is not None:
        width = max(len(c) for c in label_set.classes) + 2
        lines.append(f"{'class':<{width}}{'TP':>11}{'FP':>11}{'FN':>11}  {'IoU%':>6}  {'Dice%':>6}  "
                     f"{'Prec%':>6}  {'Rec%':>6}  {'BF%':>6}  {'img-IoU%':>8}")
        for i, row in enumerate(s.rows()):
            mark = "" if row["in_mean"] else "  *"
            lines.append(f"{row['class']:<{width}}{row['TP']:>11}{row['FP']:>11}{row['FN']:>11}  "
                         f"{_fmt(s.iou[i], True)}  {_fmt(s.dice[i], True)}  {_fmt(s.precision[i], True)}  "
                         f"{_fmt(s.recall[i], True)}  {_fmt(s.boundary_f1[i], True)}  "
                         f"{_fmt(result.mean_image_iou_per_class[i], True):>8}{mark}")
        lines.append(i18n.t("eval.cli.not_in_mean", lang))
        lines.append("")
        for key in ("mIoU", "pixel_accuracy", "mean_class_accuracy", "fw_IoU", "mean_Dice", "mean_boundary_F1"):
            lines.append(f"{key:<22}{_fmt(s.summary[key], True)} %")
        lines.append(f"{'mean per-image mIoU':<22}{_fmt(result.mean_image_miou, True)} %")
        lines.append(i18n.t("eval.cli.bf_averages", lang, classwise=_fmt(s.summary["mean_boundary_F1"], True).strip(),
                            imagewise=_fmt(result.mean_image_boundary_f1, True).strip()))
        if s.summary["accuracy_pixels"] != s.summary["valid_pixels"]:
            lines.append(i18n.t("eval.accuracy_scope", lang, pixels=s.summary["accuracy_pixels"],
                                left_out=s.summary["valid_pixels"] - s.summary["accuracy_pixels"]))
        lines.append("")
        lines.append(i18n.t("eval.batch.why_differ", lang))
    lines.append(i18n.t("eval.cli.counted", lang, scored=len(result.scored), errors=len(result.errors)))
    for r in result.errors:
        lines.append("  ! " + describe(r.error, lang))
    warned = result.warnings()
    if warned:
        lines.append(i18n.t("eval.batch.notices", lang, n=len(warned)) + ":")
        lines.extend("  ~ " + describe(n, lang) for notices in warned.values() for n in notices)
    return "\n".join(lines)


def _loader(args: argparse.Namespace, gt_set: LabelSet, pred_set: LabelSet, ignore: int | None,
            images: dict[str, Path], masks: dict[str, Path]) -> Callable[[str, str, str], Any]:
    if args.pred:
        def load(key: str, pred_name: str, mask_name: str):
            pred_gt = decode_mask(images[pred_name].read_bytes(), pred_name, pred_set)
            if not args.annotator and (pred_gt.unknown_colors or pred_gt.out_of_set):
                raise EvaluationError("eval.err.pred_out_of_set", name=pred_name, n=pred_set.num_classes)
            gt = decode_mask(masks[mask_name].read_bytes(), mask_name, gt_set, ignore, pred_gt.labels.shape)
            return pred_gt.labels, gt.labels, gt.notices
        return load

    from segdemo.inference import devices
    from segdemo.models import registry
    from segdemo.models import weights
    from segdemo.data.images import load_image_file
    from segdemo.inference.pipeline import predict

    entry = registry.get(args.model)
    device = args.device or devices.auto_device()
    model = weights.load_model(entry, device=device)
    size = entry.preprocess.resize_size if args.size is None else (args.size or None)

    def load(key: str, image_name: str, mask_name: str):
        image = load_image_file(str(images[image_name]), image_name)
        gt = decode_mask(masks[mask_name].read_bytes(), mask_name, gt_set, ignore, image.rgb.shape[:2])
        labels = predict(model, entry, image.rgb, size, device).labels
        return labels, gt.labels, gt.notices
    return load


def run(args: argparse.Namespace) -> int:
    """The ``eval`` command; exit 0 when every pair was scored, 1 when some failed, 2 when none."""
    lang = args.lang
    if args.annotator and not args.pred:
        print(i18n.t("eval.cli.need_source", lang), file=sys.stderr)
        return 2
    if not args.pred and not (args.model and args.images):
        print(i18n.t("eval.cli.need_source", lang), file=sys.stderr)
        return 2
    try:
        if args.model:
            from segdemo.models import registry

            pred_set = registry.get(args.model).label_set
        else:
            pred_set = get_label_set(args.labels or "voc")
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    gt_set = get_label_set(args.gt_labels) if args.gt_labels else pred_set
    mapping = preset_mapping(gt_set, pred_set)
    if mapping is None:
        print(i18n.t("eval.map.no_match", lang, truth=gt_set.key, model=pred_set.key), file=sys.stderr)
        return 2
    ignore = gt_set.ignore_index if args.ignore_index is None else (None if args.ignore_index < 0 else args.ignore_index)
    if ignore is not None and 0 <= ignore < gt_set.num_classes:  # left out of the means, as torchmetrics does
        print(i18n.t("eval.ignore_is_class", lang, ignore=ignore, labels=i18n.t(f"labelset.{gt_set.key}", lang),
                     name=i18n.class_name(gt_set.key, gt_set.classes[ignore], lang)), file=sys.stderr)
    source_dir = Path(args.pred or args.images)
    for folder in (source_dir, Path(args.masks)):
        if not folder.is_dir():
            print(i18n.t("eval.cli.no_dir", lang, path=str(folder)), file=sys.stderr)
            return 2
    sources, masks = read_folder(source_dir), read_folder(Path(args.masks))
    if args.pred:
        # `segdemo predict` writes <stem>_labels.png beside <stem>_overlay.png: only the former are predictions.
        sources = {k: v for k, v in sources.items() if not Path(k).stem.endswith("_overlay")}
    plan = pair_by_name(sources, masks)
    try:
        load = _loader(args, gt_set, pred_set, ignore, sources, masks)
    except Exception as exc:  # noqa: BLE001 - weights missing, unknown model: say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    policy = Policy(args.absent, not args.exclude_background)
    acc = BatchAccumulator(gt_set, ignore, policy, None if mapping.is_identity else mapping,
                           boundary=not args.no_boundary, annotators=args.annotator)
    if plan.masks_without_image:
        # Masks of images not given (a subset of a data set, a second annotation of some images only): said once.
        print(i18n.t("eval.cli.masks_without_prediction" if args.pred else "eval.cli.masks_without_image", lang,
                     n=len(plan.masks_without_image), names=short_list(plan.masks_without_image)), file=sys.stderr)

    def progress(i: int, n: int, name: str) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\r[{i}/{n}] {name[:60]:<60}", end="" if i < n else "\n", file=sys.stderr)

    result = run_batch(plan.pairs, load, acc, progress, plan.images_without_mask)
    meta = {"model": args.model, "pred_dir": args.pred, "images": args.images, "masks": args.masks,
            "truth_labels": gt_set.key, "model_labels": pred_set.key, "mapping": mapping.preset,
            "ignore_index": ignore, "masks_not_scored": plan.masks_without_image}
    if args.csv:
        Path(args.csv).write_text(per_class_csv(result), encoding="utf-8")
    if args.per_image_csv:
        Path(args.per_image_csv).write_text(per_image_csv(result, lambda n: describe(n, lang)), encoding="utf-8")
    if args.json:
        print(to_json(result, meta, lambda n: describe(n, lang)))
    else:
        print(format_report(result, gt_set, lang))
    if not result.scored:
        return 2
    return 1 if result.errors else 0


def add_subcommand(subparsers: Any) -> None:
    """The ``eval`` subcommand."""
    p = subparsers.add_parser("eval", help="score a model or saved predictions against ground-truth masks",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model name from the registry (runs the model on --images)")
    p.add_argument("--images", help="folder of images (with --model)")
    p.add_argument("--pred", help="folder of saved predictions (label PNGs) to score without a model")
    p.add_argument("--annotator", action="store_true",
                   help="--pred holds a second human annotation: pixels either annotator left void are not compared")
    p.add_argument("--masks", required=True, help="folder of ground-truth masks")
    p.add_argument("--labels", choices=sorted(LABEL_SETS), help="label set of --pred (default voc, or the model's)")
    p.add_argument("--gt-labels", choices=sorted(LABEL_SETS),
                   help="label set of the masks, when it differs from the model's (a preset maps them)")
    p.add_argument("--ignore-index", type=int, default=None,
                   help="truth id left out of every count (default: 255 VOC, 11 CamVid; -1 for none)")
    p.add_argument("--absent", choices=ABSENT_POLICIES, default="nan",
                   help="a class absent from truth and prediction: nan = left out of the mean "
                        "(torchvision, MMSeg), zero = counts 0, minus_one = -1 and left out (torchmetrics)")
    p.add_argument("--exclude-background", action="store_true", help="leave background out of class averages")
    p.add_argument("--no-boundary", action="store_true", help="skip the boundary F1 score (faster)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--csv", help="write the per-class table to this CSV file")
    p.add_argument("--per-image-csv", help="write one line per image to this CSV file")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--size", type=int, default=None, help="shorter side fed to the network (0 = original)")
    p.add_argument("--lang", choices=sorted(i18n.LANGUAGES), default="en", help="language of the report")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)
