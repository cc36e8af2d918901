"""The traceability table's items: key design, DynamoDB wire format, one builder per item kind.

One DynamoDB table (``TraceTable`` in template.yaml), single-table design:

=========  ======================  ========================================  ==================================
item       pk                      sk                                        indexes (pk / sk)
=========  ======================  ========================================  ==================================
task       ``OBJ#<object-id>``     ``TASK#<job>#<iteration>#<worker>``       ByWorker ``W#<worker>`` / ``<time>#T#..``
                                                                             ByJob ``J#<job>`` / ``T#<object>#..``
                                                                             ByDay ``D#<yyyy-mm-dd>`` / ``<time>#T#..``
verdict    ``OBJ#<object-id>``     ``VERDICT#<audit job>#<it>#<auditor>#<labeler>``  ByWorker ``W#<labeler>``,
                                                                             ByJob ``J#<labeling job>``, ByDay
score      ``OBJ#<object-id>``     ``SCORE#<job>#<worker>``                  ByWorker ``W#<worker>`` / ``<time>#S#..``
                                                                             ByJob ``J#<job>`` / ``S#<object>#<worker>``
                                                                             ByDay ``D#<yyyy-mm-dd>`` / ``<time>#S#..``
activity   ``ACT#<job>``           ``<worker>#<accepted>#<event>``           ByWorker, ByJob, ByDay
day        ``CAL``                 ``D#<yyyy-mm-dd>``                        (none): the days that have records
=========  ======================  ========================================  ==================================

The base table answers "the lineage of one object" (Query ``pk = OBJ#id``); ByWorker answers
"one worker between two times"; ByJob "one job"; ByDay with the ``CAL`` items "everyone between
two times" without a Scan. ``<time>`` is the fixed-width ISO submission time, so a time range is a
``BETWEEN`` on the sort key (a score's ``<time>`` is its scores file's last-modified time: a
labeling answer has no later moment of its own; ByWorker ``<time>#S#<job>#<object>``, ByDay
``<time>#S#<job>#<object>#<worker>``). ``store`` writes these items and queries them.

A score item holds one worker's scores on one object of a labeling job: ``iou``, ``class_iou``
(``{class: [inter, union]}``, so a report sums pixels over objects) and ``confusion``
(``[[reference, painted, pixels], ...]``) against the vote, the same three prefixed ``gold_``
against a gold object's truth, ``gold`` and ``seeded``. A task item of a seeded audit carries
``seeded`` and ``seeded_outcome`` (``records.seeded_outcome``).

Items are built in DynamoDB's wire format (``{"S": ...}``, ``{"N": ...}``) straight from the
records, so the writes need no ``Decimal`` and the reads decode pages without botocore's shape
walk (see ``store.fast_query_pages``).
"""

from __future__ import annotations

from typing import Any

from gtaudit.models.stages import WorkerScore
from gtaudit.trace.records import ScoreRecord, Source, TaskRecord, VerdictRecord

BY_WORKER, BY_JOB, BY_DAY = "ByWorker", "ByJob", "ByDay"
# (index name, partition key attribute, sort key attribute); template.yaml declares the same.
INDEXES: dict[str, tuple[str, str]] = {
    BY_WORKER: ("worker_pk", "worker_sk"),
    BY_JOB: ("job_pk", "job_sk"),
    BY_DAY: ("day_pk", "day_sk"),
}
CALENDAR_PK = "CAL"


def object_pk(object_id: str) -> str:
    """The base-table partition of one object's tasks and verdicts (its lineage)."""
    return f"OBJ#{object_id}"


def worker_pk(worker_id: str) -> str:
    """The ByWorker partition of one worker."""
    return f"W#{worker_id}"


def job_pk(job: str) -> str:
    """The ByJob partition of one job."""
    return f"J#{job}"


def day_pk(day: str) -> str:
    """The ByDay partition of one day (``yyyy-mm-dd``), and that day's sort key in the calendar."""
    return f"D#{day}"


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


def _keys(
    time: str, *, obj: str, sk: str, worker: str, worker_sk: str, job: str, job_sk: str, day_sk: str
) -> dict[str, str]:
    """An item's base key and its three index keys, as the key table above lays them out."""
    return {
        "pk": object_pk(obj),
        "sk": sk,
        "worker_pk": worker_pk(worker),
        "worker_sk": worker_sk,
        "job_pk": job_pk(job),
        "job_sk": job_sk,
        "day_pk": day_pk(time[:10]),
        "day_sk": day_sk,
    }


def task_item(rec: TaskRecord, source: Source, *, fallback_time: str, recorded_at: str) -> dict[str, Any]:
    """The table item of one task record (wire format).

    ``fallback_time`` (the file's last-modified time) places a record without a submission time
    on the time axis; ``time_from`` says which was used.
    """
    t = rec.submitted_at or fallback_time
    obj = rec.object_id or f"?{rec.job}/{rec.dataset_object_id}"
    it = f"{rec.iteration:04d}"
    attrs: dict[str, Any] = {
        **_keys(
            t,
            obj=obj,
            sk=f"TASK#{rec.job}#{it}#{rec.worker_id}",
            worker=rec.worker_id,
            worker_sk=f"{t}#T#{rec.job}#{rec.dataset_object_id}#{it}",
            job=rec.job,
            job_sk=f"T#{obj}#{it}#{rec.worker_id}",
            day_sk=f"{t}#T#{rec.job}#{rec.dataset_object_id}#{it}#{rec.worker_id}",
        ),
        "kind": "task",
        "time": t,
        "time_from": "submissionTime" if rec.submitted_at else "s3-last-modified",
        **_object_attrs(rec),
        "iteration": rec.iteration,
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
        "seeded": rec.seeded,
        "seeded_outcome": rec.seeded_outcome,
        "recorded_at": recorded_at,
        **_source_attrs(source),
        **rec.extra,
    }
    return _item(attrs)


def score_item(rec: ScoreRecord, source: Source, *, time: str, recorded_at: str) -> dict[str, Any]:
    """The table item of one worker's scores on one object (wire format); ``time`` is the file's."""
    obj = rec.object_id or f"?{rec.job}/{rec.dataset_object_id}"
    attrs: dict[str, Any] = {
        **_keys(
            time,
            obj=obj,
            sk=f"SCORE#{rec.job}#{rec.worker_id}",
            worker=rec.worker_id,
            worker_sk=f"{time}#S#{rec.job}#{obj}",
            job=rec.job,
            job_sk=f"S#{obj}#{rec.worker_id}",
            day_sk=f"{time}#S#{rec.job}#{obj}#{rec.worker_id}",
        ),
        "kind": "score",
        "time": time,
        **_object_attrs(rec),
        "gold": rec.gold,
        **_score_attrs("", rec.consensus),
        **_score_attrs("gold_", rec.truth),
        "seeded": rec.seeded,
        "recorded_at": recorded_at,
        **_source_attrs(source),
    }
    return _item(attrs)


def _object_attrs(rec: TaskRecord | ScoreRecord) -> dict[str, Any]:
    """Which job, stage, round, object and worker a task or score item is about."""
    return {
        "job": rec.job,
        "stage": rec.stage,
        "round": rec.round,
        "object_id": rec.object_id,
        "dataset_object_id": rec.dataset_object_id,
        "worker_id": rec.worker_id,
    }


def _score_attrs(prefix: str, score: WorkerScore | None) -> dict[str, Any]:
    if score is None:
        return {}
    return {
        f"{prefix}iou": score.iou,
        f"{prefix}class_iou": {name: [c.inter, c.union] for name, c in score.classes.items()},
        f"{prefix}confusion": [[c.reference, c.painted, c.pixels] for c in score.confusion],
    }


def verdict_item(v: VerdictRecord, source: Source, *, fallback_time: str, recorded_at: str) -> dict[str, Any]:
    """The table item of one verdict on one labeler (wire format)."""
    t = v.judged_at or fallback_time
    obj = v.object_id or f"?{v.audit_job}"
    it = f"{v.iteration:04d}"
    attrs: dict[str, Any] = {
        **_keys(
            t,
            obj=obj,
            sk=f"VERDICT#{v.audit_job}#{it}#{v.auditor}#{v.labeler}",
            worker=v.labeler,
            worker_sk=f"{t}#V#{v.audit_job}#{obj}#{v.auditor}",
            job=v.labeling_job or v.audit_job,
            job_sk=f"V#{obj}#{it}#{v.auditor}#{v.labeler}",
            day_sk=f"{t}#V#{v.audit_job}#{obj}#{v.auditor}#{v.labeler}",
        ),
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
            "worker_pk": worker_pk(worker_id),
            "worker_sk": f"{ended_at}#A#{job}#{event_type}",
            "job_pk": job_pk(job),
            "job_sk": f"A#{worker_id}#{ended_at}#{event_type}",
            "day_pk": day_pk(ended_at[:10]),
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


def calendar_item(day_key: str) -> dict[str, Any]:
    """The ``CAL`` item that lists one day; ``day_key`` is that day's ``D#<yyyy-mm-dd>`` partition key."""
    return {"pk": {"S": CALENDAR_PK}, "sk": {"S": day_key}, "kind": {"S": "day"}}


def _source_attrs(source: Source) -> dict[str, Any]:
    return {
        "src_bucket": source.bucket,
        "src_key": source.key,
        "src_version": source.version_id,
        "src_etag": source.etag,
        "src_seq": source.seq,
    }
