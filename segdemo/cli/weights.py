"""``python -m segdemo weights list|download``: which weights are on disk, and pre-fetching them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from segdemo import config
from segdemo.data.download import TextProgress
from segdemo.models import registry, weights


def _format_size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for e in registry.list_models():
        path = weights.locate(e)
        state = "cached" if path else "missing"
        rows.append((e.name, e.display_name, state, _format_size(path.stat().st_size if path else e.weights.size_bytes),
                     str(path) if path else str(config.weights_dir() / e.weights.filename)))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'NAME':<{width[0]}}  {'MODEL':<{width[1]}}  {'STATE':<{width[2]}}  {'SIZE':>{width[3]}}  PATH")
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]:>{width[3]}}  {r[4]}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    if not args.all and not args.name:
        print("name a model or pass --all", file=sys.stderr)
        return 2
    entries = registry.list_models() if args.all else [registry.get(n) for n in args.name]
    failures = 0
    for e in entries:
        if weights.locate(e):
            print(f"{e.name}: already present ({weights.locate(e)})")
            continue

        bar = TextProgress(f"{e.name}:")
        try:
            path = weights.download(e, bar)
            bar.close()
            print(f"{e.name}: saved {path}")
        except weights.WeightsMissingError as exc:
            failures += 1
            print(f"{e.name}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def add_subcommand(subparsers: Any) -> None:
    """``weights list`` and ``weights download [NAME...|--all]``."""
    parser = subparsers.add_parser("weights", help="list or pre-fetch model weights")
    sub = parser.add_subparsers(dest="weights_command", required=True)
    p_list = sub.add_parser("list", help="every model with cached/missing and size")
    p_list.set_defaults(func=_cmd_list)
    p_dl = sub.add_parser("download", help="download weights before a lecture")
    p_dl.add_argument("name", nargs="*", help="model names (see 'weights list')")
    p_dl.add_argument("--all", action="store_true", help="every model with a download address")
    p_dl.set_defaults(func=_cmd_download)
