"""Ground Truth's output layout in S3, in one place (see the reference, section 4)."""

from __future__ import annotations

import hashlib
import re

from gtaudit.s3uri import S3Uri, parse_s3_uri

# GT names consolidation requests by time, e.g. iteration-1/2026-11-24_10:00:00.json.
_UNSAFE_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\%]")
_CONSOLIDATED = "/consolidated-annotation/"
_MASK_INDEX = re.compile(r"^(\d+)_")
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


def consolidated_mask(annotations_root: S3Uri, dataset_object_id: str, timestamp: str) -> S3Uri:
    """``<annotations>/consolidated-annotation/output/<datasetObjectId>_<timestamp>.png``."""
    return annotations_root.join(
        "consolidated-annotation", "output", f"{key_segment(dataset_object_id)}_{timestamp}.png"
    )


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


def overlay(root: S3Uri, dataset_object_id: str) -> S3Uri:
    """``<job>/overlays/<datasetObjectId>.jpg``: the blended image the auditors see."""
    return root.join("overlays", f"{key_segment(dataset_object_id)}.jpg")


def overlay_failure(root: S3Uri, dataset_object_id: str) -> S3Uri:
    """``<job>/overlays/<datasetObjectId>.failed.json``: why that object's overlay can never be rendered."""
    return root.join("overlays", f"{key_segment(dataset_object_id)}.failed.json")


def dataset_object_id_of_mask(mask: S3Uri) -> str | None:
    """The ``<datasetObjectId>`` of a consolidated mask named ``<datasetObjectId>_<timestamp>.png``,
    when it is Ground Truth's integer index (any other ID is read from the mask's metadata)."""
    m = _MASK_INDEX.match(mask.name)
    return m.group(1) if m else None
