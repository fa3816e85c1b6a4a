"""``python -m segdemo bench --load`` and ``--ui``: the serving benchmarks' printing (the
measuring is :mod:`segdemo.serving.load_bench` and :mod:`segdemo.serving.ui_bench`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


def _header(kind: str) -> str:
    import torch

    cpus = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{kind} benchmark on {platform.node()}: {cpus} CPUs, GPU {gpu}, torch {torch.__version__}; "
            "figures on a shared machine are noisy (other processes take CPU time)")


def run_load_cli(args: argparse.Namespace) -> int:
    """Run the load benchmark for each ``--sessions`` count and print the table."""
    from segdemo.serving.load_bench import format_results, run_load

    env = {"SEGDEMO_ALLOW_RANDOM_WEIGHTS": "1"} if args.allow_random else {}
    if args.threads:
        env["SEGDEMO_TORCH_THREADS"] = str(args.threads)
    results = run_load(args.sessions, env, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(_header("load"))
    print(format_results(results))
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1), encoding="utf-8")
    return 1 if any(r.errors for r in results if r.sessions < 100) else 0


def run_ui_cli(args: argparse.Namespace) -> int:
    """Time the Segment page in Chromium and print the figures."""
    from segdemo.serving.ui_bench import format_ui, run_ui

    figures = run_ui(log=lambda m: print(m, file=sys.stderr, flush=True))
    print(_header("browser (Chromium 1280x800)"))
    print(format_ui(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0
