"""``gtaudit trace <object-id>``: who labeled and audited one object, when, how long, with what verdict.

Also each worker's IoU on the object, against the consensus and, for a gold object, against the
known truth (the ``score`` items consolidation recorded), and for an audit of a seeded object the
defect shown and what the auditor made of it.
"""

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
        help="the full lineage of one object: every task and verdict, every round, each worker's IoU",
        description=(
            "Print every labeling, rework and audit task of one object (by its object-id), in order, and each "
            "worker's IoU on it against the consensus and (a gold object) the known truth."
        ),
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


def format_scores(scores: list[dict[str, Any]]) -> list[str]:
    """The ``object_scores`` rows as text lines: one per (job, worker), per class after the overall IoU."""
    from gtaudit.trace.columns import cell

    if not scores:
        return []
    lines = ["IoU against the consensus / the gold truth"]
    for s in scores:
        classes = ", ".join(
            f"{name} {cell('consensus_iou', v['consensus'])}/{cell('gold_iou', v['gold'])}"
            for name, v in s["classes"].items()
        )
        seeded = f"  [audit shown: {s['seeded']}]" if s["seeded"] else ""
        lines.append(
            f"  {s['worker_id']}  consensus {cell('consensus_iou', s['consensus_iou'])}  "
            f"gold {cell('gold_iou', s['gold_iou'])}  job {s['job']}" + (f"  ({classes})" if classes else "") + seeded
        )
    return lines


def format_lineage(object_id: str, items: list[dict[str, Any]]) -> str:
    """The lineage as text: one line per task, verdicts beside the audits that gave them, then the IoUs."""
    from gtaudit.trace.quality import object_scores

    tasks = [i for i in items if i.get("kind") == "task"]
    scores = object_scores(items)
    if not tasks and not scores:
        return f"no records for object {object_id}\n"
    gold = " (a gold object)" if any(s["gold"] for s in scores) else ""
    lines = [f"object {object_id}{gold}: {len(tasks)} task(s)"]
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
            if it.get("seeded"):
                verdict += f"  [seeded {it['seeded']}: {it.get('seeded_outcome') or 'no verdict'}]"
        missing = f"  [file lacks {', '.join(it['missing'])}]" if it.get("missing") else ""
        lines.append(
            f"  {stage:<8} {it.get('worker_id')}  accepted {it.get('accepted_at') or '-'}  "
            f"submitted {it.get('submitted_at') or '-'}  active {_duration(it.get('active_seconds'))}  "
            f"wall {_duration(it.get('wall_seconds'))}  job {it.get('job')}{verdict}{missing}"
        )
    lines += format_scores(scores)
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Query the object's partition and print it; exit code 1 if the object has no records."""
    from gtaudit.trace import lineage
    from gtaudit.trace.quality import object_scores

    from gtaudit_local.project import ProjectError

    try:
        with trace_table(args) as (ddb, table):
            items = lineage(ddb, table, args.object_id)
    except (TraceTableNotFoundError, ProjectError) as exc:
        print(f"gtaudit trace: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        keep = [{k: v for k, v in it.items() if not k.endswith(("_pk", "_sk"))} for it in items]
        doc = {"object_id": args.object_id, "scores": object_scores(items), "records": keep}
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_lineage(args.object_id, items))
    return 0 if items else 1
