"""Returned and declined tasks, from the private workforce's WorkerActivity log.

Ground Truth logs one entry per task to ``/aws/sagemaker/groundtruth/WorkerActivity`` (reference,
section 6). Submitted tasks are already recorded from their worker-response files, so only the
tasks a worker returned or declined are recorded here: their time is real cost with no answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gtaudit.trace.items import activity_item
from gtaudit.trace.records import Source, iso, parse_time
from gtaudit.trace.store import WriteResult, put_items

ACTIVITY_LOG_GROUP = "/aws/sagemaker/groundtruth/WorkerActivity"


def parse_activity_time(value: Any) -> datetime | None:
    """``Wed Aug 14 16:00:59 UTC 2019`` (the log's format), or ISO 8601, or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return _from_epoch(int(text))
    try:
        return datetime.strptime(text.replace(" UTC ", " "), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        return parse_time(text)


def _from_epoch(seconds: float) -> datetime | None:
    """Epoch seconds as aware UTC; ``None`` when out of range (or NaN) rather than raising."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def response_worker_id(worker_id: str, labeling_job_arn: str) -> str:
    """The log's worker ID as the worker-response files spell it, so both join on one person.

    The WorkerActivity log names a private worker by the bare ID (``e52d58eb96bfba08``); the
    worker-response files by ``private.<region>.<ID>`` (reference section 6). The region is the
    labeling job's (its ARN's fourth field). An ID that already has the prefix is kept.
    """
    if "." in worker_id:
        return worker_id
    parts = labeling_job_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else None
    return f"private.{region}.{worker_id}" if region else worker_id


def activity_items(messages: list[tuple[str, str]], log_group: str, log_stream: str, recorded_at: str) -> list[Any]:
    """Items for the returned/declined tasks among ``(event id, message)`` log events; others ignored."""
    items = []
    for event_id, message in messages:
        try:
            entry = json.loads(message)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        ended, kind = None, None
        for field, name in (("task_returned_time", "returned"), ("task_declined_time", "declined")):
            t = parse_activity_time(entry.get(field))
            if t is not None:
                ended, kind = t, name
                break
        worker = entry.get("worker_id")
        arn = entry.get("labeling_job_arn")
        if ended is None or kind is None or not isinstance(worker, str) or not isinstance(arn, str):
            continue
        job = arn.rsplit("/", 1)[-1]
        worker = response_worker_id(worker, arn)
        accepted = parse_activity_time(entry.get("task_accepted_time"))
        wall = (ended - accepted).total_seconds() if accepted and ended >= accepted else None
        source = Source(log_group, log_stream, event_id, None, iso(ended) + "#" + event_id)
        items.append(
            activity_item(
                job=job,
                worker_id=worker,
                cognito_sub=entry.get("cognito_sub_id") if isinstance(entry.get("cognito_sub_id"), str) else None,
                event_type=kind,
                accepted_at=iso(accepted) if accepted else None,
                ended_at=iso(ended),
                wall_seconds=wall,
                source=source,
                recorded_at=recorded_at,
            )
        )
    return items


def record_activity(
    ddb: Any, table: str, messages: list[tuple[str, str]], log_group: str, log_stream: str
) -> WriteResult:
    """Record the returned and declined tasks of one CloudWatch Logs batch."""
    items = activity_items(messages, log_group, log_stream, iso(datetime.now(UTC)))
    return put_items(ddb, table, items)


def import_activity_log(
    logs: Any,
    ddb: Any,
    table: str,
    *,
    log_group: str = ACTIVITY_LOG_GROUP,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> WriteResult:
    """Read the WorkerActivity log directly (FilterLogEvents) and record its returned/declined tasks.

    The same records the optional subscription writes, for a backfill or for a runtime without
    log subscriptions. Idempotent: an entry already recorded is left unchanged.
    """
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if start_ms is not None:
        kwargs["startTime"] = start_ms
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    by_stream: dict[str, list[tuple[str, str]]] = {}
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        for e in page.get("events", []):
            by_stream.setdefault(e.get("logStreamName", ""), []).append((str(e.get("eventId")), e.get("message", "")))
    written = unchanged = 0
    for stream, messages in by_stream.items():
        res = record_activity(ddb, table, messages, log_group, stream)
        written, unchanged = written + res.written, unchanged + res.unchanged
    return WriteResult(written, unchanged)
