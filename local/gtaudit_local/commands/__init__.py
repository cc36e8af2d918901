"""One module per CLI subcommand, each with ``register(subparsers)``; and how a command reports bad input.

A command that cannot use what it was given raises :class:`CommandError`; ``gtaudit_local.cli``
prints it as one line, ``gtaudit: error: <message>``, and exits with 2 (as argparse does for a
bad flag), never a traceback. The readers here raise it for the files and folders named on the
command line, each message naming the path and what is wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class CommandError(Exception):
    """Input the command cannot use: a missing file, a file that is not what it should be."""


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the file given as ``what`` (e.g. ``"--event"``).

    Raises
    ------
    CommandError
        The file does not exist, cannot be read, or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CommandError(f"{what} not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"{what} is not UTF-8 text: {path} (byte {exc.start})") from exc
    except OSError as exc:
        raise CommandError(f"{what} cannot be read: {path} ({exc.strerror or exc})") from exc


def read_json(path: Path, what: str) -> Any:
    """The JSON document in the file given as ``what``.

    Raises
    ------
    CommandError
        As :func:`read_text`, or the text is not JSON.
    """
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} is not JSON: {path} (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc


def existing_folder(path: Path, what: str) -> Path:
    """``path``, checked to be an existing folder.

    Raises
    ------
    CommandError
        Nothing is there, or it is not a folder.
    """
    if not path.exists():
        raise CommandError(f"{what} not found: {path}")
    if not path.is_dir():
        raise CommandError(f"{what} is not a folder: {path}")
    return path
