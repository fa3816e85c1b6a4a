"""``python -m segdemo``: the command line, one thin module per subcommand.

Each module in ``COMMAND_MODULES`` (all in this package) parses its arguments,
calls the library and prints; it defines ``add_subcommand(subparsers)`` and
sets ``func`` on its parser; ``func(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "segdemo.cli.weights",
    "segdemo.cli.predict",
    "segdemo.cli.data",
    "segdemo.cli.train",
    "segdemo.cli.eval",
    "segdemo.cli.pq",
    "segdemo.cli.concepts",
    "segdemo.cli.bench",
    "segdemo.cli.train_instance",
    "segdemo.cli.compare",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every feature's subcommand."""
    parser = argparse.ArgumentParser(prog="python -m segdemo", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_subcommand(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
