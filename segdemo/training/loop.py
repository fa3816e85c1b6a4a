"""The training loop of ``python -m segdemo train``: data in memory, batches, the
optimizer schedule, checkpoints for ``--resume``, then weights and model card."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from segdemo.data import datasets
from segdemo.data.download import TextProgress
from segdemo.data.labels import CAMVID, ISBI, PERSON
from segdemo.inference.devices import pick_device
from segdemo.inference.pipeline import normalize
from segdemo.inference.tiling import mirror_pad
from segdemo.models.builders import count_params
from segdemo.models.registry import IMAGENET_MEAN, IMAGENET_STD
from segdemo.training.augment import (BASIC, MIXING, augment_crop, elastic_deform, parse_augmentations, random_scale,
                                      resize_pair, scaled_window)
from segdemo.training.losses import SegmentationLoss
from segdemo.training.mixing import mix_batch
from segdemo.training.cards import evaluate_camvid, evaluate_isbi, evaluate_pennfudan, inference_ms, make_card
from segdemo.training.recipes import (CAMVID_CROP, CAMVID_EVAL_SIZES, CAMVID_VAL_SUBSET, ISBI_MEAN, ISBI_STD,
                                      ISBI_TRAIN_SLICES, PENNFUDAN_FULL_SHORT_SIDE, RECIPES, TRAIN_STORE_SCALE, apply_strategy, build,
                                      camvid_train_subset, class_weights, lr_at, parse_size, set_train_mode,
                                      with_unet_base)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)



# ------------------------------------------------------------------ batches


def camvid_batch(images: torch.Tensor | Sequence[torch.Tensor], labels: torch.Tensor | Sequence[torch.Tensor],
                 idx: torch.Tensor, generator: torch.Generator, augment: frozenset[str] = BASIC,
                 void: int = CAMVID.ignore_index,
                 num_classes: int = CAMVID.num_classes) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 224x176 crops (at a random scale of 0.5-0.75 of full resolution with ``scale``)
    and the other enabled augmentations (:mod:`segdemo.training.augment`).

    ``images``: N x 3 x H x W uint8, ``labels`` N x H x W, stored at ``TRAIN_STORE_SCALE``
    of full resolution (CamVid: of 480x360); a list of 3 x H x W images of different
    sizes works too (Penn-Fudan). A window of the size that becomes a 224x176 crop at
    the drawn scale is cut out first and only that window is resized (cheap on a CPU).
    ``void`` fills label pixels a rotation brings in from outside.
    With ``cutmix`` / ``mixup`` the crops are then mixed pairwise
    (:func:`segdemo.training.mixing.mix_batch`); with ``mixup`` the labels are soft, N x C x H x W.
    """
    crop_w, crop_h = CAMVID_CROP
    out_x, out_y = [], []
    for i in idx.tolist():
        image, label = images[i], labels[i]
        scale = random_scale(augment, generator)
        top, left, win_h, win_w = scaled_window(image.shape[-2], image.shape[-1], CAMVID_CROP,
                                                TRAIN_STORE_SCALE, scale, generator)
        img, lbl = resize_pair(image[None, :, top : top + win_h, left : left + win_w],
                               label[None, top : top + win_h, left : left + win_w], (crop_h, crop_w))
        img, lbl = augment_crop(img, lbl, augment, generator, void)
        out_x.append(img)
        out_y.append(lbl)
    x, y = torch.cat(out_x), torch.cat(out_y)
    if augment & MIXING:
        x, y = mix_batch(x, y, augment, generator, num_classes, void)
    return normalize(x, IMAGENET_MEAN, IMAGENET_STD), (y if y.is_floating_point() else y.long())


def isbi_batch(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, in_tile: int, out_tile: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tiles of mirror-padded slices, flips/rotations and elastic deformation.

    ``images`` are already mirror-padded by the margin; the label tile is the centre
    ``out_tile`` of the input tile (what the unpadded net predicts).
    """
    margin = (in_tile - out_tile) // 2
    xs, ys = [], []
    span = images.shape[-1] - in_tile  # windows whose outputs cover the whole slice
    for i in idx.tolist():
        top = int(torch.randint(0, span + 1, (1,), generator=generator))
        left = int(torch.randint(0, span + 1, (1,), generator=generator))
        xs.append(images[i : i + 1, :, top : top + in_tile, left : left + in_tile])
        # labels are padded the same way as the images
        ys.append(labels[i : i + 1, top : top + in_tile, left : left + in_tile])
    x = torch.cat(xs).float()
    y = torch.cat(ys)
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    if torch.rand(1, generator=generator).item() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if torch.rand(1, generator=generator).item() < 0.7:
        x, y = elastic_deform(x, y, alpha=1.0, sigma=10.0, grid=3, generator=generator)
    y = y[..., margin : margin + out_tile, margin : margin + out_tile]
    return normalize(x, ISBI_MEAN, ISBI_STD), y.long()


# ------------------------------------------------------------------ weights io


def save_weights(model: nn.Module, path: Path, half: bool) -> None:
    """Write the state dict as safetensors (floating tensors in fp16 when ``half``)."""
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        sd[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> nn.Module:
    """Load safetensors weights (any float precision) into ``model`` in its own dtype."""
    sd = load_file(str(path))
    own = model.state_dict()
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=strict)
    return model


# ------------------------------------------------------------------ training


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                next_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int, device: torch.device,
                strategy: str, lr_of_step: Callable[[int], float],
                on_step: Callable[[int, float], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                ) -> float | None:
    """One epoch of ``steps`` optimizer steps; the mean loss, or None when ``should_stop`` said so.

    The one training loop of segdemo: the CLI and the in-app lab both run it.
    ``lr_of_step(step)`` is the base learning rate; each parameter group scales it by
    its ``lr_mult`` (see :func:`apply_strategy`). ``on_step(step, running mean loss)``
    reports progress. ``loss_fn(logits, x, y)``, when given, replaces ``criterion(logits, y)``
    (distillation: :class:`segdemo.training.distill.DistillationLoss`).
    """
    set_train_mode(model, strategy)
    running = 0.0
    for step in range(steps):
        if should_stop is not None and should_stop():
            return None
        for g in optimizer.param_groups:
            g["lr"] = lr_of_step(step) * g.get("lr_mult", 1.0)
        x, y = next_batch(step)
        x, y = x.to(device), y.to(device)
        logits = model(x)  # the bare network: U-Net trains on single tiles
        loss = criterion(logits, y) if loss_fn is None else loss_fn(logits, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if on_step is not None:
            on_step(step, running / (step + 1))
    return running / max(steps, 1)


def train(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Train per ``args`` and write weights + model card; returns the card."""
    recipe = RECIPES[args.model]
    if getattr(args, "unet_base", 0):
        recipe = with_unet_base(recipe, args.unet_base)
    if args.dataset != recipe.dataset:
        raise SystemExit(f"{args.model} is trained on {recipe.dataset}, not {args.dataset}")
    name = args.name or f"{args.model}_{args.dataset}"
    run_dir = Path(args.run_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out_dir)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    label_set = {"camvid": CAMVID, "pennfudan": PERSON}.get(recipe.dataset, ISBI)
    photos = recipe.dataset in ("camvid", "pennfudan")  # random crops of photos (camvid_batch)

    model = build(recipe)
    strategy = getattr(args, "strategy", "scratch")
    augment = parse_augmentations(getattr(args, "augment", "scale,flip"))
    param_groups = apply_strategy(model, strategy, getattr(args, "backbone", None), args.lr)
    model = model.to(device)
    if args.init_from:
        parent_recipe = RECIPES[args.init_parent] if args.init_parent else None
        if parent_recipe is None:
            stem = Path(args.init_from).stem.split("_")[0]
            parent_recipe = RECIPES[stem]
        parent = load_weights(build(parent_recipe), Path(args.init_from))
        model.init_from_parent(parent.to(device))  # type: ignore[operator]
        print(f"initialised from {args.init_from} (new skip scores start at zero)", file=sys.stderr)

    # ---- data in memory
    t0 = time.monotonic()
    if recipe.dataset == "camvid":
        store_size = (round(480 * TRAIN_STORE_SCALE), round(360 * TRAIN_STORE_SCALE))
        imgs, lbls, _ = datasets.load_camvid("train", size=store_size)
        subset = camvid_train_subset(getattr(args, "train_size", 0), len(imgs), args.seed)
        imgs, lbls = imgs[subset], lbls[subset]
        train_x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
        train_y = torch.from_numpy(lbls)
        weights = class_weights(lbls, label_set.num_classes, label_set.ignore_index)
        ignore = label_set.ignore_index
    elif recipe.dataset == "pennfudan":
        from segdemo.data.pennfudan import load_pennfudan_semantic

        imgs, lbls, _ = load_pennfudan_semantic("train", round(PENNFUDAN_FULL_SHORT_SIDE * TRAIN_STORE_SCALE))
        train_x = [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in imgs]
        train_y = [torch.from_numpy(lbl) for lbl in lbls]
        weights = class_weights(lbls, label_set.num_classes, label_set.ignore_index)
        ignore = label_set.ignore_index
    else:
        in_tile = recipe.extra["tile_input"]
        out_tile = recipe.builder_kwargs["tile_output"]
        margin = (in_tile - out_tile) // 2
        from segdemo.models.unet import valid_output_size

        depth = recipe.builder_kwargs["depth"]
        if recipe.builder_kwargs.get("padding") == "valid" and valid_output_size(in_tile, depth) != out_tile:
            raise ValueError(f"tile_input {in_tile} gives {valid_output_size(in_tile, depth)} outputs, "
                             f"not tile_output {out_tile}")
        imgs, lbls = datasets.load_isbi(ISBI_TRAIN_SLICES)
        train_x = mirror_pad(torch.from_numpy(imgs)[:, None].float(), margin, margin, margin, margin)
        train_y = mirror_pad(torch.from_numpy(lbls)[:, None].float(), margin, margin, margin, margin)[:, 0].long()
        weights = class_weights(lbls, label_set.num_classes, None)
        ignore = -100
    print(f"data loaded in {time.monotonic() - t0:.1f}s: {len(train_x)} training images; "
          f"class weights {np.round(weights.numpy(), 2).tolist()}", file=sys.stderr)

    criterion = SegmentationLoss(weight=weights.to(device), ignore_index=ignore)  # hard or soft (MixUp) targets
    from segdemo.training.distill import loss_from_args

    loss_fn = loss_from_args(args, criterion, ignore, device)  # None unless --teacher
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr, weight_decay=args.weight_decay)
    batch_size = args.batch_size or recipe.batch_size
    if photos:
        steps_per_epoch = max(len(train_x) // batch_size, 1)
    else:
        steps_per_epoch = args.isbi_steps
    total_steps = steps_per_epoch * args.epochs
    warmup = min(steps_per_epoch, total_steps // 10) if not args.init_from else 0

    start_epoch = 0
    ckpt_path = run_dir / "last.pt"
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt["epoch"])
        print(f"resumed from {ckpt_path} after epoch {start_epoch}", file=sys.stderr)

    history: list[dict[str, float]] = []
    if (run_dir / "history.json").exists() and start_epoch:
        history = json.loads((run_dir / "history.json").read_text())[:start_epoch]
    train_start = time.monotonic()
    stop = min(args.epochs, args.stop_after) if args.stop_after else args.epochs
    for epoch in range(start_epoch, stop):
        # Every epoch reseeds from (seed, epoch): a resumed run continues identically.
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        torch.manual_seed(args.seed * 1000 + epoch)
        if photos:
            order = torch.randperm(len(train_x), generator=gen)

            def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                idx = order[step * batch_size : (step + 1) * batch_size]
                return camvid_batch(train_x, train_y, idx, gen, augment, ignore, label_set.num_classes)
        else:
            def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
                idx = torch.randint(0, len(train_x), (batch_size,), generator=gen)
                return isbi_batch(train_x, train_y, idx, in_tile, out_tile, gen)
        bar = TextProgress(f"epoch {epoch + 1}/{args.epochs}", steps_per_epoch, unit="steps")
        running = train_epoch(model, optimizer, criterion, next_batch, steps_per_epoch, device, strategy,
                              lr_of_step=lambda s, e=epoch: lr_at(e * steps_per_epoch + s, total_steps, args.lr, warmup),
                              on_step=lambda s, loss: bar.update(s + 1, info=f"loss {loss:.4f}"), loss_fn=loss_fn)
        bar.close()
        entry = {"epoch": epoch + 1, "loss": running,
                 "seconds": round(time.monotonic() - train_start, 1)}
        if loss_fn is not None:
            entry.update(loss_fn.epoch_summary())
        if args.eval_every and ((epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs):
            if recipe.dataset == "camvid":
                res = evaluate_camvid(model, device, indices=CAMVID_VAL_SUBSET, with_boundary=False)
            elif recipe.dataset == "pennfudan":
                res = evaluate_pennfudan(model, device, with_boundary=False)
            else:
                res = evaluate_isbi(model, device, with_boundary=False)
            entry["val_miou_quick"] = round(res.miou, 4)
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1},
                   ckpt_path)
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    train_seconds = history[-1]["seconds"] if history else 0.0
    if stop < args.epochs:
        print(f"stopped after epoch {stop} of {args.epochs}; continue with --resume", file=sys.stderr)
        return {}

    # ---- store, reload the stored weights, measure, write the card
    weights_path = out_dir / f"{name}.safetensors"
    save_weights(model, weights_path, half=not args.fp32)
    save_weights(model, run_dir / "final_fp32.safetensors", half=False)
    stored = load_weights(build(recipe), weights_path).to(device)
    print("evaluating the stored weights on val ...", file=sys.stderr)
    by_size: dict[str, float] = {}
    if recipe.dataset == "camvid":
        eval_size = parse_size(getattr(args, "eval_size", "240x180"))
        full = evaluate_camvid(stored, device, size=eval_size)
        subset = evaluate_camvid(stored, device, indices=CAMVID_VAL_SUBSET, size=eval_size)
        in_shape = (1, 3, eval_size[1], eval_size[0])
        if recipe.builder.startswith(("deeplabv3_mobilenet_v2", "lraspp_mobilenet_v2")):
            for size in CAMVID_EVAL_SIZES:
                res = full if size == eval_size else evaluate_camvid(stored, device, size=size, with_boundary=False)
                by_size[f"{size[0]}x{size[1]}"] = round(res.miou, 4)
    elif recipe.dataset == "pennfudan":
        eval_size = parse_size(getattr(args, "eval_size", "360x270"))
        full = evaluate_pennfudan(stored, device, short_side=eval_size[1])
        subset = full
        in_shape = (1, 3, eval_size[1], eval_size[0])
    else:
        full = evaluate_isbi(stored, device)
        subset = full
        in_shape = (1, 1, 512, 512)
    n_all, n_train = count_params(stored), count_params(stored, trainable_only=True)
    ms = inference_ms(stored.cpu(), in_shape, torch.device("cpu"))
    card = make_card(args, argv, recipe, name, label_set, full, subset, n_all, n_train, ms, weights_path,
                     history, train_seconds, device)
    if loss_fn is not None:
        loss_fn.annotate_card(card, stored.cpu(), in_shape)
    if by_size:
        card["val_by_input_size"] = {"miou": by_size, "note": "full val (101 images), scored at 480x360; "
                                     "the model's native input is the card's preprocess.resize_size"}
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"name": name, "val_miou": card["metrics"]["miou"],
                      "boundary_f1": card["metrics"]["boundary_f1"]}), file=sys.stderr)
    return card
