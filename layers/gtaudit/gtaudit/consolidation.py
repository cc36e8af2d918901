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
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ijson
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
from gtaudit.s3io import error_code, get_bytes, open_stream
from gtaudit.s3uri import S3Uri, check_allowed, parse_s3_uri

# One worker's answer file given by annotationData.s3Uri: a 12 MP RGBA PNG in base64 stays well below.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
THREADS_ENV = "GTAUDIT_CONSOLIDATION_THREADS"
UNKNOWN_WORKER = "unknown-worker"


@dataclass(frozen=True, slots=True)
class WorkerAnswer:
    """One worker's parsed ``answerContent`` (whatever JSON it holds)."""

    worker_id: str
    content: Any


@dataclass(slots=True)
class Batch:
    """A consolidation request: where it is, its items as they are read, and the items that could not be used.

    ``items`` is read from S3 as it is consumed (one item in memory at a time, whatever the batch
    size); ``skipped`` fills up as the items go by.
    """

    request: S3Uri
    items: Iterator[ConsolidationItem] = field(default_factory=lambda: iter(()))
    skipped: list[str] = field(default_factory=list)  # "item <n>: <why>", for the logs


def read_batch(s3: Any, event: PostAnnotationEvent, *, allowed: Sequence[str] | None = None) -> Batch:
    """Open the batch at ``payload.s3Uri`` and read its items one at a time.

    The request holds every worker's answer of every object of the batch, masks included (about
    40 MB per 48 objects of 12 MP, so 0.8 GB for Ground Truth's default batch of 1,000): it is
    parsed as a stream (``ijson``), never loaded whole.

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
        ``payload.s3Uri`` is not an S3 URI or outside ``allowed``, or the request is not a JSON
        array (found at once) or breaks off as JSON (found when the items get there).
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
    stream = open_stream(s3, request)
    head = _first_bytes(stream)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"[":
        stream.close()
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not a JSON array")
    batch = Batch(request)
    batch.items = _items(_Prefixed(head, stream), batch.skipped)
    return batch


def _first_bytes(stream: Any, want: int = 64) -> bytes:
    """At least the first ``want`` bytes (or all there is), to see what the document starts with."""
    head = b""
    while len(head) < want:
        chunk = stream.read(want - len(head))
        if not chunk:
            break
        head += chunk
    return head


class _Prefixed:
    """A readable stream: ``head``, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head, self._stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            head, self._head = self._head, b""
            rest: bytes = self._stream.read()
            return head + rest
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        chunk: bytes = self._stream.read(n)
        return chunk

    def close(self) -> None:
        self._stream.close()


def _items(stream: _Prefixed, skipped: list[str]) -> Iterator[ConsolidationItem]:
    try:
        for n, raw in enumerate(ijson.items(stream, "item", use_float=True)):
            try:
                yield ConsolidationItem.model_validate(raw)
            except ValidationError as exc:
                skipped.append(f"item {n}: {describe_errors(exc)}")
    except ijson.JSONError:
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not JSON") from None
    finally:
        stream.close()


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


def consolidation_threads() -> int:
    """Objects consolidated at once: one per vCPU the function has (Lambda gives vCPUs by memory).

    Decoding, voting and encoding masks run in Pillow's and numpy's C code with the GIL released, so
    threads use every vCPU; each object in flight holds its workers' masks (about 100 MB at 12 MP).
    ``$GTAUDIT_CONSOLIDATION_THREADS`` fixes the number instead.
    """
    fixed = os.environ.get(THREADS_ENV, "").strip()
    if fixed.isdigit() and int(fixed) > 0:
        return int(fixed)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def ordered_map[T, R](fn: Callable[[T], R], items: Iterable[T], *, threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, reading ``items`` only a little ahead.

    At most ``2 * threads`` items are read and not yet answered, so a streamed batch stays a stream:
    memory depends on the threads, not on the batch size.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    window: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="consolidate") as pool:
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * threads:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
