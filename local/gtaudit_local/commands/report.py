"""``gtaudit report``: worker time, throughput, accuracy and audit outcomes from the traceability table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gtaudit.exceptions import TraceTableNotFoundError


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """``--table`` and ``--stack``: how both trace commands find the table."""
    p.add_argument(
        "--table",
        help="the trace table's name (default: $GTAUDIT_TRACE_TABLE, else the stack's TraceTableName output)",
    )
    p.add_argument("--stack", help="the stack whose TraceTableName output to use (default: $GTAUDIT_STACK or gtaudit)")
    p.add_argument(
        "--project",
        type=Path,
        help="read a local project folder (gtaudit demo --out), running or stopped, instead of a live table",
    )


@contextmanager
def trace_table(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    """``(dynamodb client, table name)`` the trace commands read: a project folder's kept table, or
    the live table the flags, the environment or the stack name (AWS or a running local runtime)."""
    if args.project is not None:
        from gtaudit_local.project import stored_trace_table

        with stored_trace_table(args.project) as found:
            yield found
        return
    import boto3
    from gtaudit.trace.store import resolve_table

    yield boto3.client("dynamodb"), resolve_table(args.table, stack=args.stack)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    from gtaudit.trace.render import FORMATS
    from gtaudit.trace.report import DEFAULT_GOLD_THRESHOLD

    p = subparsers.add_parser(
        "report",
        help="per-worker, per-job and per-day time, accuracy and audit outcomes",
        description=(
            "Report tasks, active and wall hours, objects per hour, first-pass acceptance and rejection rates per "
            "worker, per job and per day; each labeler's IoU against the consensus and gold truths; each "
            "auditor's catch and false-reject rates on seeded objects and agreement with other auditors; "
            "per class agreement and confusion. From the traceability table (queries only, no scan). AWS "
            "settings (AWS_PROFILE, AWS_REGION; AWS_ENDPOINT_URL_DYNAMODB for the local runtime) decide what is read."
        ),
    )
    add_table_arguments(p)
    p.add_argument("--since", help="start date (2026-11-01) or ISO time; default: the first record")
    p.add_argument("--until", help="end date (inclusive) or ISO time; default: the last record")
    p.add_argument("--worker", help="only this worker ID")
    p.add_argument("--job", help="only this labeling, rework or audit job (its tasks and the verdicts on its labels)")
    p.add_argument(
        "--gold-threshold",
        type=_fraction,
        default=DEFAULT_GOLD_THRESHOLD,
        metavar="IOU",
        help=f"flag labelers whose gold IoU is below this (0..1, default {DEFAULT_GOLD_THRESHOLD})",
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of standard output")
    p.set_defaults(func=run)


def _fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Query, aggregate, render; return the exit code."""
    from gtaudit.trace import make_report
    from gtaudit.trace.render import render

    from gtaudit_local.project import ProjectError

    try:
        with trace_table(args) as (ddb, table):
            report = make_report(
                ddb, table, since=args.since, until=args.until, worker=args.worker, job=args.job,
                gold_threshold=args.gold_threshold,
            )  # fmt: skip
    except (TraceTableNotFoundError, ProjectError, ValueError) as exc:
        print(f"gtaudit report: {exc}", file=sys.stderr)
        return 2
    text = render(report, args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
