"""The audit (検品) stage, after the auditors: each auditor's answer -> a verdict, merged per object.

``post_audit`` turns each auditor's answer into a verdict and merges the verdicts of several
auditors into one with the rule **any reject wins**: one reject makes the object rejected, the
reasons and region notes of every rejecting auditor are merged, and all comments are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gtaudit.exceptions import (
    ForbiddenLocationError,
    InvalidAnswerError,
    InvalidEventError,
    InvalidS3UriError,
    S3ObjectUnavailableError,
)
from gtaudit.models import PostAnnotationEvent
from gtaudit.reasons import REASON_CODES, reason_inputs
from gtaudit.s3io import get_bytes, get_json
from gtaudit.s3uri import S3Uri, check_allowed, parse_s3_uri

MAX_COMMENT = 2000  # characters kept of one auditor's comment
MAX_NOTES = 50  # region notes kept of one auditor
MAX_NOTE_TEXT = 500
MAX_ANSWER_BYTES = 1_000_000  # an answer file given by s3Uri larger than this is refused


@dataclass(frozen=True, slots=True)
class Verdict:
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


def parse_answer(auditor: str, content: Mapping[str, Any]) -> Verdict:
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
    Verdict

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
        return Verdict(auditor, "approve", comment=comment)
    reasons = tuple(
        code for code in sorted(REASON_CODES) if _checked(content.get(f"reason-{code}"))
    )  # sorted: stable output
    notes, dropped = _notes(content.get("region-notes"))
    if not reasons and not comment and not notes:
        # Keep the reject (the auditor's decision counts) but say that it came with no feedback.
        reasons, dropped = ("other",), [*dropped, "a reject came with no reason, comment or region note"]
    return Verdict(auditor, "reject", reasons, comment, tuple(notes), tuple(dropped))


def consolidate(verdicts: list[Verdict], excluded: list[dict[str, str]]) -> dict[str, Any]:
    """Merge several auditors' verdicts into one: **any reject wins**.

    Reasons are the union (in ``gtaudit.reasons`` order), notes are concatenated and renumbered,
    comments are joined one per line as ``<auditor>: <comment>``. No usable verdict gives a failure.
    """
    if not verdicts:
        detail = "; ".join(f"{e['workerId']}: {e['reason']}" for e in excluded) or "no answer"
        reason = f"no usable answer: {detail}"
        return {"status": "failed", "failure-reason": reason, "auditors": [], "excluded": excluded}
    rejects = [v for v in verdicts if v.verdict == "reject"]
    reasons = sorted({r for v in rejects for r in v.reasons}, key=_REASON_ORDER.__getitem__)
    notes = [{"n": i, **note} for i, note in enumerate((n for v in rejects for n in v.notes), start=1)]
    comments = [f"{v.auditor}: {v.comment}" if len(verdicts) > 1 else v.comment for v in verdicts if v.comment]
    return {
        "status": "audited",
        "verdict": "reject" if rejects else "approve",
        "reasons": reasons,
        "comment": "\n".join(comments),
        "notes": notes,
        "auditors": [v.auditor for v in verdicts],
        "votes": {"approve": len(verdicts) - len(rejects), "reject": len(rejects)},
        "excluded": excluded,
    }


_REASON_ORDER = {code: i for i, code in enumerate(r["code"] for r in reason_inputs("en"))}


def _annotation_content(s3: Any, annotation: Mapping[str, Any], allowed: list[str]) -> Any:
    data = annotation.get("annotationData")
    if not isinstance(data, Mapping):
        raise InvalidAnswerError("annotationData is missing")
    if isinstance(data.get("content"), str):
        raw: str | bytes = data["content"]
    elif isinstance(data.get("s3Uri"), str):
        try:
            uri = check_allowed(parse_s3_uri(data["s3Uri"]), allowed)
            raw = get_bytes(s3, uri, max_bytes=MAX_ANSWER_BYTES)
        except (InvalidS3UriError, ForbiddenLocationError, S3ObjectUnavailableError, ValueError) as exc:
            raise InvalidAnswerError(f"answer file: {exc}") from exc
    else:
        raise InvalidAnswerError("annotationData has neither content nor s3Uri")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidAnswerError(f"answer is not JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidAnswerError(f"answer is not UTF-8: {exc.reason}") from exc


def consolidate_object(s3: Any, item: Mapping[str, Any], allowed: list[str]) -> dict[str, Any]:
    """Consolidate one entry of the consolidation request into the audit attribute's content."""
    verdicts: list[Verdict] = []
    excluded: list[dict[str, str]] = []
    annotations = item.get("annotations")
    for ann in annotations if isinstance(annotations, list) else []:
        worker = str(ann.get("workerId", "")) if isinstance(ann, Mapping) else ""
        try:
            if not isinstance(ann, Mapping):
                raise InvalidAnswerError("annotation is not an object")
            verdicts.append(parse_answer(worker, _annotation_content(s3, ann, allowed)))
        except InvalidAnswerError as exc:
            excluded.append({"workerId": worker, "reason": str(exc)})
    return consolidate(verdicts, excluded)


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
    try:
        request: S3Uri = check_allowed(parse_s3_uri(event.payload.s3_uri), allowed)
    except (InvalidS3UriError, ForbiddenLocationError) as exc:
        raise InvalidEventError(f"payload.s3Uri: {exc}") from exc
    try:
        batch = get_json(s3, request)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidEventError("the consolidation request is not JSON") from None
    if not isinstance(batch, list):
        raise InvalidEventError("the consolidation request is not a JSON array")
    out = []
    for item in batch:
        if not isinstance(item, Mapping) or "datasetObjectId" not in item:
            continue  # nothing to answer for: GT needs the id to match the result
        content = consolidate_object(s3, item, allowed)
        out.append(
            {
                "datasetObjectId": str(item["datasetObjectId"]),
                "consolidatedAnnotation": {"content": {event.label_attribute_name: content}},
            }
        )
    return out
