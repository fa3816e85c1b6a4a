"""``python -m segdemo train``: train one of segdemo's own models and write its model card
(recipes in :mod:`segdemo.training.recipes`, the loop in :mod:`segdemo.training.loop`)."""

from __future__ import annotations

import argparse
import sys

from segdemo import config
from segdemo.data import datasets
from segdemo.training.augment import AUGMENTATIONS
from segdemo.training.distill import DEFAULT_MIX, DEFAULT_TEMPERATURE
from segdemo.training.loop import train
from segdemo.training.recipes import RECIPES, RUNS_DIR, STRATEGIES


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """``python -m segdemo train --model fcn8s --dataset camvid ...``."""
    p = subparsers.add_parser("train", help="train one of segdemo's own models")
    p.add_argument("--model", required=True, choices=sorted(RECIPES))
    p.add_argument("--dataset", required=True, choices=["camvid", "isbi2012", "pennfudan"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=0, help="0: the recipe's default")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--init-from", default=None, help="parent weights (FCN-32s -> 16s -> 8s)")
    p.add_argument("--init-parent", default=None, choices=sorted(RECIPES),
                   help="the parent's recipe (default: from the file name)")
    p.add_argument("--backbone", default="mobilenet_v2_imagenet",
                   help="pretrained backbone for models that have one (see `weights list`)")
    p.add_argument("--strategy", default="scratch", choices=STRATEGIES,
                   help="scratch | frozen (feature extraction) | finetune | discriminative (backbone lr x0.1)")
    p.add_argument("--train-size", type=int, default=0, help="CamVid: train on N images (0: all 367)")
    p.add_argument("--augment", default="scale,flip",
                   help=f"CamVid augmentations, comma-separated from {','.join(AUGMENTATIONS)} (or none)")
    p.add_argument("--eval-size", default="240x180",
                   help="CamVid: network input (WIDTHxHEIGHT) for the card's val scores and the app's native size")
    p.add_argument("--unet-base", type=int, default=0, help="U-Net: channels of the first level (0: the recipe's 16)")
    p.add_argument("--isbi-steps", type=int, default=40, help="steps per 'epoch' on ISBI")
    p.add_argument("--eval-every", type=int, default=5, help="quick val mIoU every N epochs (0: never)")
    p.add_argument("--name", default=None, help="output name (default <model>_<dataset>)")
    p.add_argument("--out-dir", default=str(config.SHIPPED_MODELS_DIR))
    p.add_argument("--run-dir", default=str(RUNS_DIR), help="checkpoints for --resume")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/<name>/last.pt")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop after this many epochs (split a long run; continue with --resume)")
    p.add_argument("--teacher", default=None, help="distil from this shipped model (e.g. lraspp_mobilenet_v2_camvid)")
    p.add_argument("--kd-temperature", type=float, default=DEFAULT_TEMPERATURE, help="distillation temperature T")
    p.add_argument("--kd-mix", type=float, default=DEFAULT_MIX,
                   help="weight of the distillation term: (1 - mix) * CE + mix * T^2 * KL")
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
    p.add_argument("--offline-default", action="store_true", help="mark as the app's offline default model")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    argv = sys.argv[sys.argv.index("train") + 1 :] if "train" in sys.argv else []
    try:
        train(args, argv)
    except datasets.DatasetMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
