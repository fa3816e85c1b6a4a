"""``python -m segdemo train-instance``: train an instance segmentation model (Mask R-CNN on
Penn-Fudan); the loop and the card are :mod:`segdemo.training.instance`."""

from __future__ import annotations

import argparse

from segdemo.models.instance_registry import INSTANCE_MODELS_DIR
from segdemo.training.instance import INSTANCE_BUILDERS, train


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-instance``."""
    p = subparsers.add_parser("train-instance", help="train an instance segmentation model (Mask R-CNN)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(INSTANCE_BUILDERS), default="maskrcnn_mobilenet_v2")
    p.add_argument("--dataset", choices=["pennfudan"], default="pennfudan")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=3, help="val AP50 every N epochs (0: only at the end)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N train images (smoke tests)")
    p.add_argument("--name", default="", help="model name (default <model>_<dataset>)")
    p.add_argument("--out-dir", default=str(INSTANCE_MODELS_DIR))
    p.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    p.add_argument("--init-from", default=None,
                   help="start from these stored weights (.safetensors of a finished run; its card is read too)")
    p.set_defaults(func=train)
