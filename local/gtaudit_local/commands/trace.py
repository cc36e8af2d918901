"""``gtaudit trace <object-id>``: who labeled and audited one object, when, how long, with what verdict."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gtaudit.exceptions import TraceTableNotFoundError

from gtaudit_local.commands.report import add_table_arguments, trace_table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``trace`` subcommand."""
    p = subparsers.add_parser(
        "trace",
        help="the full lineage of one object: every task and verdict, every round",
        description="Print every labeling, rework and audit task of one object (by its object-id), in order.",
    )
    p.add_argument("object_id", help="the object's ID (the manifests' object-id)")
    add_table_arguments(p)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(func=run)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, sec = divmod(round(float(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes else f"{sec}s"


def format_lineage(object_id: str, items: list[dict[str, Any]]) -> str:
    """The lineage as text: one line per task, verdicts beside the audits that gave them."""
    tasks = [i for i in items if i.get("kind") == "task"]
    if not tasks:
        return f"no records for object {object_id}\n"
    lines = [f"object {object_id}: {len(tasks)} task(s)"]
    current = None
    for it in tasks:
        rnd = it.get("round")
        if rnd != current:
            current = rnd
            lines.append(f"round {rnd if rnd is not None else '?'}")
        stage = str(it.get("stage") or "?")
        verdict = ""
        if stage == "audit":
            verdict = f"  verdict {it.get('verdict') or '-'}"
            if it.get("reasons"):
                verdict += f" ({', '.join(it['reasons'])})"
            if it.get("judged"):
                verdict += f" on {', '.join(it['judged'])}"
        missing = f"  [file lacks {', '.join(it['missing'])}]" if it.get("missing") else ""
        lines.append(
            f"  {stage:<8} {it.get('worker_id')}  accepted {it.get('accepted_at') or '-'}  "
            f"submitted {it.get('submitted_at') or '-'}  active {_duration(it.get('active_seconds'))}  "
            f"wall {_duration(it.get('wall_seconds'))}  job {it.get('job')}{verdict}{missing}"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Query the object's partition and print it; exit code 1 if the object has no records."""
    from gtaudit.trace import lineage

    from gtaudit_local.project import ProjectError

    try:
        with trace_table(args) as (ddb, table):
            items = lineage(ddb, table, args.object_id)
    except (TraceTableNotFoundError, ProjectError) as exc:
        print(f"gtaudit trace: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        keep = [{k: v for k, v in it.items() if not k.endswith(("_pk", "_sk"))} for it in items]
        json.dump({"object_id": args.object_id, "records": keep}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_lineage(args.object_id, items))
    return 0 if items else 1
