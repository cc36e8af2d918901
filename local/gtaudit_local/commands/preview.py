"""``gtaudit preview``: open a worker template offline, with a task input, and see the answer it submits."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from gtaudit.exceptions import InvalidTaskInputError

from gtaudit_local.preview import TaskPageServer, folder_reader, load_task_input


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``preview`` subcommand."""
    p = subparsers.add_parser(
        "preview",
        help="serve a worker template on 127.0.0.1 with the local crowd elements",
        description=(
            "Render ui/<template> with a task input (labeling_pre's or audit_pre's taskInput, their whole "
            "response, or their event: events/labeling_pre-*.json, events/audit_pre-*.json) and serve it "
            "on 127.0.0.1. s3://bucket/key URIs are read from --s3-root/bucket/key, "
            "else --s3-root/key. Each submitted answer (answerContent, as GT stores it) is printed as one JSON line."
        ),
    )
    p.add_argument("template", type=Path, help="the Liquid template, e.g. ui/audit.liquid.html")
    p.add_argument(
        "--input",
        required=True,
        type=Path,
        help="task input or pre-annotation event (e.g. ui/examples/audit-input.json)",
    )
    p.add_argument("--s3-root", type=Path, default=Path(), help="folder that stands in for S3 (default: .)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)")
    p.add_argument("--once", action="store_true", help="exit after the first submitted answer")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (or the first answer with ``--once``); return the exit code."""
    try:
        template = args.template.read_text(encoding="utf-8")
        stage = "audit" if "audit" in args.template.name else "labeling"
        task_input = load_task_input(json.loads(args.input.read_text(encoding="utf-8")), stage=stage)
    except (OSError, json.JSONDecodeError, InvalidTaskInputError) as exc:
        print(f"gtaudit preview: {exc}", file=sys.stderr)
        return 2

    def show(answer: dict[str, object]) -> None:
        print(json.dumps(answer, ensure_ascii=False), flush=True)

    server = TaskPageServer.from_template(
        template, task_input, folder_reader(args.s3_root), port=args.port, title=args.template.name, on_submit=show
    )
    with server:
        print(f"serving {args.template} at {server.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        # Without --once, serve until Ctrl+C (the CLI turns KeyboardInterrupt into exit code 130).
        if args.once:
            server.wait()
        else:
            threading.Event().wait()
    return 0
