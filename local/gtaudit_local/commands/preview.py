"""``gtaudit preview``: open a worker template offline, with a task input, and see the answer it submits.

The page's ``s3://`` objects come from ``--s3-root`` only when it is given: the preview never
reads the working directory (a checkout holds ``.git/``, credentials files, ...) by default. Even
then the server streams only the objects the rendered page references, through the links it
signed when rendering it (:mod:`gtaudit_local.preview`), and never a path outside the folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gtaudit.exceptions import GtauditError

from gtaudit_local.commands import CommandError, existing_folder, read_json, read_text
from gtaudit_local.preview import ObjectReader, TaskPageServer, folder_reader, load_task_input


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``preview`` subcommand."""
    p = subparsers.add_parser(
        "preview",
        help="serve a worker template on 127.0.0.1 with the local crowd elements",
        description=(
            "Render ui/<template> with a task input (labeling_pre's or audit_pre's taskInput, their whole "
            "response, or their event: events/labeling_pre-*.json, events/audit_pre-*.json) and serve it "
            "on 127.0.0.1. With --s3-root, the s3://bucket/key URIs the page references are read from "
            "--s3-root/bucket/key, else --s3-root/key; without it, no object is served. Each submitted answer "
            "(answerContent, as GT stores it) is printed as one JSON line."
        ),
    )
    p.add_argument("template", type=Path, help="the Liquid template, e.g. ui/audit.liquid.html")
    p.add_argument(
        "--input",
        required=True,
        type=Path,
        help="task input or pre-annotation event (e.g. ui/examples/audit-input.json)",
    )
    p.add_argument(
        "--s3-root",
        type=Path,
        default=None,
        help="folder that stands in for S3, e.g. . for the examples (default: none, no object is served)",
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)")
    p.add_argument("--once", action="store_true", help="exit after the first submitted answer")
    p.set_defaults(func=run)


def _no_objects(bucket: str, key: str) -> bytes | None:
    """The reader without ``--s3-root``: every object is absent."""
    return None


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (or the first answer with ``--once``); return the exit code."""
    template = read_text(args.template, "template")
    stage = "audit" if "audit" in args.template.name else "labeling"
    try:
        task_input = load_task_input(read_json(args.input, "--input"), stage=stage)
    except GtauditError as exc:  # not a task input, or an event its pre-annotation step refuses
        raise CommandError(f"--input {args.input}: {exc}") from exc
    reader: ObjectReader = _no_objects
    if args.s3_root is not None:
        reader = folder_reader(existing_folder(args.s3_root, "--s3-root"))

    def show(answer: dict[str, object]) -> None:
        print(json.dumps(answer, ensure_ascii=False), flush=True)

    try:
        server = TaskPageServer.from_template(
            template, task_input, reader, port=args.port, title=args.template.name, on_submit=show
        )
    except OSError as exc:  # the port is taken or not ours to bind
        raise CommandError(f"--port {args.port}: {exc.strerror or exc}") from exc
    with server:
        print(f"serving {args.template} at {server.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        if args.s3_root is None:
            print("no --s3-root: the page's images are not served", file=sys.stderr, flush=True)
        # Serve until Ctrl+C (the CLI turns KeyboardInterrupt into exit code 130), or the first answer
        # with --once. Wait in short slices: Python runs a signal handler in the main thread only,
        # and a main thread blocked without a timeout never sees a signal the kernel gave a server thread.
        while not (args.once and server.wait_submission(timeout=0.5) is not None):
            if not args.once:
                time.sleep(0.5)
    return 0
