"""On a resumed project, the S3 events a kill swallowed, announced again.

A project keeps its objects and items (:mod:`gtaudit_local.persist`) and the emulator its jobs, but
not the events in flight: S3's ``Object Created`` notifications wait in EventBridge and SQS, which
live in memory. After a ``kill -9`` each handler's work must still happen once. For the
orchestrator the emulator announces every ended job again; an overlay whose event was lost is
rendered by the orchestrator's overlay check before any audit starts. What nothing else would
redo is the worktime function's: a worker-response file written just before the kill, whose trace
record was never made, would be missing from every report.

So a resume compares the data bucket's worker-response files with the trace table's records of
them (``src_key`` and ``src_etag``, which every task record carries) and announces each file the
table lacks, in S3's own EventBridge shape, on the runtime's event bus: the template's rule routes
it to the worktime function as it would have the first time. The ingestion is idempotent (its
writes go through only for a newer source), so announcing a file twice costs a read, never a
second record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from gtaudit_local.persist.records import ObjectRecord
from gtaudit_local.persist.store import AwsStore

RESPONSE_MARK = "/annotations/worker-response/"
_BATCH = 10  # PutEvents takes at most 10 entries


def recorded_sources(items: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """``(src_key, src_etag)`` of every trace item (DynamoDB JSON) that names its source file."""
    seen = set()
    for item in items:
        key, etag = item.get("src_key", {}).get("S"), item.get("src_etag", {}).get("S")
        if key and etag:
            seen.add((key, etag))
    return seen


def unrecorded_responses(store: AwsStore, bucket: str, trace_table: str) -> list[ObjectRecord]:
    """The worker-response files of ``bucket`` whose current version the trace table has no record of."""
    recorded = recorded_sources(store.items(trace_table))
    return [r for r in store.objects(bucket) if RESPONSE_MARK in r.key and (r.key, r.etag) not in recorded]


def s3_created_entries(records: Iterable[ObjectRecord], account: str) -> Iterator[dict[str, Any]]:
    """``PutEvents`` entries shaped as S3's own ``Object Created`` notifications of ``records``."""
    for r in records:
        detail = {
            "version": "0",
            "bucket": {"name": r.bucket},
            "object": {
                "key": r.key,
                "size": r.size,
                "etag": r.etag,
                **({"version-id": r.version_id} if r.version_id else {}),
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "reason": "PutObject",
        }
        yield {
            "Source": "aws.s3",
            "DetailType": "Object Created",
            "Detail": json.dumps(detail),
            "Resources": [f"arn:aws:s3:::{r.bucket}"],
            "Time": datetime.now(UTC),
        }


def announce(events: Any, entries: Iterable[dict[str, Any]]) -> int:
    """Put ``entries`` on the default event bus, ten at a time; return how many were accepted."""
    batch: list[dict[str, Any]] = []
    accepted = 0

    def flush() -> None:
        nonlocal accepted
        if batch:
            resp = events.put_events(Entries=batch)
            accepted += len(batch) - int(resp.get("FailedEntryCount") or 0)
            batch.clear()

    for entry in entries:
        batch.append(entry)
        if len(batch) == _BATCH:
            flush()
    flush()
    return accepted
