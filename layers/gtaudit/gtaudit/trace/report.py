"""Aggregate trace items into the report: per worker, per job, per day (schema ``gtaudit.report/1``).

Definitions (also in docs/traceability.md, "The report"):

- tasks: submitted tasks (worker-response answers), every stage.
- active hours: the sum of ``timeSpentInSeconds``; wall hours: acceptance to submission. Tasks
  whose file lacks those fields count as tasks but add no hours (``tasks_missing_time``).
- objects per hour: tasks with an active time / active hours.
- A labeler's labels are judged once per (labeling job, object, round); with several auditors,
  any reject wins. rejection rate = rejected / judged; first-pass acceptance rate = approved /
  judged among round-1 labels. Verdicts are placed in time by the audit's submission.
- returned tasks: returned or declined tasks from the WorkerActivity log, with their wall time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = "gtaudit.report/1"


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _hours(seconds: float) -> float:
    return round(seconds / 3600.0, 4)


def _role(by_stage: dict[str, int]) -> str:
    """``labeler``, ``auditor``, ``labeler+auditor`` or ``-`` (no submitted task in the period)."""
    labels = sum(n for s, n in by_stage.items() if s != "audit")
    audits = by_stage.get("audit", 0)
    return "+".join(r for r, n in (("labeler", labels), ("auditor", audits)) if n) or "-"


@dataclass
class _Worker:
    tasks: int = 0
    by_stage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    active: float = 0.0
    wall: float = 0.0
    timed: int = 0
    missing_time: int = 0
    objects: set[str] = field(default_factory=set)
    returned: int = 0
    returned_wall: float = 0.0


@dataclass
class _Job:
    stage: str | None = None
    round: int | None = None
    tasks: int = 0
    active: float = 0.0
    wall: float = 0.0
    workers: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    returned: int = 0
    first: str | None = None
    last: str | None = None


@dataclass
class _Day:
    tasks: int = 0
    active: float = 0.0
    wall: float = 0.0
    workers: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    returned: int = 0


def build_report(
    items: Iterable[dict[str, Any]],
    *,
    since: str | None = None,
    until: str | None = None,
    worker: str | None = None,
    job: str | None = None,
    table: str | None = None,
    generated_at: str | None = None,
) -> dict[str, Any]:
    """The report of a set of trace items (as the queries return them).

    Parameters
    ----------
    items
        Task, verdict and activity items; calendar items are ignored.
    since, until, worker, job, table
        The filters the items were queried with, echoed in the report.

    Returns
    -------
    dict
        The ``gtaudit.report/1`` document: ``schema``, ``generated_at``, ``filters``, ``totals``,
        ``workers``, ``jobs``, ``days``.
    """
    workers: dict[str, _Worker] = defaultdict(_Worker)
    jobs: dict[str, _Job] = defaultdict(_Job)
    days: dict[str, _Day] = defaultdict(_Day)
    # (labeler, labeling job, object, round) -> verdicts; (audit job, object) -> verdicts
    judgments: dict[tuple[str, str, str, int | None], list[str]] = defaultdict(list)
    audits: dict[tuple[str, str], list[str]] = defaultdict(list)
    labels: dict[tuple[str, str, int | None], list[str]] = defaultdict(list)  # (labeling job, object, round)
    for it in items:
        kind = it.get("kind")
        t = str(it.get("time") or "")
        day = t[:10] or "unknown"
        if kind == "task":
            w = str(it.get("worker_id") or "unknown")
            job_name = str(it.get("job") or "unknown")
            obj = str(it.get("object_id") or f"?{job_name}")
            stage = str(it.get("stage") or "unknown")
            active, wall = it.get("active_seconds"), it.get("wall_seconds")
            wr, jr, dr = workers[w], jobs[job_name], days[day]
            wr.tasks += 1
            wr.by_stage[stage] += 1
            wr.objects.add(obj)
            jr.stage, jr.round = stage, it.get("round")
            jr.tasks += 1
            jr.workers.add(w)
            jr.objects.add(obj)
            jr.first = min(jr.first or t, t) if t else jr.first
            jr.last = max(jr.last or t, t) if t else jr.last
            dr.tasks += 1
            if isinstance(active, int | float):
                wr.active += active
                wr.timed += 1
                jr.active += active
                dr.active += active
                dr.workers[w] += active
            else:
                wr.missing_time += 1
            if isinstance(wall, int | float):
                wr.wall += wall
                jr.wall += wall
                dr.wall += wall
            verdict = it.get("verdict")
            if stage == "audit" and verdict in ("approve", "reject"):
                audits[(job_name, obj)].append(str(verdict))
        elif kind == "verdict":
            labeler = str(it.get("labeler") or "unknown")
            key = (labeler, str(it.get("labeling_job") or ""), str(it.get("object_id") or ""), it.get("round"))
            judgments[key].append(str(it.get("verdict")))
            labels[(key[1], key[2], key[3])].append(str(it.get("verdict")))
        elif kind == "activity":
            w = str(it.get("worker_id") or "unknown")
            job_name = str(it.get("job") or "unknown")
            wall = it.get("wall_seconds")
            workers[w].returned += 1
            jobs[job_name].returned += 1
            days[day].returned += 1
            if isinstance(wall, int | float):
                workers[w].returned_wall += wall

    judged: dict[str, list[tuple[int | None, str]]] = defaultdict(list)
    for (labeler, _lj, _obj, rnd), verdicts in judgments.items():
        judged[labeler].append((rnd, "reject" if "reject" in verdicts else "approve"))

    # Per job: objects approved/rejected by its audit (audit jobs, from the audit tasks) or in the
    # audit of its labels (labeling and rework jobs, from the verdict items, which ByJob returns).
    job_verdicts: dict[str, list[str]] = defaultdict(list)
    for (audit_job, _obj), verdicts in audits.items():
        job_verdicts[audit_job].append("reject" if "reject" in verdicts else "approve")
    for (lj, _obj, _rnd), verdicts in labels.items():
        if lj:
            job_verdicts[lj].append("reject" if "reject" in verdicts else "approve")

    names = sorted(set(workers) | set(judged))
    if worker:
        names = [n for n in names if n == worker]
    worker_rows = []
    for name in names:
        wr = workers.get(name) or _Worker()
        js = judged.get(name, [])
        rejected = sum(1 for _, v in js if v == "reject")
        first = [v for r, v in js if r == 1]
        first_ok = sum(1 for v in first if v == "approve")
        worker_rows.append(
            {
                "worker_id": name,
                "role": _role(wr.by_stage),
                "tasks": wr.tasks,
                "tasks_by_stage": dict(sorted(wr.by_stage.items())),
                "objects": len(wr.objects),
                "active_hours": _hours(wr.active),
                "wall_hours": _hours(wr.wall),
                "objects_per_hour": round(wr.timed * 3600.0 / wr.active, 2) if wr.active >= 1.0 else None,
                "tasks_missing_time": wr.missing_time,
                "labels_judged": len(js),
                "labels_rejected": rejected,
                "rejection_rate": _rate(rejected, len(js)),
                "first_pass_judged": len(first),
                "first_pass_accepted": first_ok,
                "first_pass_acceptance_rate": _rate(first_ok, len(first)),
                "returned_tasks": wr.returned,
                "returned_hours": _hours(wr.returned_wall),
            }
        )

    job_rows = []
    for name in sorted(jobs, key=lambda j: (jobs[j].first or "", j)):
        jr = jobs[name]
        vs = job_verdicts.get(name, [])
        rej = vs.count("reject")
        job_rows.append(
            {
                "job": name,
                "stage": jr.stage,
                "round": jr.round,
                "tasks": jr.tasks,
                "workers": len(jr.workers),
                "objects": len(jr.objects),
                "active_hours": _hours(jr.active),
                "wall_hours": _hours(jr.wall),
                "objects_approved": len(vs) - rej,
                "objects_rejected": rej,
                "rejection_rate": _rate(rej, len(vs)),
                "returned_tasks": jr.returned,
                "first_submission": jr.first,
                "last_submission": jr.last,
            }
        )

    day_rows = [
        {
            "day": d,
            "tasks": dr.tasks,
            "active_hours": _hours(dr.active),
            "wall_hours": _hours(dr.wall),
            "workers": len(dr.workers),
            "active_hours_by_worker": {w: _hours(s) for w, s in sorted(dr.workers.items())},
            "returned_tasks": dr.returned,
        }
        for d, dr in sorted(days.items())
    ]

    all_js = [v for name in names for v in judged.get(name, [])]
    all_first = [v for r, v in all_js if r == 1]
    selected = [workers[n] for n in names if n in workers]
    totals = {
        "tasks": sum(w.tasks for w in selected),
        "workers": sum(1 for w in selected if w.tasks),
        "objects": len(set().union(*(w.objects for w in selected))) if selected else 0,
        "active_hours": _hours(sum(w.active for w in selected)),
        "wall_hours": _hours(sum(w.wall for w in selected)),
        "tasks_missing_time": sum(w.missing_time for w in selected),
        "labels_judged": len(all_js),
        "labels_rejected": sum(1 for _, v in all_js if v == "reject"),
        "rejection_rate": _rate(sum(1 for _, v in all_js if v == "reject"), len(all_js)),
        "first_pass_acceptance_rate": _rate(sum(1 for v in all_first if v == "approve"), len(all_first)),
        "returned_tasks": sum(w.returned for w in selected),
        "returned_hours": _hours(sum(w.returned_wall for w in selected)),
    }
    return {
        "schema": SCHEMA,
        "generated_at": generated_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "table": table,
        "filters": {"since": since, "until": until, "worker": worker, "job": job},
        "totals": totals,
        "workers": worker_rows,
        "jobs": job_rows,
        "days": day_rows,
    }
