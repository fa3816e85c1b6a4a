"""``python -m segdemo train-instance``: train the instance model (Mask R-CNN) and write its card.

Example (the shipped ``maskrcnn_mobilenet_v2_pennfudan``)::

    SEGDEMO_DATA_DIR=../shared/data python -m segdemo train-instance \\
        --model maskrcnn_mobilenet_v2 --dataset pennfudan --epochs 20 --threads 1 --eval-every 2 --resume

* Data: Penn-Fudan's fixed split (:data:`segdemo.data.pennfudan.SPLIT_DESCRIPTION`).
* Backbone initialised from the shipped ImageNet MobileNetV2.
* Augmentation: horizontal flip (p = 0.5), brightness/contrast jitter, and scale
  jitter — the shorter side is drawn from :data:`TRAIN_MIN_SIZES` per batch by
  torchvision's ``GeneralizedRCNNTransform``; evaluation uses :data:`EVAL_MIN_SIZE`.
* SGD with momentum, linear warm-up then cosine decay; batch 2.
* Reproducible (``--seed``; every epoch reseeds from it) and resumable:
  ``runs/<name>/last.pt`` is written after each epoch, ``--resume`` picks it up.
* Output: ``assets/models/instance/<name>.safetensors`` (fp16) and ``<name>.json``,
  the card; its metrics are measured with the stored fp16 weights. Instance
  models live in their own folder: the semantic registry globs
  ``assets/models/*.json`` and must not list them.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segdemo import config
from segdemo.data.pennfudan import (PENNFUDAN_LICENSE, SPLIT_DESCRIPTION, PennFudanSample, load_pennfudan,
                                    pennfudan_split)
from segdemo.evaluate.instance_ap import APAccumulator, box_iou_matrix, mask_iou_matrix
from segdemo.models.instance_registry import instance_builders
from segdemo.training.loop import save_weights
from segdemo.models.builders import count_params
from segdemo.models.maskrcnn import load_instance_state

RUNS_DIR = config.REPO_DIR / "runs"
TRAIN_MIN_SIZES = (288, 320, 352, 384)  # scale jitter: shorter side drawn per batch
EVAL_MIN_SIZE = 320
MAX_SIZE = 640
MASK_THRESHOLD = 0.5  # a pasted mask probability >= this is the object
PQ_MIN_SCORE = 0.5  # instances below this score are left out of the panoptic output
INSTANCE_BUILDERS = instance_builders()


def log(message: str) -> None:
    """Print a line with a timestamp (and flush: the run is followed through ``nohup``)."""
    line = time.strftime("%H:%M:%S ") + message
    print(line, flush=True)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1] (the model normalises with ImageNet statistics)."""
    return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float().div_(255.0)


def training_pair(sample: PennFudanSample, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One augmented (image, target) pair in torchvision's detection format."""
    image, masks, boxes = sample.image, sample.masks, sample.boxes.copy()
    if rng.random() < 0.5:  # horizontal flip: pedestrians are left-right symmetric
        width = image.shape[1]
        image, masks = image[:, ::-1], masks[:, :, ::-1]
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    tensor = to_tensor(image)
    # Photometric jitter: brightness x [0.8, 1.2], contrast x [0.8, 1.2] around the mean.
    mean = tensor.mean()
    tensor = ((tensor - mean) * rng.uniform(0.8, 1.2) + mean * rng.uniform(0.8, 1.2)).clamp_(0, 1)
    target = {"boxes": torch.from_numpy(boxes).float(),
              "labels": torch.ones(len(boxes), dtype=torch.int64),
              "masks": torch.from_numpy(np.ascontiguousarray(masks)).to(torch.uint8)}
    return tensor, target


@torch.no_grad()
def predict_instances(model: nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    """Boxes (x1, y1, x2, y2), labels, scores and (N, H, W) mask probabilities of one RGB image
    (on the model's device; the results on the CPU)."""
    model.eval()
    device = next(model.parameters()).device
    out = {k: v.cpu() for k, v in model([to_tensor(image).to(device)])[0].items()}
    return {"boxes": out["boxes"].numpy(), "labels": out["labels"].numpy(), "scores": out["scores"].numpy(),
            "masks": out["masks"][:, 0].numpy()}


def evaluate_instances(model: nn.Module, samples: list[PennFudanSample], with_pq: bool = True) -> dict[str, Any]:
    """Mask AP50, box AP50 (COCO-style, :mod:`segdemo.evaluate.instance_ap`) and PQ on ``samples``.

    PQ (panopticapi's rules, :mod:`segdemo.evaluate.panoptic`): person is the thing
    class, the background one stuff segment; instances with score >= 0.5 are
    pasted from the highest score down, each pixel kept by the first one.
    """
    mask_ap, box_ap = APAccumulator(0.5), APAccumulator(0.5)
    pq_pairs = []
    seconds = 0.0
    for sample in samples:
        start = time.perf_counter()
        pred = predict_instances(model, sample.image)
        seconds += time.perf_counter() - start
        binary = pred["masks"] >= MASK_THRESHOLD
        mask_ap.add(pred["scores"], mask_iou_matrix(binary, sample.masks))
        box_ap.add(pred["scores"], box_iou_matrix(pred["boxes"], sample.boxes))
        pq_pairs.append((sample, pred))
    result: dict[str, Any] = {"mask_ap50": mask_ap.average_precision(), "box_ap50": box_ap.average_precision(),
                              "images": len(samples), "instances": mask_ap.num_ground_truth,
                              "cpu_ms_per_image": 1000.0 * seconds / max(len(samples), 1)}
    if with_pq:
        result.update(panoptic_quality(pq_pairs))
    return result


def panoptic_quality(pairs: list[tuple[PennFudanSample, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """PQ / SQ / RQ of the person class over (sample, prediction) pairs; {} when the PQ module is absent."""
    try:
        from segdemo.evaluate.panoptic import PQAccumulator
        from segdemo.evaluate.panoptic_io import instance_categories, instance_ids_to_panoptic, masks_to_instance_ids
    except ImportError:  # the PQ module is another part of segdemo; AP does not need it
        return {}
    acc = PQAccumulator(instance_categories("stuff"))
    for sample, pred in pairs:
        gt_ids = np.zeros(sample.image.shape[:2], dtype=np.int32)
        for k, mask in enumerate(sample.masks, start=1):
            gt_ids[mask] = k
        pred_ids, kept = masks_to_instance_ids(pred["masks"], pred["scores"], MASK_THRESHOLD, PQ_MIN_SCORE)
        acc.update(instance_ids_to_panoptic(gt_ids, sample.name, background="stuff"),
                   instance_ids_to_panoptic(pred_ids, sample.name, kept, background="stuff"))
    things = acc.result().things
    return {"pq": things.pq, "sq": things.sq, "rq": things.rq,
            "pq_rules": "panopticapi pq_compute; person = thing, background = one stuff segment; "
                        f"instances with score >= {PQ_MIN_SCORE}, mask >= {MASK_THRESHOLD}, pasted by score"}


def learning_rate(step: int, total_steps: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warm-up from base_lr/100 over ``warmup_steps``, then cosine decay to 0."""
    if step < warmup_steps:
        return base_lr * (0.01 + 0.99 * step / warmup_steps)
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(args: argparse.Namespace) -> int:
    """The training loop; writes the shipped weights and card when all epochs are done."""
    torch.set_num_threads(args.threads)
    name = args.name or f"{args.model}_{args.dataset}"
    run_dir = RUNS_DIR / name
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "last.pt"

    train_samples = [load_pennfudan(n) for n in pennfudan_split("train")]
    val_samples = [load_pennfudan(n) for n in pennfudan_split("val")]
    if args.limit:
        train_samples, val_samples = train_samples[:args.limit], val_samples[:max(2, args.limit // 4)]
    log(f"{name}: {len(train_samples)} train / {len(val_samples)} val images")

    torch.manual_seed(args.seed)
    model = INSTANCE_BUILDERS[args.model](num_classes=2, min_size=EVAL_MIN_SIZE, max_size=MAX_SIZE,
                                          imagenet_weights=True)
    parent: dict[str, Any] | None = None
    if getattr(args, "init_from", None):
        # Continue from a finished run's stored weights (a new schedule on top of them).
        load_instance_state(model, args.init_from)
        parent_card = Path(args.init_from).with_suffix(".json")
        parent = json.loads(parent_card.read_text(encoding="utf-8")) if parent_card.is_file() else {}
        log(f"initialised from {args.init_from}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(train_samples) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    history: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    if args.resume and checkpoint_path.is_file():
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, elapsed, history = int(ckpt["epoch"]), float(ckpt["seconds"]), list(ckpt["history"])
        log(f"resumed from {checkpoint_path} after epoch {start_epoch}")

    for epoch in range(start_epoch, args.epochs):
        epoch_start = time.perf_counter()
        rng = np.random.default_rng([args.seed, epoch])  # every epoch reseeds: resuming gives the same run
        torch.manual_seed(args.seed * 1000 + epoch)  # RPN / RoI sampling
        model.train()
        model.transform.min_size = TRAIN_MIN_SIZES
        order = rng.permutation(len(train_samples))
        sums: dict[str, float] = {}
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total_steps, args.lr, args.warmup_steps)
            batch = [training_pair(train_samples[j], rng) for j in order[i * args.batch_size:(i + 1) * args.batch_size]]
            losses = model([b[0] for b in batch], [b[1] for b in batch])
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)  # early RPN steps can spike
            optimizer.step()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        model.transform.min_size = (EVAL_MIN_SIZE,)
        record: dict[str, Any] = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}}
        if args.eval_every and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs):
            scores = evaluate_instances(model, val_samples, with_pq=False)
            record.update(val_mask_ap50=scores["mask_ap50"], val_box_ap50=scores["box_ap50"])
        elapsed += time.perf_counter() - epoch_start
        record["seconds"] = elapsed
        history.append(record)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                    "seconds": elapsed, "history": history}, checkpoint_path)
        log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))

    out_dir = Path(args.out_dir)
    weights_path = out_dir / f"{name}.safetensors"
    save_weights(model, weights_path, half=True)
    # Every number in the card is measured with the stored fp16 weights.
    shipped = INSTANCE_BUILDERS[args.model](num_classes=2, min_size=EVAL_MIN_SIZE, max_size=MAX_SIZE)
    load_instance_state(shipped, weights_path)
    scores = evaluate_instances(shipped, val_samples, with_pq=True)
    log(f"shipped weights on val: {scores}")
    card = make_card(args, name, weights_path, shipped, scores, history, elapsed, len(train_samples))
    if parent is not None:
        card["init_from"] = {"weights": Path(args.init_from).name, "command": parent.get("command"),
                             "epochs": parent.get("epochs"), "train_seconds": parent.get("train_seconds"),
                             "metrics": {k: parent.get("metrics", {}).get(k) for k in ("mask_ap50", "box_ap50", "pq")},
                             "history": parent.get("history")}
        card["train_seconds_total"] = round(elapsed + float(parent.get("train_seconds") or 0.0), 1)
    card_path = out_dir / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.1f} MB) and {card_path}")
    return 0


def make_card(args: argparse.Namespace, name: str, weights_path: Path, model: nn.Module, scores: dict[str, Any],
              history: list[dict[str, Any]], seconds: float, num_train: int) -> dict[str, Any]:
    """The instance model card (read by :mod:`segdemo.models.instance_registry`)."""
    from segdemo.models.backbones import get_backbone

    backbone = get_backbone("mobilenet_v2_imagenet")
    command = "python -m segdemo train-instance " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train-instance" else "python -m segdemo train-instance"
    return {
        "name": name,
        "display_name": "Mask R-CNN · MobileNetV2 · Penn-Fudan",
        "task": "instance",
        "builder": args.model,
        "builder_kwargs": {"num_classes": 2, "min_size": EVAL_MIN_SIZE, "max_size": MAX_SIZE},
        "weights_file": weights_path.name,
        "weights_dtype": "float16",
        "classes": ["background", "person"],
        "architecture": "Mask R-CNN (He et al. 2017): Faster R-CNN (RPN + RoIAlign box head) plus a 28x28 mask "
                        "branch; torchvision MaskRCNN, AnchorGenerator, MultiScaleRoIAlign, TwoMLPHead, "
                        "MaskRCNNHeads, MaskRCNNPredictor",
        "backbone": "MobileNetV2 features[:18], output stride 16 (dilated), 1x1 conv to 128 channels; "
                    "features[:4] and all BatchNorm frozen",
        "backbone_init": f"{backbone.source} ({backbone.pretrained_on}); {backbone.card.get('licence', '')}",
        "dataset": "pennfudan",
        "data_licence": PENNFUDAN_LICENSE,
        "licence_note": "trained on Penn-Fudan: research use only",
        "split": SPLIT_DESCRIPTION,
        "train_images": num_train,
        "val_images": scores["images"],
        "val_instances": scores["instances"],
        "input": {"min_size": EVAL_MIN_SIZE, "max_size": MAX_SIZE, "train_min_sizes": list(TRAIN_MIN_SIZES),
                  "normalise": "ImageNet mean/std inside the model"},
        "augmentation": "horizontal flip p=0.5; brightness and contrast x[0.8, 1.2]; scale jitter (shorter side "
                        f"{'/'.join(map(str, TRAIN_MIN_SIZES))})",
        "optimiser": f"SGD momentum 0.9, lr {args.lr}, weight decay {args.weight_decay}, "
                     f"{args.warmup_steps}-step linear warm-up then cosine, batch {args.batch_size}, grad-norm clip 10",
        "seed": args.seed,
        "command": command,
        "epochs": args.epochs,
        "train_seconds": round(seconds, 1),
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
        "metrics": {
            "split": "val",
            "mask_ap50": scores["mask_ap50"],
            "box_ap50": scores["box_ap50"],
            "pq": scores.get("pq"),
            "sq": scores.get("sq"),
            "rq": scores.get("rq"),
            "ap_rules": "COCO-style AP at IoU 0.5 (pycocotools COCOeval: greedy by score, 101 recall points, "
                        f"maxDets 100); masks binarised at {MASK_THRESHOLD}",
            "pq_rules": scores.get("pq_rules"),
            "targets": {"mask_ap50": 0.80, "pq": 0.55},
        },
        "num_params": count_params(model),
        "cpu_ms_per_image": round(scores["cpu_ms_per_image"], 1),
        "cpu_ms_note": f"wall time per image, mean over the val images at min_size {EVAL_MIN_SIZE}, "
                       f"{args.threads} thread(s), {platform.machine()}; measured while other jobs shared the CPU",
        "size_bytes": weights_path.stat().st_size,
    }
