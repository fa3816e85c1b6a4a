"""``python -m segdemo pq``: panoptic quality (PQ = SQ x RQ) as panopticapi's ``pq_compute``.

    python -m segdemo pq --gt-json GT.json --gt-folder GT_DIR --pred-json PRED.json --pred-folder PRED_DIR [--json]
    python -m segdemo pq --model NAME --images DIR --instance-masks DIR [--json]

The first form reads the official COCO panoptic format (RGB PNGs + JSON). The
second runs an instance model on images whose ground truth is an instance-id
mask (0 = background, k = the k-th object, one thing class); the background is
a stuff class unless ``--background void`` (see ``segdemo.evaluate.panoptic_io``).
Bad input prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from segdemo.evaluate.batch import pair_by_name, read_folder
from segdemo.evaluate.panoptic import ImageMatches, PanopticFormatError, PQResult
from segdemo.evaluate.panoptic_io import (InstancePredictor, evaluate_folders, evaluate_instance_predictor,
                                          masks_to_instance_ids, read_instance_mask)


def _pct(x: float | None) -> str:
    return f"{'—':>6}" if x is None else f"{100 * x:6.1f}"


def format_table(result: PQResult) -> str:
    """panopticapi's summary table (PQ, SQ, RQ in %, N classes) and the counted classes below it."""
    lines = [f"{'':10s}| {'PQ':>6} {'SQ':>6} {'RQ':>6} {'N':>5}", "-" * 38]
    for name, g in (("All", result.all), ("Things", result.things), ("Stuff", result.stuff)):
        lines.append(f"{name:10s}| {_pct(g.pq)} {_pct(g.sq)} {_pct(g.rq)} {g.n:5d}")
    rows = [c for c in result.per_class.values() if c.counted]
    if rows:
        width = max(12, max(len(c.name) for c in rows) + 2)
        lines += ["", f"{'class':<{width}}{'kind':<7}{'PQ':>6} {'SQ':>6} {'RQ':>6} {'TP':>6} {'FP':>6} {'FN':>6}"]
        for c in sorted(rows, key=lambda c: c.category_id):
            kind = "thing" if c.isthing else "stuff"
            lines.append(f"{c.name:<{width}}{kind:<7}{_pct(c.pq)} {_pct(c.sq)} {_pct(c.rq)} "
                         f"{c.tp:6d} {c.fp:6d} {c.fn:6d}")
        empty = len(result.per_class) - len(rows)
        if empty:
            lines.append(f"({empty} classes with no TP, FP or FN are left out of the averages)")
    return "\n".join(lines)


def report_json(result: PQResult, images: list[ImageMatches], meta: dict[str, Any]) -> str:
    """The ``--json`` object: ``all``, ``things``, ``stuff``, ``per_class``, plus image counts and meta."""
    out = result.to_dict()
    out["images"] = len(images)
    out["meta"] = meta
    return json.dumps(out, indent=2, ensure_ascii=False)


def read_instance_samples(images_dir: Path, masks_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB, instance-id mask) for every image with a mask, pairing on the stem (``x.png``/``x_mask.png``)."""
    from segdemo.data.images import load_image_file

    for folder in (images_dir, masks_dir):
        if not Path(folder).is_dir():
            raise PanopticFormatError(f"{folder}: folder not found")
    images, masks = read_folder(Path(images_dir)), read_folder(Path(masks_dir))
    plan = pair_by_name(images, masks)
    if plan.images_without_mask or plan.masks_without_image:
        raise PanopticFormatError(f"image lists differ: {len(plan.images_without_mask)} images without a mask, "
                                  f"{len(plan.masks_without_image)} masks without an image")
    if not plan.pairs:
        raise PanopticFormatError(f"no images with instance masks in {images_dir} and {masks_dir}")
    samples = []
    for key, image_name, mask_name in plan.pairs:
        rgb = load_image_file(str(images[image_name]), image_name).rgb
        mask = read_instance_mask(masks[mask_name])
        if mask.shape != rgb.shape[:2]:
            raise PanopticFormatError(f"{mask_name}: mask is {mask.shape[1]}x{mask.shape[0]}, "
                                      f"image {rgb.shape[1]}x{rgb.shape[0]}")
        samples.append((key, rgb, mask))
    return samples


def score_instance_folders(predict: InstancePredictor, images_dir: Path, masks_dir: Path,
                           background: str = "stuff") -> tuple[PQResult, list[ImageMatches]]:
    """PQ of an instance predictor (RGB -> instance-id mask, scores) on an images folder and its instance masks."""
    return evaluate_instance_predictor(predict, read_instance_samples(Path(images_dir), Path(masks_dir)), background)


def load_instance_predictor(name: str, device: str | None, score_threshold: float,
                            mask_threshold: float) -> InstancePredictor:
    """The instance model ``name`` (:mod:`segdemo.models.instance_registry`) as an :data:`InstancePredictor`.

    The ground truth has one thing class, so only the model's "person" detections
    count (all of them for the Penn-Fudan model; COCO's other 79 classes are left
    out); they are pasted from the highest score down
    (:func:`~segdemo.evaluate.panoptic_io.masks_to_instance_ids`).
    """
    import torch

    from segdemo.inference.devices import pick_device
    from segdemo.models import instance_registry, weights
    from segdemo.training.instance import predict_instances

    try:
        model, entry, _ = instance_registry.load_instance_model(name, fetch=True, allow_random=False)
    except KeyError as exc:
        raise PanopticFormatError(str(exc.args[0])) from None
    except weights.WeightsMissingError as exc:
        raise PanopticFormatError(str(exc)) from None
    model = model.to(pick_device(device or "auto"))
    person = entry.categories.index("person")

    def predict(rgb: np.ndarray) -> tuple[np.ndarray, list[float]]:
        with torch.inference_mode():
            pred = predict_instances(model, rgb)
        keep = pred["labels"] == person
        return masks_to_instance_ids(pred["masks"][keep], pred["scores"][keep].tolist(), mask_threshold,
                                     score_threshold)

    return predict


def run(args: argparse.Namespace) -> int:
    """The ``pq`` command; 0 on success, 2 on bad input (one line on stderr)."""
    files_form = [args.gt_json, args.gt_folder, args.pred_json, args.pred_folder]
    model_form = [args.model, args.images, args.instance_masks]
    try:
        if all(files_form) and not any(model_form):
            result, images = evaluate_folders(Path(args.gt_json), Path(args.gt_folder), Path(args.pred_json),
                                              Path(args.pred_folder))
            meta = {"gt_json": args.gt_json, "gt_folder": args.gt_folder, "pred_json": args.pred_json,
                    "pred_folder": args.pred_folder}
        elif all(model_form) and not any(files_form):
            predict = load_instance_predictor(args.model, args.device, args.score_threshold, args.mask_threshold)
            result, images = score_instance_folders(predict, Path(args.images), Path(args.instance_masks),
                                                    args.background)
            meta = {"model": args.model, "images": args.images, "instance_masks": args.instance_masks,
                    "background": args.background, "score_threshold": args.score_threshold,
                    "mask_threshold": args.mask_threshold}
        else:
            print("error: give either --gt-json, --gt-folder, --pred-json and --pred-folder, "
                  "or --model, --images and --instance-masks", file=sys.stderr)
            return 2
    except PanopticFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report_json(result, images, meta) if args.json else format_table(result))
    return 0


def add_subcommand(subparsers: Any) -> None:
    """The ``pq`` subcommand."""
    p = subparsers.add_parser("pq", help="panoptic quality (PQ = SQ x RQ) of panoptic or instance predictions",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--gt-json", help="ground-truth panoptic JSON (COCO format, with categories)")
    p.add_argument("--gt-folder", help="folder of ground-truth panoptic PNGs")
    p.add_argument("--pred-json", help="predicted panoptic JSON")
    p.add_argument("--pred-folder", help="folder of predicted panoptic PNGs")
    p.add_argument("--model", help="instance model from the registry (runs on --images)")
    p.add_argument("--images", help="folder of images (with --model)")
    p.add_argument("--instance-masks", help="folder of instance-id masks (0 = background, k = k-th object)")
    p.add_argument("--background", choices=("stuff", "void"), default="stuff",
                   help="instance masks' background: a stuff class (default; every pixel counts) or void")
    p.add_argument("--score-threshold", type=float, default=0.5, help="instances below this score are dropped")
    p.add_argument("--mask-threshold", type=float, default=0.5, help="soft-mask threshold of the instance model")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)
