"""Ground Truth's output layout in S3, in one place (see the reference, section 4).

Masks and overlays are named after their image, so a person finds an image's mask without the
manifest: ``<job>/annotations/consolidated-annotation/output/<name>_<timestamp>.png`` and
``<job>/overlays/<name>.jpg``, where ``<name>`` is the image's stem made safe
(``gtaudit.names.safe_stem``), with ``-<4 hex>`` only where two images of a job share it. Ground
Truth's own masks, ``<index>_<timestamp>.png``, fit the same rule (``<name>`` = the index). A
timestamp never holds ``_`` (``request_timestamp``), so ``mask_name`` reads ``<name>`` back from any
mask, however many ``_`` the name has. Who holds a name in a job is recorded in
``output/names/<name, case-folded>.json`` (``name_claim``, written by labeling_post).
"""

from __future__ import annotations

import hashlib
import re

from gtaudit.names import safe_stem
from gtaudit.s3uri import S3Uri, parse_s3_uri

_UNSAFE_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\%]")
_CONSOLIDATED = "/consolidated-annotation/"
# GT names consolidation requests by time, e.g. iteration-1/2026-11-24_10:00:00.json.
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[_T](\d{2})[:_-]?(\d{2})[:_-]?(\d{2})")


def key_segment(text: str) -> str:
    """``text`` (a ``datasetObjectId``, a file name) as one S3 key segment no reader can take for a path.

    Slashes, backslashes, ``%`` (so ``%2e%2e`` cannot decode to ``..``) and control characters become
    ``_``; a segment that would start with ``.`` gets a ``_`` in front. Anything else, Unicode
    included, is kept. A name that had to change gets a short hash of the original, so two different
    names do not land on one key by accident. Ground Truth's own IDs (``0``, ``1``, ...) pass through unchanged.
    """
    clean = _UNSAFE_SEGMENT.sub("_", text)[:120]
    if not clean or clean.startswith("."):
        clean = "_" + clean
    if clean != text:
        clean += "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return clean


def job_root(s3_output_path: str, job: str) -> S3Uri:
    """``<S3OutputPath>/<job-name>/``."""
    return parse_s3_uri(s3_output_path.rstrip("/") + "/" + job)


def annotations_root(request_uri: S3Uri, output_config: S3Uri | None) -> S3Uri | None:
    """``.../<job>/annotations``, where consolidated masks go, or ``None`` when it cannot be known.

    Ground Truth's real events carry ``outputConfig`` (``<job>/annotations``); AWS's own samples
    point it at a file under ``consolidated-annotation/``, and the documented event has none, with
    its payload at the bucket root (reference section 2). So: the part of ``outputConfig`` (else of
    the request's key) before ``/consolidated-annotation/``; else ``outputConfig`` itself (its folder
    when it names a ``.json`` file); else the request's folder. ``None`` when that location is not
    a folder holding the request (another bucket, a request at the bucket root): masks are then
    written nowhere, rather than beside something that is not the job's.
    """
    base = output_config if output_config is not None else request_uri
    idx = base.key.find(_CONSOLIDATED)
    if idx >= 0:
        root = S3Uri(base.bucket, base.key[:idx])
    elif output_config is not None:
        key = output_config.key.rstrip("/")
        root = S3Uri(output_config.bucket, key.rsplit("/", 1)[0] if key.endswith(".json") else key)
    else:
        root = S3Uri(request_uri.bucket, request_uri.key.rsplit("/", 1)[0] if "/" in request_uri.key else "")
    inside = request_uri.key.startswith(root.key.rstrip("/") + "/")
    return root if root.key and root.bucket == request_uri.bucket and inside else None


def request_timestamp(request_uri: S3Uri) -> str:
    """A file-name-safe timestamp taken from the request's name, so re-runs write the same keys."""
    m = _TIMESTAMP.search(request_uri.name)
    if m:
        return f"{m.group(1)}T{m.group(2)}{m.group(3)}{m.group(4)}"
    return re.sub(r"[^A-Za-z0-9-]", "-", request_uri.name.rsplit(".", 1)[0])[:40] or "batch"


def consolidated_mask(annotations_root: S3Uri, name: str, timestamp: str) -> S3Uri:
    """``<annotations>/consolidated-annotation/output/<name>_<timestamp>.png``.

    ``name`` is the object's name (the image's stem, or an object ID), made safe here; ``timestamp``
    comes from ``request_timestamp`` (or any other text without ``_`` or ``/``).
    """
    if "_" in timestamp or "/" in timestamp or not timestamp:
        raise ValueError(f"timestamp must be non-empty text without '_' or '/', got {timestamp!r}")
    return annotations_root.join("consolidated-annotation", "output", f"{safe_stem(name)}_{timestamp}.png")


def mask_name(mask: S3Uri) -> str:
    """The ``<name>`` of a mask ``<name>_<timestamp>.png``: what its overlay and failure marker are named.

    The part before the last ``_`` (timestamps hold none), made safe as ``overlay`` makes it; a file
    name without ``_`` gives its whole stem.
    """
    stem = mask.name[:-4] if mask.name.lower().endswith(".png") else mask.name
    head, sep, _ = stem.rpartition("_")
    return safe_stem(head if sep and head else stem)


def name_claim(annotations_root: S3Uri, name: str) -> S3Uri:
    """``<annotations>/consolidated-annotation/output/names/<name, case-folded>.json``: which object holds ``name``.

    Case-folded, so ``Cat`` and ``cat`` cannot both be taken (a copy of the bucket on a
    case-insensitive file system would merge them), as ``gtaudit.names.unique_stems`` also rules.
    """
    return annotations_root.join("consolidated-annotation", "output", "names", f"{safe_stem(name).casefold()}.json")


def scores_file(annotations_root: S3Uri, name: str) -> S3Uri:
    """``<annotations>/consolidated-annotation/scores/<name>.json``: each worker's scores on one object.

    ``name`` is the object's claimed name (``name_claim``), as its mask's; written by labeling_post,
    read by the worktime function. Outside ``output/``, so no mask rule (the overlay's) matches it.
    """
    return annotations_root.join("consolidated-annotation", "scores", f"{safe_stem(name)}.json")


def worker_response(root: S3Uri, iteration: int, object_index: int | str, timestamp: str) -> S3Uri:
    """``<job>/annotations/worker-response/iteration-N/<index>/<timestamp>.json``."""
    iteration_dir = f"iteration-{iteration}"
    segment = key_segment(str(object_index))
    return root.join("annotations", "worker-response", iteration_dir, segment, f"{key_segment(timestamp)}.json")


def consolidation_request(root: S3Uri, iteration: int, timestamp: str) -> S3Uri:
    """``<job>/annotations/consolidated-annotation/consolidation-request/iteration-N/<timestamp>.json``."""
    return root.join(
        "annotations", "consolidated-annotation", "consolidation-request", f"iteration-{iteration}", f"{timestamp}.json"
    )


def consolidation_response(root: S3Uri, iteration: int, timestamp: str) -> S3Uri:
    """``<job>/annotations/consolidated-annotation/consolidation-response/iteration-N/<timestamp>.json``."""
    return root.join(
        "annotations",
        "consolidated-annotation",
        "consolidation-response",
        f"iteration-{iteration}",
        f"{timestamp}.json",
    )


def intermediate(root: S3Uri, iteration: int) -> S3Uri:
    """``<job>/annotations/intermediate/<N>/annotations.json``."""
    return root.join("annotations", "intermediate", str(iteration), "annotations.json")


def output_manifest(root: S3Uri) -> S3Uri:
    """``<job>/manifests/output/output.manifest``."""
    return root.join("manifests", "output", "output.manifest")


def overlay(root: S3Uri, name: str) -> S3Uri:
    """``<job>/overlays/<name>.jpg``: the blended image the auditors see (``name`` = ``mask_name``)."""
    return root.join("overlays", f"{safe_stem(name)}.jpg")


def overlay_failure(root: S3Uri, name: str) -> S3Uri:
    """``<job>/overlays/<name>.failed.json``: why that object's overlay can never be rendered."""
    return root.join("overlays", f"{safe_stem(name)}.failed.json")
