"""Record one file in the trace table (the worktime function's domain code).

``record_file`` takes the file an ``Object Created`` event names and tells its kind by its key
(``records.parse_trace_key``): a worker-response file (one task item per answer, verdict items for
an audit's judged labelers) or a scores file (one score item per worker, at the file's
last-modified time). Every other key is skipped.

The object identity: a worker-response file only names GT's ``datasetObjectId`` (the index of
the line in the job's input manifest), so the manifest line is looked up to read its
``object-id`` (and, for audits, ``gtaudit.labelers``). The manifest is found with
``DescribeLabelingJob`` (``InputConfig.DataSource.S3DataSource.ManifestS3Uri``), which works
for every job on AWS and on the local runtime; if that fails, the job's own
``manifests/output/output.manifest`` is tried (it keeps the input lines in order once the job
ends). A manifest is immutable once its job exists, so the container keeps what it needs from
the most recently used jobs' manifests. If neither answers, the record is kept with
``object-id`` marked missing. A scores file names its object by ``dataset-object-id`` too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from pydantic import ValidationError

from gtaudit.exceptions import InvalidEventError
from gtaudit.manifest import GTAUDIT_KEY, OBJECT_ID_KEY, BadLine, iter_manifest, object_id_of
from gtaudit.models import describe_errors
from gtaudit.models.stages import ScoresFile
from gtaudit.s3io import is_not_found, iter_lines, typed_s3_errors
from gtaudit.s3uri import S3Uri, parse_s3_uri
from gtaudit.trace.items import score_item, task_item, verdict_item
from gtaudit.trace.records import (
    SEEDED,
    JobContext,
    ResponseKey,
    ScoresKey,
    Source,
    TaskRecord,
    iso,
    parse_answers,
    parse_scores,
    parse_trace_key,
    stage_of,
    verdicts_of,
)
from gtaudit.trace.store import put_items, source_seq

logger = logging.getLogger(__name__)

# A directory lookup: worker ID -> extra attributes to store (e.g. {"email": ...}). None by default,
# so no e-mail address or name is stored unless the operator configures one.
Directory = Callable[[TaskRecord], dict[str, Any]]


class ObjectInJob(Protocol):
    """A data object of a job, as a file's key (and, for a scores file, its content) names it."""

    @property
    def job_root(self) -> str: ...  # the key prefix ``<S3OutputPath key part>/<job>``

    @property
    def job(self) -> str: ...

    @property
    def dataset_object_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ScoredObject:
    """The object of a scores file: its key's job, its content's ``dataset-object-id``."""

    job_root: str
    job: str
    dataset_object_id: str


class ManifestIndex:
    """``(job, datasetObjectId)`` -> the input manifest line, read once per job and cached."""

    def __init__(self, s3: Any, sagemaker: Any | None, *, max_jobs: int = 8) -> None:
        self.max_jobs = max_jobs
        self._s3 = s3
        self._sagemaker = sagemaker
        self._lines: dict[str, dict[str, dict[str, Any]] | None] = {}

    def line(self, bucket: str, key: ObjectInJob) -> dict[str, Any] | None:
        """The manifest line of one data object, or ``None`` if no manifest can be read."""
        if key.job in self._lines:
            self._lines[key.job] = self._lines.pop(key.job)  # most recently used last
        else:
            loaded = self._load(bucket, key)
            if loaded is None:
                return None  # not cached: the failure may be transient (throttling, job still running)
            self._lines[key.job] = loaded
            while len(self._lines) > self.max_jobs:  # a warm container serves many jobs over time
                self._lines.pop(next(iter(self._lines)))
        lines = self._lines[key.job]
        return None if lines is None else lines.get(key.dataset_object_id)

    def _load(self, bucket: str, key: ObjectInJob) -> dict[str, dict[str, Any]] | None:
        for uri in self._candidates(bucket, key):
            try:
                out: dict[str, dict[str, Any]] = {}
                for index, item in enumerate(iter_manifest(iter_lines(self._s3, uri))):
                    if not isinstance(item, BadLine):
                        out[str(index)] = _slim(item.data)
                return out
            except Exception as exc:  # an unreadable manifest is a missing object ID, not a lost record
                logger.warning("manifest %s unreadable: %s", uri, exc.__class__.__name__)
        return None

    def _candidates(self, bucket: str, key: ObjectInJob) -> list[S3Uri]:
        out: list[S3Uri] = []
        if self._sagemaker is not None:
            try:
                desc = self._sagemaker.describe_labeling_job(LabelingJobName=key.job)
                out.append(parse_s3_uri(desc["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]))
            except Exception as exc:
                logger.warning("DescribeLabelingJob %s failed: %s", key.job, exc.__class__.__name__)
        out.append(S3Uri(bucket, f"{key.job_root}/manifests/output/output.manifest"))
        return out


_HAND_OVER_KEPT = ("stage", "round", "labelers", "labeling-job", "seeded")


def _slim(line: dict[str, Any]) -> dict[str, Any]:
    """Only what a record needs from a manifest line, so a 100,000-line manifest fits a small Lambda."""
    out: dict[str, Any] = {OBJECT_ID_KEY: object_id_of(line)}
    hand_over = line.get(GTAUDIT_KEY)
    if isinstance(hand_over, dict):
        out[GTAUDIT_KEY] = {k: hand_over[k] for k in _HAND_OVER_KEPT if k in hand_over}
    return out


def job_context(job: str, line: dict[str, Any] | None) -> JobContext:
    """Stage, round, object ID and (audits) judged labelers and seeded defect of one data object in one job.

    A seeded audit judges no labeler: the mask it shows is not theirs.
    """
    stage, rnd = stage_of(job, line)
    hand_over = (line or {}).get("gtaudit")
    hand_over = hand_over if isinstance(hand_over, dict) else {}
    judged: tuple[str, ...] = ()
    labeling_job = None
    seeded = None
    if stage == "audit":
        labelers = hand_over.get("labelers")
        if isinstance(labelers, list):
            judged = tuple(str(w) for w in labelers if isinstance(w, str) and w)
        lj = hand_over.get("labeling-job")
        labeling_job = lj if isinstance(lj, str) and lj else None
        seeded = hand_over.get("seeded") if hand_over.get("seeded") in SEEDED else None
        judged = () if seeded else judged
    if rnd is None and isinstance(hand_over.get("round"), int):
        rnd = hand_over["round"]
    return JobContext(
        job=job,
        stage=stage,
        round=rnd,
        object_id=object_id_of(line) if line else None,
        judged=judged,
        labeling_job=labeling_job,
        seeded=seeded,
    )


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one file gave: its records and what the table did with them."""

    key: str
    records: int
    verdicts: int
    written: int
    unchanged: int
    missing: tuple[str, ...]
    skipped: str | None = None  # why the file was not recorded
    scores: int = 0  # score records (a scores file)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the function's log line and return value)."""
        out = asdict(self)
        out["missing"] = list(self.missing)
        return out


def record_file(
    *,
    s3: Any,
    ddb: Any,
    table: str,
    manifests: ManifestIndex,
    bucket: str,
    key: str,
    version_id: str | None = None,
    sequencer: str | None = None,
    directory: Directory | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Read one file (the given version) and record it, idempotently, by the kind its key says it is.

    A worker-response file gives one task item per answer (and an audit's verdict items); a scores
    file one score item per worker, at the file's last-modified time.

    Parameters
    ----------
    s3, ddb
        boto3 S3 and DynamoDB clients.
    table
        The trace table's name.
    manifests
        The per-container cache of input manifests.
    bucket, key, version_id, sequencer
        The S3 object, as the ``Object Created`` event names it. ``version_id`` pins the exact
        version the event is about; ``sequencer`` orders events on the same key.
    directory
        Optional lookup of extra worker attributes (e.g. e-mail) to store; none by default.

    Returns
    -------
    IngestResult
        ``skipped`` is set for a key of neither kind (nothing is written).

    Raises
    ------
    InvalidEventError
        The file is not JSON, a worker response without ``answers[]`` or not a ``ScoresFile``.
    """
    parsed = parse_trace_key(key)
    if parsed is None:
        return IngestResult(key, 0, 0, 0, 0, (), skipped="not a worker-response or scores key")
    raw, source, last_modified = _read_file(s3, bucket, key, version_id, sequencer)
    recorded_at = iso(now or datetime.now(UTC))
    at = iso(last_modified) if last_modified else recorded_at  # the time of a record that has none of its own
    match parsed:
        case ResponseKey():
            records = parse_answers(raw, job_context(parsed.job, manifests.line(bucket, parsed)), parsed)
            if directory is not None:
                records = [_with_directory(r, directory) for r in records]
            items, n_verdicts = [], 0
            for rec in records:
                items.append(task_item(rec, source, fallback_time=at, recorded_at=recorded_at))
                for v in verdicts_of(rec):
                    items.append(verdict_item(v, source, fallback_time=at, recorded_at=recorded_at))
                    n_verdicts += 1
            result = put_items(ddb, table, items)
            missing = tuple(sorted({m for r in records for m in r.missing}))
            return IngestResult(key, len(records), n_verdicts, result.written, result.unchanged, missing)
        case ScoresKey():
            try:
                doc = ScoresFile.model_validate(raw)
            except ValidationError as exc:
                raise InvalidEventError(f"scores file s3://{bucket}/{key}: {describe_errors(exc)}") from None
            obj = ScoredObject(parsed.job_root, parsed.job, doc.dataset_object_id)
            scores = parse_scores(doc, job_context(parsed.job, manifests.line(bucket, obj)))
            result = put_items(ddb, table, [score_item(r, source, time=at, recorded_at=recorded_at) for r in scores])
            missing = ("object-id",) if any(r.object_id is None for r in scores) else ()
            return IngestResult(key, 0, 0, result.written, result.unchanged, missing, scores=len(scores))


def _read_file(
    s3: Any, bucket: str, key: str, version_id: str | None, sequencer: str | None
) -> tuple[Any, Source, datetime | None]:
    """The parsed JSON of one version of a file, where it came from, and its last-modified time.

    Raises
    ------
    InvalidEventError
        The file is not JSON.
    S3ObjectUnavailableError
        The file was deleted since its event (a permanent error).
    """
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        args["VersionId"] = version_id
    with typed_s3_errors():  # a file deleted since its event: a typed, permanent error
        try:
            resp = s3.get_object(**args)
        except ClientError as exc:
            # S3 event keys may arrive URL-encoded (``%3A`` for ``:``); try the decoded key once.
            decoded = unquote_plus(key)
            if decoded == key or not is_not_found(exc):
                raise
            resp = s3.get_object(**{**args, "Key": decoded})
    body = resp["Body"].read()
    last_modified: datetime | None = resp.get("LastModified")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"s3://{bucket}/{key} is not JSON") from exc
    source = Source(
        bucket=bucket,
        key=key,
        version_id=resp.get("VersionId") or version_id,
        etag=(resp.get("ETag") or "").strip('"') or None,
        seq=source_seq(last_modified, sequencer),
    )
    return doc, source, last_modified


def _with_directory(rec: TaskRecord, directory: Directory) -> TaskRecord:
    try:
        extra = directory(rec)
    except Exception as exc:  # a directory outage must not lose the time record
        logger.warning("directory lookup failed: %s", exc.__class__.__name__)
        return rec
    return replace(rec, extra={f"worker_{k}": v for k, v in extra.items() if isinstance(v, str) and v})


def cognito_directory(cognito: Any, user_pool_id: str) -> Directory:
    """A directory lookup in the workforce's Cognito user pool: the worker's e-mail and name by sub.

    Used only when the operator sets the ``WorkerDirectory`` parameter; results are cached.
    """
    cache: dict[str, dict[str, Any]] = {}

    def lookup(rec: TaskRecord) -> dict[str, Any]:
        sub = rec.cognito_sub
        if not sub:
            return {}
        if sub not in cache:
            users = cognito.list_users(
                UserPoolId=user_pool_id, Filter=f'sub = "{sub.replace(chr(34), "")}"', Limit=1
            ).get("Users", [])
            attrs = {a["Name"]: a["Value"] for a in (users[0].get("Attributes", []) if users else [])}
            cache[sub] = {"email": attrs.get("email"), "name": attrs.get("name")}
        return cache[sub]

    return lookup


def backfill_worker_responses(
    *, s3: Any, ddb: Any, table: str, manifests: ManifestIndex, bucket: str, prefix: str = ""
) -> list[IngestResult]:
    """Record every worker-response and scores file under ``s3://bucket/prefix`` (e.g. jobs from before the stack).

    Idempotent like the function: files already recorded leave the table unchanged. A file that
    cannot be parsed is skipped with its reason, never stopping the rest.
    """
    results = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if parse_trace_key(key) is None:
                continue
            try:
                results.append(record_file(s3=s3, ddb=ddb, table=table, manifests=manifests, bucket=bucket, key=key))
            except InvalidEventError as exc:
                results.append(IngestResult(key, 0, 0, 0, 0, (), skipped=str(exc)))
    return results
