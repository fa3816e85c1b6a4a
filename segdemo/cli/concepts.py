"""``python -m segdemo concepts ...``: the labs' numbers on the command line.

* ``concepts rf --preset vgg16`` (or ``--layers "k,s,d;k,s,d"``): the receptive-field
  recurrence layer by layer, checked against autograd;
* ``concepts separable -H 3 -W 3 -C 256 -n 256``: parameter and MAC counts of a
  standard vs depthwise-separable convolution, measured on the real modules.
"""

from __future__ import annotations

import argparse
from typing import Any

from segdemo.labs import receptive_field as rf
from segdemo.labs import separable as sep


def parse_layers(text: str) -> list[rf.Layer]:
    """"k,s,d;k,s,d;..." -> layers (stride and dilation default to 1)."""
    layers = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        values = [int(v) for v in part.split(",")]
        if not 1 <= len(values) <= 3:
            raise ValueError(f"layer {i + 1}: expected k[,s[,d]], got {part!r}")
        k, s, d = (values + [1, 1])[:3]
        layers.append(rf.Layer(f"layer{i + 1}", k, s, d))
    return layers


def _cmd_rf(args: argparse.Namespace) -> int:
    try:
        layers = parse_layers(args.layers) if args.layers else rf.PRESETS[args.preset]
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(f"{'#':>3} {'layer':<22} {'k':>3} {'s':>2} {'d':>8} {'k_eff':>6} {'j_in':>5} {'r_out':>6} {'j_out':>6}")
    for row in rf.rf_table(layers):
        print(f"{row.index:>3} {row.name:<22} {row.kernel:>3} {row.stride:>2} {row.dilation:>8} {row.k_eff:>6} "
              f"{row.j_in:>5} {row.r_out:>6} {row.j_out:>6}")
    r, j = rf.theoretical_rf(layers)
    try:
        exact = rf.exact_rf(layers)
    except ValueError as exc:
        print(f"receptive field {r} x {r}, jump {j} (autograd skipped: {exc})")
        return 0
    _, _, h, w = exact.bbox
    agree = "agrees" if (h, w) == (r, r) else "DISAGREES"
    print(f"receptive field {r} x {r}, jump {j}; autograd {h} x {w} ({agree}); "
          f"holes {exact.holes}, coverage {exact.coverage:.1%}")
    return 0 if agree == "agrees" else 1


def _cmd_separable(args: argparse.Namespace) -> int:
    r = sep.separable_report(args.kernel_h, args.kernel_w, args.channels, args.filters, args.size, args.size,
                             bias=args.bias, measure_time=args.time)
    print(f"standard   H*W*C*n{' + n' if args.bias else ''} = {r.standard_formula:,}  "
          f"(modules: {r.standard_params:,}), MACs {r.standard_macs:,}")
    print(f"separable  H*W*C + C*n{' + C + n' if args.bias else ''} = {r.separable_formula:,}  "
          f"(modules: {r.separable_params:,}), MACs {r.separable_macs:,}")
    print(f"ratio params {r.param_ratio:.4f}, MACs {r.mac_ratio:.4f}, 1/n + 1/(H*W) = "
          f"{1 / args.filters + 1 / (args.kernel_h * args.kernel_w):.4f}")
    if args.time:
        print(f"time standard {r.standard_ms:.3f} ms, separable {r.separable_ms:.3f} ms (CPU, 1 thread)")
    ok = r.standard_params == r.standard_formula and r.separable_params == r.separable_formula
    return 0 if ok else 1


def add_subcommand(subparsers: Any) -> None:
    """Register ``concepts`` with its ``rf`` and ``separable`` subcommands."""
    parser = subparsers.add_parser("concepts", help="receptive fields and separable-convolution counts")
    sub = parser.add_subparsers(dest="concept", required=True)
    p_rf = sub.add_parser("rf", help="receptive field of a layer stack: recurrence vs autograd")
    group = p_rf.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=sorted(rf.PRESETS), default="context_module")
    group.add_argument("--layers", help='"k,s,d;k,s,d;..." e.g. "3,1,2;3,1,2;3,1,2"')
    p_rf.set_defaults(func=_cmd_rf)
    p_sep = sub.add_parser("separable", help="standard vs depthwise-separable convolution counts")
    p_sep.add_argument("-H", "--kernel-h", type=int, default=3, help="kernel height")
    p_sep.add_argument("-W", "--kernel-w", type=int, default=3, help="kernel width")
    p_sep.add_argument("-C", "--channels", type=int, default=256, help="input channels")
    p_sep.add_argument("-n", "--filters", type=int, default=256, help="output channels")
    p_sep.add_argument("--size", type=int, default=32, help="feature map side (pixels)")
    p_sep.add_argument("--bias", action="store_true")
    p_sep.add_argument("--time", action="store_true", help="also measure the time")
    p_sep.set_defaults(func=_cmd_separable)
