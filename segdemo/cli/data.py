"""``python -m segdemo data download camvid|isbi2012``: fetch the public copies of the data sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segdemo.data import datasets
from segdemo.data.download import TextProgress


def _cmd_download(args: argparse.Namespace) -> int:
    root = Path(args.data_dir) if args.data_dir else None
    try:
        bar = TextProgress(args.dataset)
        datasets.download(args.dataset, root, timeout=args.timeout, progress=bar)
        bar.close()
    except (OSError, ValueError) as exc:  # offline, unwritable folder, not the expected archive
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """``python -m segdemo data download camvid|isbi2012``."""
    data = subparsers.add_parser("data", help="data sets (CamVid, ISBI 2012)")
    sub = data.add_subparsers(dest="data_command", required=True)
    dl = sub.add_parser("download", help="download a data set into the data directory")
    dl.add_argument("dataset", choices=sorted(datasets.SOURCES))
    dl.add_argument("--data-dir", default=None, help="target root (default: $SEGDEMO_DATA_DIR)")
    dl.add_argument("--timeout", type=float, default=15.0, help="network timeout in seconds")
    dl.set_defaults(func=_cmd_download)
