"""Traceability: worker time and the lineage of every object, in one DynamoDB table.

``records`` parses Ground Truth's worker-response and scores files, ``items`` holds the key design
and builds the table's items, ``store`` the idempotent writes and the queries, ``ingest`` records
one file (the worktime Lambda), ``activity`` the WorkerActivity log, ``report`` aggregates time and
verdicts and ``quality`` the scores and seeded audits; ``render`` prints text and CSV, ``page`` the
HTML with ``charts``, both with ``columns``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gtaudit.trace.render import render
from gtaudit.trace.report import DEFAULT_GOLD_THRESHOLD, SCHEMA, build_report
from gtaudit.trace.store import query_job, query_object, query_range, query_worker, time_bound

__all__ = ["SCHEMA", "lineage", "make_report", "write_report"]

_STAGE_ORDER = {"labeling": 0, "rework": 0, "audit": 1}


def make_report(
    ddb: Any,
    table: str,
    *,
    since: str | None = None,
    until: str | None = None,
    worker: str | None = None,
    job: str | None = None,
    gold_threshold: float = DEFAULT_GOLD_THRESHOLD,
) -> dict[str, Any]:
    """Query the table (never a Scan) and build the ``gtaudit.report/2`` document.

    Parameters
    ----------
    ddb
        A boto3 DynamoDB client.
    table
        The trace table's name.
    since, until
        Dates (``2026-11-24``, whole days) or ISO times; ``None`` leaves that side open.
    worker
        Only this worker (the ByWorker index) instead of everyone (the ByDay index).
    job
        Only this job (the ByJob index): its tasks, the verdicts on its labels, its returned
        tasks; ``since``/``until`` then filter those items by time.
    gold_threshold
        Labelers whose gold IoU is below it are flagged.

    Raises
    ------
    ValueError
        ``since`` or ``until`` is not a date or time.
    """
    lo, hi = time_bound(since, end=False), time_bound(until, end=True)
    if job:
        items = [
            it
            for it in query_job(ddb, table, job, report_only=True)
            if (lo is None or str(it.get("time")) >= lo) and (hi is None or str(it.get("time")) <= hi)
        ]
        if worker:
            items = [it for it in items if worker in (it.get("worker_id"), it.get("labeler"))]
    elif worker:
        items = query_worker(ddb, table, worker, lo, hi)
    else:
        items = query_range(ddb, table, lo, hi)
    return build_report(items, since=lo, until=hi, worker=worker, job=job, table=table, gold_threshold=gold_threshold)


def write_report(
    table: str,
    out_dir: str | Path,
    *,
    ddb: Any = None,
    since: str | None = None,
    until: str | None = None,
    worker: str | None = None,
    formats: tuple[str, ...] = ("html", "json"),
    gold_threshold: float = DEFAULT_GOLD_THRESHOLD,
) -> dict[str, Path]:
    """Write ``report.<format>`` files into ``out_dir``; return ``{format: path}``.

    ``ddb`` defaults to ``boto3.client("dynamodb")``, i.e. whatever the standard AWS settings
    (``AWS_ENDPOINT_URL_DYNAMODB`` for the local runtime) point at.
    """
    if ddb is None:
        import boto3

        ddb = boto3.client("dynamodb")
    report = make_report(ddb, table, since=since, until=until, worker=worker, gold_threshold=gold_threshold)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in formats:
        path = out / f"report.{fmt}"
        path.write_text(render(report, fmt), encoding="utf-8")
        paths[fmt] = path
    return paths


def lineage(ddb: Any, table: str, object_id: str) -> list[dict[str, Any]]:
    """Every task and verdict of one object in the order it happened: by round, labeling before audit."""
    items = query_object(ddb, table, object_id)

    def order(it: dict[str, Any]) -> tuple[Any, ...]:
        rnd = it.get("round") if isinstance(it.get("round"), int) else 0
        stage = 1 if it.get("kind") == "verdict" else _STAGE_ORDER.get(str(it.get("stage")), 0)
        return (rnd, stage, str(it.get("time") or ""), str(it.get("sk")))

    return sorted(items, key=order)
