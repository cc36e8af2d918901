"""The audit (検品) stage, after the auditors: each auditor's answer -> a verdict, merged per object.

``post_audit`` reads the batch with the shared reader (``gtaudit.consolidation``), turns each
auditor's answer into an ``AuditorAnswer`` (``read_verdict``) and merges the answers of several
auditors into one ``AuditVerdict`` with the rule **any reject wins**: one reject makes the object
rejected, the reasons and region notes of every rejecting auditor are merged, and all comments are
kept. An answer that cannot be used excludes its auditor, never the object or the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gtaudit.consolidation import read_answers, read_batch, response_entry
from gtaudit.exceptions import InvalidAnswerError
from gtaudit.models.groundtruth import ConsolidationItem, PostAnnotationEvent
from gtaudit.models.stages import MAX_COMMENT, MAX_NOTE_TEXT, MAX_NOTES, AuditVerdict, Exclusion, RegionNote, Votes
from gtaudit.reasons import REASON_CODES, reason_inputs


@dataclass(frozen=True, slots=True)
class AuditorAnswer:
    """One auditor's parsed answer."""

    auditor: str
    verdict: Literal["approve", "reject"]
    reasons: tuple[str, ...] = ()
    comment: str = ""
    notes: tuple[dict[str, Any], ...] = ()
    dropped: tuple[str, ...] = field(default=())  # parts of the answer that were ignored, with why


def _checked(value: object) -> bool:
    """A crowd-radio-button / crowd-checkbox value: ``{"on": true}`` (or a bare boolean)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return any(v is True for v in value.values())
    return False


def _notes(raw: object) -> tuple[list[dict[str, Any]], list[str]]:
    dropped: list[str] = []
    if raw in (None, ""):
        return [], dropped
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return [], ["region-notes is not JSON"]
    if not isinstance(data, list):
        return [], ["region-notes is not a list"]
    notes: list[dict[str, Any]] = []
    for item in data[:MAX_NOTES]:
        if not isinstance(item, Mapping):
            dropped.append("a region note is not an object")
            continue
        x, y, text = item.get("x"), item.get("y"), item.get("text", "")
        if not (isinstance(x, int | float) and isinstance(y, int | float) and 0 <= x <= 1 and 0 <= y <= 1):
            dropped.append("a region note's x/y is not a fraction 0..1")
            continue
        notes.append({"x": float(x), "y": float(y), "text": str(text)[:MAX_NOTE_TEXT]})
    if len(data) > MAX_NOTES:
        dropped.append(f"{len(data) - MAX_NOTES} region notes over the limit of {MAX_NOTES}")
    return notes, dropped


def read_verdict(auditor: str, content: Mapping[str, Any]) -> AuditorAnswer:
    """Parse one auditor's ``answerContent`` of ``ui/audit.liquid.html``.

    Parameters
    ----------
    auditor
        The worker ID.
    content
        ``{"approve": {"on": bool}, "reject": {"on": bool}, "reason-<code>": {"on": bool}, ...,
        "comment": str, "region-notes": "<JSON list of {n, x, y, text}>"}``.

    Returns
    -------
    AuditorAnswer

    Raises
    ------
    InvalidAnswerError
        Neither or both of approve/reject chosen. (A reject with no feedback at all is kept, as reason ``other``.)
    """
    if not isinstance(content, Mapping):
        raise InvalidAnswerError(f"answer content is {type(content).__name__}, not an object")
    approve, reject = _checked(content.get("approve")), _checked(content.get("reject"))
    if approve == reject:
        raise InvalidAnswerError("exactly one of approve/reject must be chosen" if approve else "no verdict chosen")
    comment = content.get("comment", "")
    comment = comment.strip()[:MAX_COMMENT] if isinstance(comment, str) else ""
    if approve:
        return AuditorAnswer(auditor, "approve", comment=comment)
    reasons = tuple(
        code for code in sorted(REASON_CODES) if _checked(content.get(f"reason-{code}"))
    )  # sorted: stable output
    notes, dropped = _notes(content.get("region-notes"))
    if not reasons and not comment and not notes:
        # Keep the reject (the auditor's decision counts) but say that it came with no feedback.
        reasons, dropped = ("other",), [*dropped, "a reject came with no reason, comment or region note"]
    return AuditorAnswer(auditor, "reject", reasons, comment, tuple(notes), tuple(dropped))


def merge_verdicts(answers: list[AuditorAnswer], excluded: list[Exclusion]) -> AuditVerdict:
    """Merge several auditors' answers into one verdict: **any reject wins**.

    Reasons are the union (in ``gtaudit.reasons`` order), notes are concatenated and renumbered,
    comments are joined one per line as ``<auditor>: <comment>``. No usable answer gives a failure.
    """
    if not answers:
        detail = "; ".join(f"{e.worker_id}: {e.reason}" for e in excluded) or "no answer"
        return AuditVerdict(
            status="failed", failure_reason=f"no usable answer: {detail}", auditors=[], excluded=excluded
        )
    rejects = [a for a in answers if a.verdict == "reject"]
    reasons = sorted({r for a in rejects for r in a.reasons}, key=_REASON_ORDER.__getitem__)
    notes = [RegionNote(n=i, **note) for i, note in enumerate((n for a in rejects for n in a.notes), start=1)]
    comments = [f"{a.auditor}: {a.comment}" if len(answers) > 1 else a.comment for a in answers if a.comment]
    return AuditVerdict(
        status="audited",
        verdict="reject" if rejects else "approve",
        reasons=reasons,
        comment="\n".join(comments),
        notes=notes,
        auditors=[a.auditor for a in answers],
        votes=Votes(approve=len(answers) - len(rejects), reject=len(rejects)),
        excluded=excluded,
    )


_REASON_ORDER = {code: i for i, code in enumerate(r["code"] for r in reason_inputs("en"))}


def consolidate_verdicts(s3: Any, item: ConsolidationItem, allowed: list[str]) -> AuditVerdict:
    """Read and merge one object's audit answers."""
    answers: list[AuditorAnswer] = []
    excluded: list[Exclusion] = []
    for got in read_answers(s3, item, allowed=allowed):
        if isinstance(got, Exclusion):
            excluded.append(got)
            continue
        try:
            answers.append(read_verdict(got.worker_id, got.content))
        except InvalidAnswerError as exc:
            excluded.append(Exclusion(worker_id=got.worker_id, reason=str(exc)))
    return merge_verdicts(answers, excluded)


def post_audit(s3: Any, event: PostAnnotationEvent, *, allowed: Iterable[str]) -> list[dict[str, Any]]:
    """The consolidation response for one batch of audited objects.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    event
        The parsed consolidation event; the batch is read from ``payload.s3Uri``.
    allowed
        Locations the request file and answer files may come from.

    Returns
    -------
    list
        ``[{"datasetObjectId", "consolidatedAnnotation": {"content": {<labelAttributeName>: {...}}}}]``,
        one entry per object of the batch, a failure result where no answer was usable.

    Raises
    ------
    InvalidEventError
        The request file is outside ``allowed``, or is not a JSON array.
    """
    allowed = list(allowed)
    batch = read_batch(s3, event, allowed=allowed)
    return [
        response_entry(item.dataset_object_id, event.label_attribute_name, consolidate_verdicts(s3, item, allowed))
        for item in batch.items
    ]
