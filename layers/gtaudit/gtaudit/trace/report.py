"""Aggregate trace items into the report: per worker, per job, per day, per auditor, per class.

The schema is ``gtaudit.report/2``: ``/1`` plus accuracy (``trace.quality``).

Definitions (also in docs/traceability.md, "The report"):

- tasks: submitted tasks (worker-response answers), every stage.
- active hours: the sum of ``timeSpentInSeconds``; wall hours: acceptance to submission. Tasks
  whose file lacks those fields count as tasks but add no hours (``tasks_missing_time``).
- objects per hour: tasks with an active time / active hours.
- A labeler's labels are judged once per (labeling job, object, round); with several auditors,
  any reject wins. rejection rate = rejected / judged; first-pass acceptance rate = approved /
  judged among round-1 labels. Verdicts are placed in time by the audit's submission.
- returned tasks: returned or declined tasks from the WorkerActivity log, with their wall time.
- accuracy: each labeler's IoU against the consensus and against gold truths, micro-averaged from
  the ``score`` items' pixel counts; ``flagged`` when the gold IoU is below the threshold. Per
  auditor: seeded defects caught and missed, false rejects, agreement with other auditors. Per
  class: agreement and gold IoU over all labelers, and the confusion between classes.
- seeded audits (a known-good or known-bad mask shown in place of the vote) count as the
  auditor's tasks and hours, but not in an audit job's objects approved or rejected: those are
  about real labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gtaudit.trace.quality import QualityTally, ratio

SCHEMA = "gtaudit.report/2"
DEFAULT_GOLD_THRESHOLD = 0.8  # the template's GoldAccuracyThreshold default
_LABELING_STAGES = ("labeling", "rework")


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
    label_active: float = 0.0  # labeling and rework tasks only: the labeler's own throughput
    label_timed: int = 0
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
    gold_threshold: float = DEFAULT_GOLD_THRESHOLD,
) -> dict[str, Any]:
    """The report of a set of trace items (as the queries return them).

    Parameters
    ----------
    items
        Task, verdict, score and activity items; calendar items are ignored.
    since, until, worker, job, table
        The filters the items were queried with, echoed in the report.
    gold_threshold
        A labeler whose gold IoU is below this is ``flagged`` (see ``apply_gold_threshold``).

    Returns
    -------
    dict
        The ``gtaudit.report/2`` document: ``schema``, ``generated_at``, ``table``, ``filters``,
        ``gold_threshold``, ``totals``, ``workers``, ``auditors``, ``classes``, ``confusion``,
        ``gold_confusion``, ``jobs``, ``days``.

    Raises
    ------
    ValueError
        ``gold_threshold`` is not between 0 and 1.
    """
    workers: dict[str, _Worker] = defaultdict(_Worker)
    tally = QualityTally()
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
                if stage in _LABELING_STAGES:
                    wr.label_active += active
                    wr.label_timed += 1
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
            if stage == "audit":
                tally.add_audit(it, w, job_name, obj)
                if verdict in ("approve", "reject") and it.get("seeded") is None:
                    audits[(job_name, obj)].append(str(verdict))
        elif kind == "score":
            tally.add_score(it)
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

    names = sorted(set(workers) | set(judged) | set(tally.consensus) | set(tally.gold))
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
                "objects_per_hour": _per_hour(wr.timed, wr.active),
                "labeling_objects_per_hour": _per_hour(wr.label_timed, wr.label_active),
                "tasks_missing_time": wr.missing_time,
                "labels_judged": len(js),
                "labels_rejected": rejected,
                "rejection_rate": ratio(rejected, len(js)),
                "first_pass_judged": len(first),
                "first_pass_accepted": first_ok,
                "first_pass_acceptance_rate": ratio(first_ok, len(first)),
                "returned_tasks": wr.returned,
                "returned_hours": _hours(wr.returned_wall),
                **tally.labeler_fields(name),
                "flagged": False,
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
                "rejection_rate": ratio(rej, len(vs)),
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
        "rejection_rate": ratio(sum(1 for _, v in all_js if v == "reject"), len(all_js)),
        "first_pass_acceptance_rate": ratio(sum(1 for v in all_first if v == "approve"), len(all_first)),
        "returned_tasks": sum(w.returned for w in selected),
        "returned_hours": _hours(sum(w.returned_wall for w in selected)),
        **tally.totals(),
        "flagged_labelers": 0,
    }
    report = {
        "schema": SCHEMA,
        "generated_at": generated_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "table": table,
        "filters": {"since": since, "until": until, "worker": worker, "job": job},
        "gold_threshold": gold_threshold,
        "totals": totals,
        "workers": worker_rows,
        "auditors": tally.auditor_rows(names if worker else None),
        "classes": tally.class_rows(),
        "confusion": tally.confusion_rows(),
        "gold_confusion": tally.confusion_rows(gold=True),
        "jobs": job_rows,
        "days": day_rows,
    }
    return apply_gold_threshold(report, gold_threshold)


def apply_gold_threshold(report: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Flag the labelers of ``report`` whose gold IoU is below ``threshold``; return the report.

    ``flagged`` is true only for a labeler with gold scores: consensus IoU alone never flags
    (a majority can share a mistake). Re-applying with another threshold re-flags.

    Raises
    ------
    ValueError
        ``threshold`` is not between 0 and 1.
    """
    if not (isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"gold_threshold must be between 0 and 1, got {threshold!r}")
    report["gold_threshold"] = threshold
    for row in report["workers"]:
        row["flagged"] = row["gold_iou"] is not None and row["gold_iou"] < threshold
    report["totals"]["flagged_labelers"] = sum(1 for row in report["workers"] if row["flagged"])
    return report


def _per_hour(timed: int, active: float) -> float | None:
    """Tasks per active hour; ``None`` under one second of active time (no meaningful rate)."""
    return round(timed * 3600.0 / active, 2) if active >= 1.0 else None
