"""The overlay Lambda's events and its fan-out, without Pillow (the orchestrator imports this too).

Two ways in, both bounded so no invocation nears Lambda's 15-minute limit:

- an EventBridge ``Object Created`` event from the data bucket: one consolidated mask per
  invocation, rendered as soon as labeling_post writes it;
- a direct invocation ``{"masks": ["s3://...png", ...]}`` of at most ``MAX_CHUNK`` masks, which
  ``fan_out`` sends asynchronously (``InvocationType="Event"``) for the masks of a job that
  still lack an overlay (``masks_missing_overlays``), e.g. after a failed or disabled event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from gtaudit.exceptions import InvalidEventError
from gtaudit.models import EventModel, parse_event
from gtaudit.s3uri import S3Uri, parse_s3_uri

MASK_MARKER = "/annotations/consolidated-annotation/output/"
# 200 masks x ~0.4 s (3968x2976 at one vCPU, S3 included) ~ 80 s, far below the function's
# 300 s timeout; the handler also stops starting masks when little time is left.
MAX_CHUNK = 200
DEFAULT_CHUNK = 50
_OVERLAY = re.compile(r"/overlays/([^/]+)\.jpg$")


def is_mask_key(key: str) -> bool:
    """True for a consolidated mask's key: ``.../annotations/consolidated-annotation/output/*.png``."""
    return MASK_MARKER in key and key.lower().endswith(".png")


class _Bucket(EventModel):
    name: str


class _Object(EventModel):
    key: str


class _Detail(EventModel):
    bucket: _Bucket
    object: _Object


class ObjectCreatedEvent(EventModel):
    """S3's EventBridge notification (``source: aws.s3``, ``detail-type: Object Created``)."""

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: _Detail


class MaskChunkEvent(EventModel):
    """A direct invocation: a chunk of consolidated mask URIs."""

    masks: list[str] = Field(max_length=MAX_CHUNK)

    @field_validator("masks")
    @classmethod
    def _uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            parse_s3_uri(uri)
        return value


@dataclass(frozen=True, slots=True)
class OverlayRequest:
    """What one invocation must render: mask URIs, and how many event keys were not masks."""

    masks: tuple[str, ...]
    ignored: int
    from_event: bool  # True for EventBridge (the invocation is retried on transient failures)


def parse_overlay_event(event: Any) -> OverlayRequest:
    """Parse the overlay Lambda's event.

    Parameters
    ----------
    event
        An EventBridge S3 ``Object Created`` event, or ``{"masks": [...]}`` (at most ``MAX_CHUNK``).

    Returns
    -------
    OverlayRequest
        An event for a key that is not a consolidated mask gives no masks and ``ignored=1``.

    Raises
    ------
    InvalidEventError
        Neither shape, or a chunk with a bad URI or too many masks.
    """
    if isinstance(event, dict) and "masks" in event:
        try:
            chunk = parse_event(MaskChunkEvent, event)
        except ValueError as exc:  # a bad URI raised inside the validator
            raise InvalidEventError(str(exc)) from None
        masks = tuple(chunk.masks)
        keep = tuple(m for m in masks if is_mask_key(parse_s3_uri(m).key))
        return OverlayRequest(keep, len(masks) - len(keep), from_event=False)
    created = parse_event(ObjectCreatedEvent, event)
    if created.source != "aws.s3" or created.detail_type != "Object Created":
        raise InvalidEventError("ObjectCreatedEvent: not an S3 'Object Created' event")
    key = created.detail.object.key
    if not is_mask_key(key):
        return OverlayRequest((), 1, from_event=True)
    return OverlayRequest((str(S3Uri(created.detail.bucket.name, key)),), 0, from_event=True)


def chunked(items: Sequence[str], size: int = DEFAULT_CHUNK) -> list[list[str]]:
    """Split ``items`` into lists of at most ``size`` (1 to ``MAX_CHUNK``), order kept."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_CHUNK:
        raise ValueError(f"size must be an integer in [1, {MAX_CHUNK}], got {size!r}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def fan_out(lambda_client: Any, function_name: str, masks: Iterable[str], *, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Invoke the overlay function asynchronously once per chunk of masks.

    Parameters
    ----------
    lambda_client
        A boto3 Lambda client.
    function_name
        The overlay function's name or ARN.
    masks
        Consolidated mask URIs.
    chunk_size
        Masks per invocation (1 to ``MAX_CHUNK``). 10,000 masks at 50 make 200 invocations that
        Lambda runs in parallel, each ~20 s.

    Returns
    -------
    int
        The number of invocations sent.
    """
    chunks = chunked(list(masks), chunk_size)
    for chunk in chunks:
        lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps({"masks": chunk}).encode("utf-8"),
        )
    return len(chunks)


def masks_missing_overlays(s3: Any, job_root: S3Uri) -> list[str]:
    """The newest consolidated mask of each object whose overlay is absent or older than it.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    job_root
        ``<S3OutputPath>/<job>``.

    Returns
    -------
    list[str]
        Mask URIs, sorted by key.
    """
    newest: dict[str, tuple[Any, str]] = {}
    for obj in _list(s3, job_root.bucket, job_root.join("annotations", "consolidated-annotation", "output").key + "/"):
        key = obj["Key"]
        if not is_mask_key(key):
            continue
        object_id = key.rsplit("/", 1)[-1].split("_", 1)[0].removesuffix(".png")
        seen = newest.get(object_id)
        if seen is None or (obj["LastModified"], key) > seen:
            newest[object_id] = (obj["LastModified"], key)
    overlays = dict(iter_overlays(s3, job_root))
    missing = [
        key
        for object_id, (modified, key) in newest.items()
        if object_id not in overlays or overlays[object_id] < modified
    ]
    return [str(S3Uri(job_root.bucket, key)) for key in sorted(missing)]


def iter_overlays(s3: Any, job_root: S3Uri) -> Iterator[tuple[str, Any]]:
    """``(dataset object id, LastModified)`` of each overlay under ``<job>/overlays/``."""
    for obj in _list(s3, job_root.bucket, job_root.join("overlays").key + "/"):
        m = _OVERLAY.search(obj["Key"])
        if m:
            yield m.group(1), obj["LastModified"]


def _list(s3: Any, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])
