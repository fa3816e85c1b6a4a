"""``python -m segdemo bench``: time segdemo's predict path against the bare forward and
torchvision's reference recipe (the measuring is :mod:`segdemo.inference.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from segdemo import config
from segdemo.inference import devices
from segdemo.inference.bench import (DEFAULT_IMAGE, DEFAULT_SIZE, WHOLE_GOAL, BenchResult, available_models,
                                     run_benchmark)


def format_table(results: Sequence[BenchResult]) -> str:
    """The results as a fixed-width text table with per-stage times, ratios and agreement."""
    header = ("model", "weights", "input", "bare", "whole", "ref", "+seg", "+ref",
              "whole/bare", "whole/ref", "norm w/b", "norm w/r", "agree", "goal")
    rows = [header]
    for r in results:
        rows.append((
            r.model, "RANDOM" if r.random_weights else "trained", f"{r.input_size[1]}x{r.input_size[0]}",
            f"{r.bare_ms:.1f}", f"{r.whole_ms:.1f}", f"{r.reference_ms:.1f}",
            f"{r.overhead_ms:.1f}", f"{r.reference_overhead_ms:.1f}",
            f"{r.whole_over_bare:.3f}x", f"{r.whole_over_reference:.3f}x",
            f"{r.normalised_whole_over_bare:.3f}x", f"{r.normalised_whole_over_reference:.3f}x",
            f"{r.agreement:.4f}", "met" if r.meets_goal else "MISSED",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append("Stages (median ms):")
    for r in results:
        ws = " + ".join(f"{k} {v:.1f}" for k, v in r.whole_stages_ms.items())
        rs = " + ".join(f"{k} {v:.1f}" for k, v in r.reference_stages_ms.items())
        lines.append(f"  {r.model}")
        lines.append(f"    segdemo  : {ws}")
        lines.append(f"    reference: {rs}")
    return "\n".join(lines)


def describe_run(results: Sequence[BenchResult], device: str, image_path: Path, size: int | None,
                 warmup: int, short_side: int | None = None) -> str:
    """Header lines: device, threads, versions, test image, input size, repeats."""
    import torchvision

    first = results[0] if results else None
    lines = [
        f"device: {device} — {devices.device_name(device)}; torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, {torch.get_num_threads()} threads",
        f"image: {image_path.name}" + (f" re-encoded with shorter side {short_side} (JPEG q95)" if short_side else "")
        + (f" ({first.image_size[0]}x{first.image_size[1]}), network input {first.input_size[1]}x"
           f"{first.input_size[0]} (shorter side {size})" if first else ""),
        f"runs: {warmup} warm-up + {first.repeats if first else 0} timed per path, interleaved; medians in ms"
        + ("; float16" if first and first.half else ""),
        "whole = decode + preprocess + forward + upsample/labels + overlay; "
        "ref = PIL decode + weights.transforms() + forward + upsample + argmax + draw_segmentation_masks",
        "+seg / +ref = each path's time outside its forward pass; norm w/b = (bare + +seg) / bare and "
        "norm w/r = (bare + +seg) / (bare + +ref): the ratios with one forward time for all paths "
        "(the forward is the same computation; its run-to-run noise would otherwise dominate)",
        f"goal (on the normalised ratios): whole/bare <= {WHOLE_GOAL:.2f} and whole/ref < 1",
    ]
    if any(r.random_weights for r in results):
        lines.append("RANDOM = no weights on disk, random initialisation (--allow-random): times are "
                     "representative, labels are not (agreement then compares the pipelines only).")
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``python -m segdemo bench`` (also used by the ``bench`` subcommand)."""
    parser = parser or argparse.ArgumentParser(prog="python -m segdemo bench",
                                               description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", metavar="NAME", help="model names (default: every available model)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="shorter side fed to the network (0: original)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per path (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs per path")
    parser.add_argument("--device", choices=devices.available_devices(), default=None,
                        help="default: the best available (CUDA > MPS > CPU)")
    parser.add_argument("--half", action="store_true", help="float16 (CUDA only)")
    parser.add_argument("--image", default=str(DEFAULT_IMAGE), help="test image (default: assets/samples/astronaut.jpg)")
    parser.add_argument("--short-side", type=int, default=None,
                        help="re-encode the test image with this shorter side first (e.g. 520)")
    parser.add_argument("--allow-random", action="store_true", default=None,
                        help="also models without weights, with random weights (or SEGDEMO_ALLOW_RANDOM_WEIGHTS=1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--load", action="store_true",
                        help="load benchmark: concurrent Streamlit sessions upload to one server (issue 15)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 30],
                        help="with --load: session counts to run in turn (default 1 10 30)")
    parser.add_argument("--ui", action="store_true",
                        help="browser timing of the Segment page in Chromium (first render, display changes)")
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments and print the table."""
    if args.load or args.ui:
        from segdemo.serving import cli as serving_cli

        return serving_cli.run_load_cli(args) if args.load else serving_cli.run_ui_cli(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or devices.auto_device()
    if args.half and not devices.supports_half(device):
        print("--half needs a CUDA device", file=sys.stderr)
        return 2
    size = args.size or None
    allow_random = args.allow_random if args.allow_random is not None else config.allow_random_weights()
    if not available_models(args.models, allow_random):
        print("no model has weights on disk; run `python -m segdemo weights download NAME` or pass "
              "--allow-random to time random-weight networks", file=sys.stderr)
        return 1
    results = run_benchmark(args.models, size, args.repeats, args.warmup, device, args.half, allow_random,
                            args.image, log=lambda m: print(m, file=sys.stderr, flush=True),
                            short_side=args.short_side)
    print(describe_run(results, device, Path(args.image), size, args.warmup, args.short_side))
    print()
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_json() for r in results], indent=2), encoding="utf-8")
    return 0


def add_subcommand(subparsers: Any) -> None:
    """``python -m segdemo bench ...``."""
    parser = subparsers.add_parser("bench", help="time segdemo's predict path against the bare forward "
                                                  "and torchvision's reference recipe")
    build_parser(parser)
    parser.set_defaults(func=run_cli)
