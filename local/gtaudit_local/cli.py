"""The ``gtaudit`` command. Each subcommand lives in ``gtaudit_local.commands.<name>`` with ``register``.

Exit codes: what the command returns; 2 with one ``gtaudit: error: ...`` line for input it cannot
use (:class:`~gtaudit_local.commands.CommandError`, as argparse for a bad flag); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gtaudit_local.commands import CommandError

# Each module defines ``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
COMMANDS: tuple[str, ...] = ("preview", "report", "trace", "overlay", "export", "start", "demo", "invoke")


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
    except CommandError as exc:
        print(f"gtaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
