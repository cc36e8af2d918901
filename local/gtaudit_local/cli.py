"""The ``gtaudit`` command. Each subcommand lives in ``gtaudit_local.commands.<name>`` with ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines ``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
COMMANDS: tuple[str, ...] = ("preview", "report", "trace", "overlay", "start", "demo", "invoke")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="gtaudit",
        description="Label and audit semantic-segmentation data on SageMaker Ground Truth, or locally.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"gtaudit_local.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
