"""The traceability table: idempotent writes, finding the table, and the queries.

The key design (which item lives in which partition, which index answers which question) is
``items``; this module talks to DynamoDB.

Writes are conditional on the source file: ``attribute_not_exists(pk) OR src_seq < :seq``, where
``src_seq`` orders versions of one S3 key (last-modified time, then S3's event sequencer). The
same event twice, or an older version arriving after a newer one, changes nothing.

Reads are Queries only, never a Scan: the base table for one object's lineage, ByWorker for one
worker, ByJob for one job, and the ``CAL`` calendar then each ByDay partition in parallel for
everyone between two times.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.exceptions import TraceTableNotFoundError
from gtaudit.s3io import is_conditional_check_failed
from gtaudit.trace.items import (
    BY_DAY,
    BY_JOB,
    BY_WORKER,
    CALENDAR_PK,
    INDEXES,
    calendar_item,
    day_pk,
    item_from_wire,
    job_pk,
    object_pk,
    worker_pk,
)
from gtaudit.trace.records import iso, parse_time

TABLE_ENV = "GTAUDIT_TRACE_TABLE"
STACK_ENV = "GTAUDIT_STACK"
DEFAULT_STACK = "gtaudit"
TABLE_OUTPUT = "TraceTableName"
_HIGH = "\uffff"  # sorts after every character a key part can hold


def source_seq(last_modified: datetime | None, sequencer: str | None) -> str:
    """The order of one S3 key's versions: last-modified time, then S3's hex event sequencer.

    S3 says a greater sequencer (as a hexadecimal number) on the same key is a later event; the
    zero-padding makes string order equal numeric order.
    """
    lm = last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last_modified else "0000-00-00T00:00:00Z"
    seqr = (sequencer or "").strip().upper()
    return f"{lm}#{seqr.rjust(40, '0')}"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """How many items a call wrote, and how many it left alone (duplicate or older source)."""

    written: int
    unchanged: int


def put_items(ddb: Any, table: str, items: Iterable[dict[str, Any]]) -> WriteResult:
    """Write items unless the table already holds them from the same or a newer source version.

    Each new day also gets its calendar item (an idempotent put), so reports can list the days.
    """
    written = unchanged = 0
    days_seen: set[str] = set()
    for item in items:
        try:
            ddb.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR src_seq < :seq",
                ExpressionAttributeValues={":seq": item["src_seq"]},
            )
            written += 1
        except ClientError as exc:
            if not is_conditional_check_failed(exc):
                raise
            unchanged += 1
        day_key = item["day_pk"]["S"]
        if day_key not in days_seen:
            ddb.put_item(TableName=table, Item=calendar_item(day_key))
            days_seen.add(day_key)
    return WriteResult(written, unchanged)


def resolve_table(explicit: str | None = None, *, stack: str | None = None, cloudformation: Any = None) -> str:
    """The trace table's name: ``explicit``, else ``$GTAUDIT_TRACE_TABLE``, else the stack output.

    The stack is ``stack``, else ``$GTAUDIT_STACK``, else ``gtaudit``; its output
    ``TraceTableName`` is read with CloudFormation (AWS or the local runtime, whichever the
    standard AWS settings point at).

    Raises
    ------
    TraceTableNotFoundError
        None of the three gives a name.
    """
    if explicit:
        return explicit
    env = os.environ.get(TABLE_ENV, "").strip()
    if env:
        return env
    name = stack or os.environ.get(STACK_ENV, "").strip() or DEFAULT_STACK
    try:
        if cloudformation is None:
            import boto3

            cloudformation = boto3.client("cloudformation")
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:  # no credentials, no stack, no endpoint: all mean "not found here"
        raise TraceTableNotFoundError(
            f"no trace table: pass --table, set {TABLE_ENV}, or deploy stack {name!r} ({exc.__class__.__name__})"
        ) from exc
    for output in (stacks[0] if stacks else {}).get("Outputs", []):
        if output.get("OutputKey") == TABLE_OUTPUT:
            return str(output["OutputValue"])
    raise TraceTableNotFoundError(f"stack {name!r} has no {TABLE_OUTPUT} output")


_FAST_ITEMS = "GtauditItems"


def _decode_items_before_parse(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """Decode a Query page's items straight from the JSON body, ahead of botocore's parser.

    botocore walks every attribute value through its shape model, which took ~9 of ~12 s for
    100,000 items (benchmarks/bench_report.py); plain ``json.loads`` plus ``from_wire`` does the
    same work in a fraction. The items are removed from the body botocore parses and handed over
    under ``GtauditItems``; everything else (errors, LastEvaluatedKey) goes through botocore.
    """
    if response_dict.get("status_code") != 200 or not isinstance(response_dict.get("body"), bytes | bytearray):
        return
    try:
        body = json.loads(response_dict["body"])
    except ValueError:
        return
    items = body.pop("Items", None)
    if not isinstance(items, list):
        return
    customized_response_dict[_FAST_ITEMS] = [item_from_wire(i) for i in items]
    response_dict["body"] = json.dumps(body).encode()


@contextmanager
def fast_query_pages(ddb: Any) -> Iterator[None]:
    """While open, this client's Query responses carry decoded items under ``GtauditItems``."""
    events = ddb.meta.events
    uid = f"gtaudit-fast-items-{id(ddb)}-{threading.get_ident()}"
    events.register("before-parse.dynamodb.Query", _decode_items_before_parse, unique_id=uid)
    try:
        yield
    finally:
        events.unregister("before-parse.dynamodb.Query", unique_id=uid)


def _query(ddb: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        resp = ddb.query(**kwargs)
        if _FAST_ITEMS in resp:
            yield from resp[_FAST_ITEMS]
        else:
            for item in resp.get("Items", []):
                yield item_from_wire(item)
        last = resp.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


def query_object(ddb: Any, table: str, object_id: str) -> list[dict[str, Any]]:
    """Every task and verdict item of one object (its lineage), in base-table order."""
    return list(
        _query(
            ddb,
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": object_pk(object_id)}},
            ConsistentRead=True,
        )
    )


def query_job(ddb: Any, table: str, job: str, *, report_only: bool = False) -> list[dict[str, Any]]:
    """Every item of one job (tasks, verdicts on its labels, returned tasks).

    ``report_only`` fetches just the attributes a report reads.
    """
    pk, _ = INDEXES[BY_JOB]
    args: dict[str, Any] = {
        "TableName": table,
        "IndexName": BY_JOB,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": job_pk(job)}},
        "ExpressionAttributeNames": {"#pk": pk},
    }
    if report_only:
        proj = _projection()
        args["ProjectionExpression"] = proj["ProjectionExpression"]
        args["ExpressionAttributeNames"].update(proj["ExpressionAttributeNames"])
    with fast_query_pages(ddb):
        return list(_query(ddb, **args))


# What a report reads: the index keys and the few attributes the aggregation uses.
REPORT_ATTRIBUTES = (
    "kind",
    "time",
    "job",
    "stage",
    "round",
    "object_id",
    "worker_id",
    "labeler",
    "labeling_job",
    "active_seconds",
    "wall_seconds",
    "verdict",
    "reasons",
    "event_type",
    # score items (accuracy against the vote, and the truth on gold objects) and seeded audits
    "gold",
    "iou",
    "class_iou",
    "confusion",
    "gold_iou",
    "gold_class_iou",
    "gold_confusion",
    "seeded",
    "seeded_outcome",
)


def _projection() -> dict[str, Any]:
    names = {f"#a{i}": a for i, a in enumerate(REPORT_ATTRIBUTES)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def query_worker(ddb: Any, table: str, worker_id: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """One worker's tasks, the verdicts on their labels and their returned tasks in ``[since, until]``."""
    pk, sk = INDEXES[BY_WORKER]
    proj = _projection()
    proj["ExpressionAttributeNames"].update({"#pk": pk, "#sk": sk})
    with fast_query_pages(ddb):
        return _list_worker(ddb, table, worker_id, since, until, proj)


def _list_worker(
    ddb: Any, table: str, worker_id: str, since: str | None, until: str | None, proj: dict[str, Any]
) -> list[dict[str, Any]]:
    return list(
        _query(
            ddb,
            TableName=table,
            IndexName=BY_WORKER,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": {"S": worker_pk(worker_id)},
                ":lo": {"S": since or "0"},
                ":hi": {"S": (until or "9999") + _HIGH},
            },
            **proj,
        )
    )


def list_days(ddb: Any, table: str, since: str | None, until: str | None) -> list[str]:
    """The days (``yyyy-mm-dd``) that have records, within ``[since, until]``."""
    lo = day_pk(since[:10] if since else "")
    hi = day_pk(until[:10] if until else _HIGH)
    items = _query(
        ddb,
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":pk": {"S": CALENDAR_PK}, ":lo": {"S": lo}, ":hi": {"S": hi}},
    )
    return [str(i["sk"]).removeprefix(day_pk("")) for i in items]


def query_day(ddb: Any, table: str, day: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """Every item of one day, within ``[since, until]``."""
    pk, sk = INDEXES[BY_DAY]
    proj = _projection()
    proj["ExpressionAttributeNames"].update({"#pk": pk, "#sk": sk})
    lo = max(since or "", day)
    hi = min((until or "9999") + _HIGH, day + _HIGH)
    return list(
        _query(
            ddb,
            TableName=table,
            IndexName=BY_DAY,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": {"S": day_pk(day)}, ":lo": {"S": lo}, ":hi": {"S": hi}},
            **proj,
        )
    )


def query_range(
    ddb: Any, table: str, since: str | None, until: str | None, *, workers: int = 8
) -> list[dict[str, Any]]:
    """Every item between ``since`` and ``until``: the calendar, then each day's partition in parallel."""
    days = list_days(ddb, table, since, until)
    if not days:
        return []
    out: list[dict[str, Any]] = []
    with fast_query_pages(ddb), ThreadPoolExecutor(max_workers=max(1, min(workers, len(days)))) as pool:
        for chunk in pool.map(lambda d: query_day(ddb, table, d, since, until), days):
            out.extend(chunk)
    return out


def time_bound(value: str | None, *, end: bool) -> str | None:
    """A ``--since``/``--until`` value as a sortable ISO bound; a bare date covers its whole day.

    Raises
    ------
    ValueError
        ``value`` is neither a date nor an ISO date-time.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        d = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        t = datetime(d.year, d.month, d.day, tzinfo=UTC)
        return iso(t + timedelta(days=1) - timedelta(milliseconds=1) if end else t)
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(f"not a date or an ISO 8601 time: {value!r}")
    return iso(parsed)
