"""Traceability records: what one worker did to one object in one job, parsed from the jobs' files.

A worker-response file (reference, section 6) lives at
``<S3OutputPath>/<job>/annotations/worker-response/iteration-N/<datasetObjectId>/<timestamp>.json``
and holds ``answers[]``. Each answer becomes one ``TaskRecord``; an audit answer that judged
labelers also becomes one ``VerdictRecord`` per judged labeler, so a labeler's rejection rate can be
read from that labeler's own partition.

An audit of a seeded object (its manifest line's ``gtaudit.seeded`` names the defect of the mask
shown, ``none`` for the unaltered truth) judges the auditor, not the labelers: its task record
carries ``seeded`` and ``seeded_outcome`` (``seeded_outcome``) and it makes no verdict records.

A scores file (``gtaudit.models.stages.ScoresFile``, written by labeling_post at
``<job>/annotations/consolidated-annotation/scores/<name>.json``) becomes one ``ScoreRecord`` per
worker: that worker's scores against the vote and, on a gold object, against the truth.
``parse_trace_key`` tells the two kinds of file apart by their keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from gtaudit.exceptions import InvalidEventError
from gtaudit.models.stages import ScoresFile, WorkerScore
from gtaudit.names import parse_job_name
from gtaudit.reasons import REASON_CODES

# <S3OutputPath>/<job>/annotations/worker-response/iteration-N/<datasetObjectId>/<file>.json
_RESPONSE_KEY = re.compile(
    r"^(?P<root>(?:.*/)?(?P<job>[A-Za-z0-9](?:-*[A-Za-z0-9])*))/annotations/worker-response/"
    r"iteration-(?P<iteration>\d+)/(?P<object>[^/]+)/(?P<file>[^/]+\.json)$"
)
# <S3OutputPath>/<job>/annotations/consolidated-annotation/scores/<name>.json (layout.scores_file)
_SCORES_KEY = re.compile(
    r"^(?P<root>(?:.*/)?(?P<job>[A-Za-z0-9](?:-*[A-Za-z0-9])*))/annotations/consolidated-annotation/scores/"
    r"(?P<name>[^/]+)\.json$"
)
STAGES = ("labeling", "rework", "audit")
# What an audit line's gtaudit.seeded may say: a defect is the reason code that names it (gtaudit.gold).
# Not imported from gtaudit.gold, which needs numpy: the worktime function ships without it.
SEEDED = frozenset({*REASON_CODES, "none"})
SeededOutcome = Literal["caught", "caught-other-reason", "missed", "passed", "false-reject"]


@dataclass(frozen=True, slots=True)
class ResponseKey:
    """The parts of a worker-response file's S3 key."""

    job_root: str  # the key prefix ``<S3OutputPath key part>/<job>``
    job: str
    iteration: int
    dataset_object_id: str
    file: str


def parse_response_key(key: str) -> ResponseKey | None:
    """Split a worker-response key into its parts; ``None`` for any other key."""
    m = _RESPONSE_KEY.match(key)
    if not m:
        return None
    return ResponseKey(m["root"], m["job"], int(m["iteration"]), m["object"], m["file"])


@dataclass(frozen=True, slots=True)
class ScoresKey:
    """The parts of a scores file's S3 key."""

    job_root: str
    job: str
    name: str  # the object's claimed name in its job


def parse_scores_key(key: str) -> ScoresKey | None:
    """Split a scores file's key into its parts; ``None`` for any other key."""
    m = _SCORES_KEY.match(key)
    return ScoresKey(m["root"], m["job"], m["name"]) if m else None


def parse_trace_key(key: str) -> ResponseKey | ScoresKey | None:
    """What a file the worktime function is told about is, by its key; ``None`` for anything else."""
    return parse_response_key(key) or parse_scores_key(key)


@dataclass(frozen=True, slots=True)
class Source:
    """Which S3 object version a record came from, and its order among versions of that key."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    seq: str  # comparable: later writes of the same key sort higher


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a record needs to know about its job and its data object."""

    job: str
    stage: str  # labeling | rework | audit | unknown
    round: int | None
    object_id: str | None
    # audit only: the labelers and the labeling job the audited mask came from
    judged: tuple[str, ...] = ()
    labeling_job: str | None = None
    seeded: str | None = None  # audit of a seeded object: the defect shown (``none``: the clean truth)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One submitted task: (job, object, worker, iteration), with its times and, for audits, verdict."""

    job: str
    stage: str
    round: int | None
    object_id: str | None
    dataset_object_id: str
    iteration: int
    worker_id: str
    cognito_sub: str | None
    cognito_issuer: str | None
    identity_provider: str | None
    accepted_at: str | None  # ISO 8601 UTC, millisecond precision
    submitted_at: str | None
    active_seconds: float | None
    wall_seconds: float | None
    missing: tuple[str, ...]  # fields the file did not have, e.g. ("acceptanceTime", "timeSpentInSeconds")
    verdict: str | None = None  # audits: approve | reject | None (no choice made)
    reasons: tuple[str, ...] = ()
    judged: tuple[str, ...] = ()
    labeling_job: str | None = None
    seeded: str | None = None
    seeded_outcome: SeededOutcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. e-mail from a configured directory


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One worker's scores on one object in one labeling job: against the vote, and the truth on gold."""

    job: str
    stage: str
    round: int | None
    object_id: str | None
    dataset_object_id: str
    worker_id: str
    gold: bool
    consensus: WorkerScore | None
    truth: WorkerScore | None
    seeded: str | None


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One auditor's verdict on one labeler's work on one object in one round."""

    labeler: str
    auditor: str
    verdict: str
    object_id: str | None
    round: int | None
    labeling_job: str | None
    audit_job: str
    iteration: int
    judged_at: str | None


def stage_of(job: str, data_object: dict[str, Any] | None = None) -> tuple[str, int | None]:
    """The stage and round of a job: from its name, else from the manifest line's ``gtaudit`` data."""
    parts = parse_job_name(job)
    if parts is not None:
        return parts.kind, parts.round
    hand_over = (data_object or {}).get("gtaudit")
    if isinstance(hand_over, dict):
        rnd = hand_over.get("round")
        rnd = rnd if isinstance(rnd, int) and not isinstance(rnd, bool) else None
        if hand_over.get("stage") == "audit":
            return "audit", rnd
        if rnd is not None:
            return ("labeling" if rnd <= 1 else "rework"), rnd
    return "unknown", None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or offset, any fraction) as aware UTC; ``None`` if unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)
    except OverflowError:  # an offset that moves the time outside datetime's years 1..9999
        return None


def iso(t: datetime) -> str:
    """``2026-11-24T10:01:54.343Z``: fixed width, so strings sort in time order."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        v = float(value)
    except (ValueError, OverflowError):
        return None
    # DynamoDB stores no infinity or NaN: such a time would fail the whole file's write.
    return v if math.isfinite(v) and v >= 0 else None


def _checked(content: Any, name: str) -> bool:
    """A crowd-radio-button / crowd-checkbox answer ``{"<name>": {"on": true}}`` is checked."""
    value = content.get(name) if isinstance(content, dict) else None
    if isinstance(value, dict):
        return any(v is True for v in value.values())
    return value is True


def audit_verdict(content: Any) -> tuple[str | None, tuple[str, ...]]:
    """The verdict and reason codes of an audit answer (``approve``/``reject`` radio buttons).

    Both or neither checked gives ``None``: the answer is recorded, but judges nobody.
    """
    approve, reject = _checked(content, "approve"), _checked(content, "reject")
    reasons = tuple(sorted(code for code in REASON_CODES if _checked(content, f"reason-{code}")))
    if approve == reject:
        return None, reasons
    return ("reject" if reject else "approve"), reasons


def seeded_outcome(defect: str | None, verdict: str | None, reasons: tuple[str, ...]) -> SeededOutcome | None:
    """What an auditor did with a seeded mask; ``None`` when it is not seeded or no verdict was given.

    A defect: ``caught`` (rejected with the defect's reason), ``caught-other-reason`` (rejected
    without it) or ``missed`` (approved). The clean truth (``none``): ``passed`` or ``false-reject``.
    """
    if defect is None or verdict is None:
        return None
    if defect == "none":
        return "passed" if verdict == "approve" else "false-reject"
    if verdict == "approve":
        return "missed"
    return "caught" if defect in reasons else "caught-other-reason"


def parse_answers(doc: Any, ctx: JobContext, key: ResponseKey) -> list[TaskRecord]:
    """The task records of one worker-response document.

    Missing times are recorded as ``None`` and named in ``missing``; an answer without a
    ``workerId`` is kept as worker ``"unknown"``. Only a document without ``answers[]`` raises.

    Raises
    ------
    InvalidEventError
        ``doc`` is not an object with an ``answers`` list.
    """
    answers = doc.get("answers") if isinstance(doc, dict) else None
    if not isinstance(answers, list):
        raise InvalidEventError("worker-response file has no answers[] list")
    records = []
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        missing: list[str] = []
        accepted = parse_time(answer.get("acceptanceTime"))
        submitted = parse_time(answer.get("submissionTime"))
        active = _number(answer.get("timeSpentInSeconds"))
        for name, value in (
            ("acceptanceTime", accepted),
            ("submissionTime", submitted),
            ("timeSpentInSeconds", active),
        ):
            if value is None:
                missing.append(name)
        wall = (submitted - accepted).total_seconds() if accepted and submitted and submitted >= accepted else None
        worker = answer.get("workerId")
        if not isinstance(worker, str) or not worker:
            worker = "unknown"
            missing.append("workerId")
        metadata = answer.get("workerMetadata")
        identity = metadata.get("identityData") if isinstance(metadata, dict) else None
        if not isinstance(identity, dict):
            identity = {}
        if ctx.object_id is None:
            missing.append("object-id")
        verdict: str | None = None
        reasons: tuple[str, ...] = ()
        if ctx.stage == "audit":
            verdict, reasons = audit_verdict(answer.get("answerContent"))
        records.append(
            TaskRecord(
                job=ctx.job,
                stage=ctx.stage,
                round=ctx.round,
                object_id=ctx.object_id,
                dataset_object_id=key.dataset_object_id,
                iteration=key.iteration,
                worker_id=worker,
                cognito_sub=_str(identity.get("sub")),
                cognito_issuer=_str(identity.get("issuer")),
                identity_provider=_str(identity.get("identityProviderType")),
                accepted_at=iso(accepted) if accepted else None,
                submitted_at=iso(submitted) if submitted else None,
                active_seconds=round(active, 3) if active is not None else None,
                wall_seconds=round(wall, 3) if wall is not None else None,
                missing=tuple(missing),
                verdict=verdict,
                reasons=reasons,
                judged=ctx.judged if ctx.stage == "audit" else (),
                labeling_job=ctx.labeling_job if ctx.stage == "audit" else None,
                seeded=ctx.seeded if ctx.stage == "audit" else None,
                seeded_outcome=seeded_outcome(ctx.seeded, verdict, reasons) if ctx.stage == "audit" else None,
            )
        )
    return records


def parse_scores(doc: ScoresFile, ctx: JobContext) -> list[ScoreRecord]:
    """One record per worker scored in a scores file, against the vote, the truth or both."""
    consensus, truth = doc.consensus or {}, doc.truth or {}
    return [
        ScoreRecord(
            job=ctx.job,
            stage=ctx.stage,
            round=ctx.round,
            object_id=ctx.object_id,
            dataset_object_id=doc.dataset_object_id,
            worker_id=worker,
            gold=doc.gold,
            consensus=consensus.get(worker),
            truth=truth.get(worker),
            seeded=doc.seeded,
        )
        for worker in sorted({*consensus, *truth})
    ]


def verdicts_of(record: TaskRecord) -> list[VerdictRecord]:
    """One ``VerdictRecord`` per labeler an audit record judged (none if no verdict was given)."""
    if record.stage != "audit" or record.verdict is None:
        return []
    return [
        VerdictRecord(
            labeler=labeler,
            auditor=record.worker_id,
            verdict=record.verdict,
            object_id=record.object_id,
            round=record.round,
            labeling_job=record.labeling_job,
            audit_job=record.job,
            iteration=record.iteration,
            judged_at=record.submitted_at,
        )
        for labeler in record.judged
    ]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
