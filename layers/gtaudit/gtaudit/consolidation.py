"""Ground Truth's consolidation batches, read one way for both consolidators (labeling_post, audit_post).

A consolidation Lambda gets ``payload.s3Uri``: a JSON array with one item per data object, each
with its workers' annotations, inline (``annotationData.content``, a JSON string) or by reference
(``annotationData.s3Uri``) (reference section 2). This module reads the batch and each worker's
answer; what an answer *means* (a mask, a verdict) is the stage's own business.

Failures stay as small as they can be: an item without a usable ``datasetObjectId`` is skipped with a
reason (Ground Truth could not match an answer to it anyway); an annotation that cannot be read becomes
an ``Exclusion`` with a reason, so one bad answer never costs the other workers' or objects' results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gtaudit.exceptions import (
    ForbiddenLocationError,
    InvalidAnnotationError,
    InvalidEventError,
    InvalidS3UriError,
    S3ObjectUnavailableError,
)
from gtaudit.models import describe_errors
from gtaudit.models.groundtruth import Annotation, ConsolidationItem, PostAnnotationEvent
from gtaudit.models.stages import Contract, Exclusion
from gtaudit.s3io import error_code, get_bytes, get_json
from gtaudit.s3uri import S3Uri, check_allowed, parse_s3_uri

# One worker's answer file given by annotationData.s3Uri: a 12 MP RGBA PNG in base64 stays well below.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
UNKNOWN_WORKER = "unknown-worker"


@dataclass(frozen=True, slots=True)
class WorkerAnswer:
    """One worker's parsed ``answerContent`` (whatever JSON it holds)."""

    worker_id: str
    content: Any


@dataclass(slots=True)
class Batch:
    """A consolidation request: where it is, its items, and the items that could not be used."""

    request: S3Uri
    items: list[ConsolidationItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "item <n>: <why>", for the logs


def read_batch(s3: Any, event: PostAnnotationEvent, *, allowed: Sequence[str] | None = None) -> Batch:
    """Read the batch at ``payload.s3Uri``.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    event
        The parsed consolidation event.
    allowed
        Buckets or ``s3://bucket/prefix`` locations the request may come from; ``None`` for any.

    Returns
    -------
    Batch

    Raises
    ------
    InvalidEventError
        ``payload.s3Uri`` is not an S3 URI or outside ``allowed``, or the request is not a JSON array.
    botocore.exceptions.ClientError
        The request (or, later, an answer file) cannot be read for a reason a retry may fix:
        Ground Truth retries the batch.
    """
    try:
        request = parse_s3_uri(event.payload.s3_uri)
        if allowed is not None:
            check_allowed(request, allowed)
    except (InvalidS3UriError, ForbiddenLocationError) as exc:
        raise InvalidEventError(f"PostAnnotationEvent: payload.s3Uri: {exc}") from None
    try:
        raw = get_json(s3, request)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not JSON") from None
    if not isinstance(raw, list):
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not a JSON array")
    batch = Batch(request)
    for n, item in enumerate(raw):
        try:
            batch.items.append(ConsolidationItem.model_validate(item))
        except ValidationError as exc:
            batch.skipped.append(f"item {n}: {describe_errors(exc)}")
    return batch


def read_answers(
    s3: Any, item: ConsolidationItem, *, allowed: Sequence[str] | None = None
) -> Iterator[WorkerAnswer | Exclusion]:
    """Each annotation of ``item``: the worker's parsed answer, or an ``Exclusion`` saying why it is unusable."""
    for raw in item.annotations:
        worker = raw.get("workerId") if isinstance(raw, dict) else None
        worker = worker if isinstance(worker, str) and worker else UNKNOWN_WORKER
        try:
            yield WorkerAnswer(worker, _answer_content(s3, raw, allowed))
        except InvalidAnnotationError as exc:
            yield Exclusion(worker_id=worker, reason=str(exc))


def _answer_content(s3: Any, raw: Any, allowed: Sequence[str] | None) -> Any:
    try:
        annotation = Annotation.model_validate(raw)
    except ValidationError as exc:
        raise InvalidAnnotationError(f"malformed annotation: {describe_errors(exc)}") from None
    data = annotation.annotation_data
    if data is None or (data.content is None and data.s3_uri is None):
        raise InvalidAnnotationError("missing annotation: no annotationData content or s3Uri")
    content: Any = data.content
    if content is None:
        content = _fetch(s3, str(data.s3_uri), allowed)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidAnnotationError(f"annotationData is not UTF-8 text ({exc.reason})") from None
    if isinstance(content, str):
        if not content.strip():
            raise InvalidAnnotationError("empty answer: annotationData.content is empty")
        try:
            return json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidAnnotationError(f"annotationData.content is not JSON ({exc.msg})") from None
    return content


def _fetch(s3: Any, uri: str, allowed: Sequence[str] | None) -> bytes:
    """The bytes of an answer given by ``annotationData.s3Uri``."""
    try:
        location = parse_s3_uri(uri)
        if allowed is not None:
            check_allowed(location, allowed)
        return get_bytes(s3, location, max_bytes=MAX_ANSWER_BYTES)
    except (InvalidS3UriError, ForbiddenLocationError) as exc:
        raise InvalidAnnotationError(f"annotationData.s3Uri: {exc}") from None
    except S3ObjectUnavailableError as exc:  # gone or not ours to read: no retry can bring it back
        raise InvalidAnnotationError(f"annotationData.s3Uri is unreadable ({error_code(exc)})") from None
    except ValueError as exc:  # over MAX_ANSWER_BYTES
        raise InvalidAnnotationError(f"annotationData.s3Uri is unreadable ({exc})") from None
    # Throttling and 5xx propagate: the invocation fails and Ground Truth retries the batch. Dropping
    # the worker instead could turn a reject into an approve (any reject wins).


def response_entry(dataset_object_id: str, attribute: str, content: Contract) -> dict[str, Any]:
    """One entry of the Lambda's answer: the object's content under the job's label attribute."""
    return {"datasetObjectId": dataset_object_id, "consolidatedAnnotation": {"content": {attribute: content.dump()}}}
