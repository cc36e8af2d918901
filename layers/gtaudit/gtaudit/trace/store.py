"""The traceability table: key design, idempotent writes and the three queries.

One DynamoDB table (``TraceTable`` in template.yaml), single-table design:

=========  ======================  ========================================  ==================================
item       pk                      sk                                        indexes (pk / sk)
=========  ======================  ========================================  ==================================
task       ``OBJ#<object-id>``     ``TASK#<job>#<iteration>#<worker>``       ByWorker ``W#<worker>`` / ``<time>#T#..``
                                                                             ByJob ``J#<job>`` / ``T#<object>#..``
                                                                             ByDay ``D#<yyyy-mm-dd>`` / ``<time>#T#..``
verdict    ``OBJ#<object-id>``     ``VERDICT#<audit job>#<it>#<auditor>#<labeler>``  ByWorker ``W#<labeler>``,
                                                                             ByJob ``J#<labeling job>``, ByDay
activity   ``ACT#<job>``           ``<worker>#<accepted>#<event>``           ByWorker, ByJob, ByDay
day        ``CAL``                 ``D#<yyyy-mm-dd>``                        (none): the days that have records
=========  ======================  ========================================  ==================================

The base table answers "the lineage of one object" (Query ``pk = OBJ#id``); ByWorker answers
"one worker between two times"; ByJob "one job"; ByDay with the ``CAL`` items "everyone between
two times" without a Scan. ``<time>`` is the fixed-width ISO submission time, so a time range is a
``BETWEEN`` on the sort key.

Writes are conditional on the source file: ``attribute_not_exists(pk) OR src_seq < :seq``, where
``src_seq`` orders versions of one S3 key (last-modified time, then S3's event sequencer). The
same event twice, or an older version arriving after a newer one, changes nothing.
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
from gtaudit.trace.records import Source, TaskRecord, Verdict, iso, parse_time

TABLE_ENV = "GTAUDIT_TRACE_TABLE"
STACK_ENV = "GTAUDIT_STACK"
DEFAULT_STACK = "gtaudit"
TABLE_OUTPUT = "TraceTableName"
BY_WORKER, BY_JOB, BY_DAY = "ByWorker", "ByJob", "ByDay"
# (index name, partition key attribute, sort key attribute); template.yaml declares the same.
INDEXES: dict[str, tuple[str, str]] = {
    BY_WORKER: ("worker_pk", "worker_sk"),
    BY_JOB: ("job_pk", "job_sk"),
    BY_DAY: ("day_pk", "day_sk"),
}
CALENDAR_PK = "CAL"
_HIGH = "\uffff"  # sorts after every character a key part can hold


# ---------------------------------------------------------------- wire format


def to_wire(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (floats as numbers, no Decimal needed)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, dict):
        return {"M": {str(k): to_wire(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_wire(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in the trace table")


def from_wire(av: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as a Python value (numbers as int or float)."""
    for tag, v in av.items():
        if tag == "S":
            return v
        if tag == "N":
            return float(v) if ("." in v or "e" in v or "E" in v) else int(v)
        if tag == "NULL":
            return None
        if tag == "BOOL":
            return v
        if tag == "L":
            return [from_wire(x) for x in v]
        if tag == "M":
            return {k: from_wire(x) for k, x in v.items()}
        if tag == "SS":
            return list(v)
    raise ValueError(f"unsupported attribute value {list(av)}")


def item_from_wire(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A whole item from the wire format."""
    return {k: from_wire(v) for k, v in item.items()}


def _item(attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # Absent and empty values are left out: a report treats a missing attribute as unknown.
    return {k: to_wire(v) for k, v in attrs.items() if v is not None and v != () and v != []}


# ---------------------------------------------------------------- item building


def task_item(rec: TaskRecord, source: Source, *, fallback_time: str, recorded_at: str) -> dict[str, Any]:
    """The table item of one task record (wire format).

    ``fallback_time`` (the file's last-modified time) places a record without a submission time
    on the time axis; ``time_from`` says which was used.
    """
    t = rec.submitted_at or fallback_time
    obj = rec.object_id or f"?{rec.job}/{rec.dataset_object_id}"
    it = f"{rec.iteration:04d}"
    attrs: dict[str, Any] = {
        "pk": f"OBJ#{obj}",
        "sk": f"TASK#{rec.job}#{it}#{rec.worker_id}",
        "worker_pk": f"W#{rec.worker_id}",
        "worker_sk": f"{t}#T#{rec.job}#{rec.dataset_object_id}#{it}",
        "job_pk": f"J#{rec.job}",
        "job_sk": f"T#{obj}#{it}#{rec.worker_id}",
        "day_pk": f"D#{t[:10]}",
        "day_sk": f"{t}#T#{rec.job}#{rec.dataset_object_id}#{it}#{rec.worker_id}",
        "kind": "task",
        "time": t,
        "time_from": "submissionTime" if rec.submitted_at else "s3-last-modified",
        "job": rec.job,
        "stage": rec.stage,
        "round": rec.round,
        "object_id": rec.object_id,
        "dataset_object_id": rec.dataset_object_id,
        "iteration": rec.iteration,
        "worker_id": rec.worker_id,
        "cognito_sub": rec.cognito_sub,
        "cognito_issuer": rec.cognito_issuer,
        "identity_provider": rec.identity_provider,
        "accepted_at": rec.accepted_at,
        "submitted_at": rec.submitted_at,
        "active_seconds": rec.active_seconds,
        "wall_seconds": rec.wall_seconds,
        "missing": list(rec.missing),
        "verdict": rec.verdict,
        "reasons": list(rec.reasons),
        "judged": list(rec.judged),
        "labeling_job": rec.labeling_job,
        "recorded_at": recorded_at,
        **_source_attrs(source),
        **rec.extra,
    }
    return _item(attrs)


def verdict_item(v: Verdict, source: Source, *, fallback_time: str, recorded_at: str) -> dict[str, Any]:
    """The table item of one verdict on one labeler (wire format)."""
    t = v.judged_at or fallback_time
    obj = v.object_id or f"?{v.audit_job}"
    it = f"{v.iteration:04d}"
    attrs: dict[str, Any] = {
        "pk": f"OBJ#{obj}",
        "sk": f"VERDICT#{v.audit_job}#{it}#{v.auditor}#{v.labeler}",
        "worker_pk": f"W#{v.labeler}",
        "worker_sk": f"{t}#V#{v.audit_job}#{obj}#{v.auditor}",
        "job_pk": f"J#{v.labeling_job or v.audit_job}",
        "job_sk": f"V#{obj}#{it}#{v.auditor}#{v.labeler}",
        "day_pk": f"D#{t[:10]}",
        "day_sk": f"{t}#V#{v.audit_job}#{obj}#{v.auditor}#{v.labeler}",
        "kind": "verdict",
        "time": t,
        "labeler": v.labeler,
        "worker_id": v.auditor,
        "verdict": v.verdict,
        "object_id": v.object_id,
        "round": v.round,
        "labeling_job": v.labeling_job,
        "job": v.audit_job,
        "iteration": v.iteration,
        "recorded_at": recorded_at,
        **_source_attrs(source),
    }
    return _item(attrs)


def activity_item(
    *,
    job: str,
    worker_id: str,
    cognito_sub: str | None,
    event_type: str,
    accepted_at: str | None,
    ended_at: str,
    wall_seconds: float | None,
    source: Source,
    recorded_at: str,
) -> dict[str, Any]:
    """A task that was returned or declined (from the WorkerActivity log): time spent, no answer."""
    return _item(
        {
            "pk": f"ACT#{job}",
            "sk": f"{worker_id}#{accepted_at or ended_at}#{event_type}",
            "worker_pk": f"W#{worker_id}",
            "worker_sk": f"{ended_at}#A#{job}#{event_type}",
            "job_pk": f"J#{job}",
            "job_sk": f"A#{worker_id}#{ended_at}#{event_type}",
            "day_pk": f"D#{ended_at[:10]}",
            "day_sk": f"{ended_at}#A#{job}#{worker_id}#{event_type}",
            "kind": "activity",
            "time": ended_at,
            "job": job,
            "worker_id": worker_id,
            "cognito_sub": cognito_sub,
            "event_type": event_type,
            "accepted_at": accepted_at,
            "wall_seconds": wall_seconds,
            "recorded_at": recorded_at,
            **_source_attrs(source),
        }
    )


def _source_attrs(source: Source) -> dict[str, Any]:
    return {
        "src_bucket": source.bucket,
        "src_key": source.key,
        "src_version": source.version_id,
        "src_etag": source.etag,
        "src_seq": source.seq,
    }


def source_seq(last_modified: datetime | None, sequencer: str | None) -> str:
    """The order of one S3 key's versions: last-modified time, then S3's hex event sequencer.

    S3 says a greater sequencer (as a hexadecimal number) on the same key is a later event; the
    zero-padding makes string order equal numeric order.
    """
    lm = last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last_modified else "0000-00-00T00:00:00Z"
    seqr = (sequencer or "").strip().upper()
    return f"{lm}#{seqr.rjust(40, '0')}"


# ---------------------------------------------------------------- writes


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
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            unchanged += 1
        day = item["day_pk"]["S"][2:]
        if day not in days_seen:
            ddb.put_item(
                TableName=table, Item={"pk": {"S": CALENDAR_PK}, "sk": {"S": f"D#{day}"}, "kind": {"S": "day"}}
            )
            days_seen.add(day)
    return WriteResult(written, unchanged)


# ---------------------------------------------------------------- table discovery


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


# ---------------------------------------------------------------- queries


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
            ExpressionAttributeValues={":pk": {"S": f"OBJ#{object_id}"}},
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
        "ExpressionAttributeValues": {":pk": {"S": f"J#{job}"}},
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
    "event_type",
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
                ":pk": {"S": f"W#{worker_id}"},
                ":lo": {"S": since or "0"},
                ":hi": {"S": (until or "9999") + _HIGH},
            },
            **proj,
        )
    )


def list_days(ddb: Any, table: str, since: str | None, until: str | None) -> list[str]:
    """The days (``yyyy-mm-dd``) that have records, within ``[since, until]``."""
    lo = f"D#{since[:10]}" if since else "D#"
    hi = f"D#{until[:10]}" if until else "D#" + _HIGH
    items = _query(
        ddb,
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":pk": {"S": CALENDAR_PK}, ":lo": {"S": lo}, ":hi": {"S": hi}},
    )
    return [str(i["sk"])[2:] for i in items]


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
            ExpressionAttributeValues={":pk": {"S": f"D#{day}"}, ":lo": {"S": lo}, ":hi": {"S": hi}},
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
