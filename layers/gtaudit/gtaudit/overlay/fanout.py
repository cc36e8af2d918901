"""Finding a job's masks without overlays and sending them to the overlay Lambda in chunks.

No Pillow here: the orchestrator imports this module on every job event, and renders nothing
itself unless a few overlays are missing (then it imports ``gtaudit.overlay.jobs``).

- ``masks_missing_overlays`` lists ``<job>/annotations/consolidated-annotation/output/`` and
  ``<job>/overlays/`` and keeps the newest mask of each name (``gtaudit.layout.mask_name``: the
  overlay's name) whose overlay is absent or older.
- ``overlay_names`` lists ``<job>/overlays/`` for names only, which is all the orchestrator's
  check needs: ``list_keys`` takes the keys out of S3's XML with one regular expression and hands
  botocore the page without its ``<Contents>``, so 100,000 keys cost about 0.05 s of CPU instead
  of botocore's 4.7 s (a dict, an ETag and a parsed ``LastModified`` per key).
- ``fan_out`` invokes the overlay function asynchronously (``InvocationType="Event"``) once per
  chunk of at most ``MAX_CHUNK`` masks (``gtaudit.models.overlay.MaskChunkEvent``), so no
  invocation nears Lambda's 15-minute limit.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_plus

from gtaudit.layout import mask_name
from gtaudit.models.overlay import MAX_CHUNK
from gtaudit.s3uri import S3Uri

MASK_MARKER = "/annotations/consolidated-annotation/output/"
DEFAULT_CHUNK = 50
_OVERLAY = re.compile(r"/overlays/([^/]+)\.jpg$")
_FAILED = re.compile(r"/overlays/([^/]+)\.failed\.json$")


def is_mask_key(key: str) -> bool:
    """True for a consolidated mask's key: ``.../annotations/consolidated-annotation/output/*.png``."""
    return MASK_MARKER in key and key.lower().endswith(".png")


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
    output = job_root.join("annotations", "consolidated-annotation", "output").key + "/"
    # One level only: the name claims under output/names/ are not masks.
    for obj in _list(s3, job_root.bucket, output, delimiter="/"):
        key = obj["Key"]
        if not is_mask_key(key):
            continue
        name = mask_name(S3Uri(job_root.bucket, key))
        seen = newest.get(name)
        if seen is None or (obj["LastModified"], key) > seen:
            newest[name] = (obj["LastModified"], key)
    overlays = dict(iter_overlays(s3, job_root))
    missing = [key for name, (modified, key) in newest.items() if name not in overlays or overlays[name] < modified]
    return [str(S3Uri(job_root.bucket, key)) for key in sorted(missing)]


def iter_overlays(s3: Any, job_root: S3Uri) -> Iterator[tuple[str, Any]]:
    """``(name, LastModified)`` of each overlay ``<job>/overlays/<name>.jpg``."""
    for name, modified, failed in iter_overlay_entries(s3, job_root):
        if not failed:
            yield name, modified


def iter_overlay_entries(s3: Any, job_root: S3Uri) -> Iterator[tuple[str, Any, bool]]:
    """``(name, LastModified, failed)`` of each overlay, and of each object whose overlay can never
    be rendered (its ``<name>.failed.json`` marker, see ``gtaudit.overlay.jobs``), in one listing."""
    for obj in _list(s3, job_root.bucket, job_root.join("overlays").key + "/"):
        if m := _OVERLAY.search(obj["Key"]):
            yield m.group(1), obj["LastModified"], False
        elif m := _FAILED.search(obj["Key"]):
            yield m.group(1), obj["LastModified"], True


def _list(s3: Any, bucket: str, prefix: str, *, delimiter: str | None = None) -> Iterable[dict[str, Any]]:
    extra = {"Delimiter": delimiter} if delimiter else {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **extra):
        yield from page.get("Contents", [])


_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.S)
_KEYS = "GtauditKeys"  # where the keys go in the parsed page; no S3 field has this name
_keys_only = threading.local()  # set around our own requests only: the client may be shared


def _take_keys(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parse`` hook: the keys into the result, the page without ``<Contents>`` to the parser."""
    if not getattr(_keys_only, "active", False) or response_dict.get("status_code") != 200:
        return
    body = response_dict["body"]
    # EncodingType=url: S3 sends keys form-encoded, so no XML entity can hide in them.
    customized_response_dict[_KEYS] = [unquote_plus(k.decode("utf-8")) for k in _KEY.findall(body)]
    response_dict["body"] = _CONTENTS.sub(b"", body)


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The keys under ``prefix``, in S3's order, without parsing anything else of the listing.

    Parameters
    ----------
    s3
        A boto3 S3 client (its ``ListObjectsV2`` pages are read through a ``before-parse`` hook that
        acts only on this function's requests); a stand-in without ``meta.events`` is paginated.
    bucket, prefix
        What to list.
    """
    events = getattr(getattr(s3, "meta", None), "events", None)
    if events is None:
        for obj in _list(s3, bucket, prefix):
            yield obj["Key"]
        return
    events.register("before-parse.s3.ListObjectsV2", _take_keys, unique_id="gtaudit-list-keys")
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "EncodingType": "url"}
    while True:
        _keys_only.active = True
        try:
            page = s3.list_objects_v2(**request)
        finally:
            _keys_only.active = False
        yield from page.get(_KEYS, ())
        if not page.get("IsTruncated"):
            return
        request["ContinuationToken"] = page["NextContinuationToken"]


def overlay_names(s3: Any, job_root: S3Uri) -> tuple[set[str], set[str]]:
    """The names under ``<job>/overlays/`` that have an overlay, and those whose overlay failed
    (the ``<name>.failed.json`` markers of ``gtaudit.overlay.jobs``), from one keys-only listing."""
    rendered: set[str] = set()
    failed: set[str] = set()
    for key in list_keys(s3, job_root.bucket, job_root.join("overlays").key + "/"):
        if m := _OVERLAY.search(key):
            rendered.add(m.group(1))
        elif m := _FAILED.search(key):
            failed.add(m.group(1))
    return rendered, failed
