"""The overlay Lambda's work: render the overlays of consolidated masks stored in S3.

From a mask's URI alone ``render_mask_overlay`` finds the original (the mask's ``source-ref``
metadata, written by labeling_post), renders it with ``gtaudit.overlay.render.render_overlay``
and writes ``<job>/overlays/<name>.jpg``, the mask's own name without its timestamp
(``gtaudit.layout.mask_name``). ``render_mask_overlays`` does a chunk of
masks on a few threads and reports each mask's outcome; one bad mask never stops the others.

``render_requested_overlays`` is the Lambda's one domain call. Its two events
(``gtaudit.models.overlay``) differ in who retries:

- ``MaskCreatedEvent`` (EventBridge, one mask): Lambda retries a failed asynchronous invocation,
  so a transient S3 failure sets ``OverlayReport.retry_invocation`` and the handler raises;
- ``MaskChunkEvent`` (the orchestrator's fan-out): each mask's ``retryable`` flag is reported,
  and the orchestrator lists the job again and resends what is still missing.

Keys that are not consolidated masks (an event for any other object of the bucket, a chunk
entry elsewhere) are counted as ``ignored``, not failed.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus

from gtaudit import layout
from gtaudit.exceptions import (
    GtauditError,
    InvalidImageError,
    InvalidMaskError,
    InvalidS3UriError,
    S3ObjectUnavailableError,
)
from gtaudit.models.overlay import MaskChunkEvent, MaskCreatedEvent
from gtaudit.overlay.fanout import MASK_MARKER, is_mask_key
from gtaudit.overlay.render import DEFAULT_QUALITY, MAX_PIXELS_ENV, check_opacity, check_outline, render_overlay
from gtaudit.s3io import (
    PERMANENT_CODES,
    error_code,
    exists,
    get_bytes_and_metadata,
    is_not_found,
    put_bytes,
    put_json,
)
from gtaudit.s3uri import S3Uri, check_allowed, parse_s3_uri, split_allowed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    """How the overlay Lambda renders and where it may read."""

    opacity: float = 0.5
    outline: int = 0
    quality: int = DEFAULT_QUALITY
    max_pixels: int | None = None
    allowed: tuple[str, ...] = ()  # ALLOWED_BUCKETS entries; empty allows nothing
    max_object_bytes: int = 256 * 1024 * 1024


def settings_from_env(environ: Mapping[str, str] | None = None) -> OverlaySettings:
    """Settings from ``OVERLAY_OPACITY``, ``OVERLAY_OUTLINE``, ``OVERLAY_QUALITY``, ``GTAUDIT_MAX_PIXELS``
    and ``ALLOWED_BUCKETS``; raise ``ValueError`` naming a bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, key, cast in (
        ("opacity", "OVERLAY_OPACITY", float),
        ("outline", "OVERLAY_OUTLINE", int),
        ("quality", "OVERLAY_QUALITY", int),
        ("max_pixels", MAX_PIXELS_ENV, int),
    ):
        raw = env.get(key, "").strip()
        if raw:
            try:
                values[name] = cast(raw)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {raw!r}") from None
    settings = OverlaySettings(**values, allowed=tuple(split_allowed(env.get("ALLOWED_BUCKETS"))))
    if not math.isfinite(settings.opacity):
        raise ValueError(f"OVERLAY_OPACITY must be a number in [0, 1], got {settings.opacity!r}")
    check_opacity(settings.opacity)
    check_outline(settings.outline)
    if not 1 <= settings.quality <= 95:
        raise ValueError(f"OVERLAY_QUALITY must be in [1, 95], got {settings.quality!r}")
    if settings.max_pixels is not None and settings.max_pixels <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive integer, got {settings.max_pixels!r}")
    return settings


@dataclass(frozen=True, slots=True)
class MaskOutcome:
    """What happened to one mask."""

    mask: str
    status: Literal["written", "failed", "deferred"]
    overlay: str | None = None
    error: str | None = None  # the exception's class name
    message: str | None = None
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without empty fields."""
        out: dict[str, Any] = {"mask": self.mask, "status": self.status}
        for key, value in (("overlay", self.overlay), ("error", self.error), ("message", self.message)):
            if value is not None:
                out[key] = value
        if self.retryable:
            out["retryable"] = True
        return out


@dataclass(frozen=True, slots=True)
class OverlayReport:
    """The outcome of one invocation: one entry per mask, in input order."""

    outcomes: tuple[MaskOutcome, ...] = field(default_factory=tuple)
    ignored: int = 0
    retry_invocation: bool = False  # fail the invocation so that Lambda retries it (not in as_dict)

    def count(self, status: str) -> int:
        """How many masks ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[MaskOutcome]:
        """The outcomes of the masks that failed, in input order."""
        return [o for o in self.outcomes if o.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the Lambda's return value)."""
        return {
            "written": self.count("written"),
            "failed": self.count("failed"),
            "deferred": self.count("deferred"),
            "ignored": self.ignored,
            "results": [o.as_dict() for o in self.outcomes],
        }


def job_root_of(mask_uri: S3Uri) -> S3Uri:
    """``<S3OutputPath>/<job>`` from a consolidated mask's URI (the part before ``/annotations/``)."""
    idx = mask_uri.key.rfind(MASK_MARKER)
    if idx <= 0:
        raise InvalidS3UriError(f"{mask_uri} is not under <job>{MASK_MARKER}")
    return S3Uri(mask_uri.bucket, mask_uri.key[:idx])


def _decoded(uri: S3Uri) -> S3Uri:
    """``uri`` with its key URL-decoded, as S3's event notifications encode keys (``a b`` -> ``a+b``)."""
    return S3Uri(uri.bucket, unquote_plus(uri.key))


def _get(s3: Any, uri: S3Uri, max_bytes: int) -> tuple[S3Uri, bytes, dict[str, str]]:
    """Read an object; if a key from an event was URL-encoded, retry once with it decoded."""
    try:
        data, meta = get_bytes_and_metadata(s3, uri, max_bytes=max_bytes)
        return uri, data, meta
    except Exception as exc:
        alt = _decoded(uri)
        if not is_not_found(exc) or alt == uri:
            raise
        data, meta = get_bytes_and_metadata(s3, alt, max_bytes=max_bytes)
        return alt, data, meta


def render_mask_overlay(s3: Any, mask_uri: S3Uri, settings: OverlaySettings) -> S3Uri:
    """Render and write the overlay of one consolidated mask.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    mask_uri
        The mask, ``<job>/annotations/consolidated-annotation/output/<name>_<ts>.png``, written with
        metadata ``source-ref`` (percent-encoded original URI).
    settings
        Rendering options and the allowed locations of originals.

    Returns
    -------
    S3Uri
        ``<job>/overlays/<name>.jpg``, overwritten with the same bytes on a re-run.

    Raises
    ------
    InvalidMaskError, InvalidImageError, SizeMismatchError, ForbiddenLocationError, InvalidS3UriError
        A permanent problem with this mask or its original.
    botocore.exceptions.ClientError
        S3 refused or failed a request.
    """
    root = job_root_of(mask_uri)
    if settings.allowed:
        check_allowed(mask_uri, settings.allowed)
    mask_uri, mask, meta = _get(s3, mask_uri, settings.max_object_bytes)
    source = meta.get("source-ref")
    if not source:
        raise InvalidMaskError(f"{mask_uri} has no source-ref metadata: cannot find its original")
    original_uri = check_allowed(parse_s3_uri(unquote(source)), settings.allowed)
    try:
        _, image, _ = _get(s3, original_uri, settings.max_object_bytes)
    except S3ObjectUnavailableError as exc:
        why = "not found" if is_not_found(exc) else f"unreadable ({error_code(exc)})"
        raise InvalidImageError(f"source image {why}: {original_uri}") from exc
    body = render_overlay(
        image,
        mask,
        opacity=settings.opacity,
        outline=settings.outline,
        quality=settings.quality,
        max_pixels=settings.max_pixels,
    )
    target = layout.overlay(root, layout.mask_name(mask_uri))
    put_bytes(s3, target, body, "image/jpeg")
    return target


_PERMANENT = (GtauditError, ValueError)


def _outcome(s3: Any, mask: str, settings: OverlaySettings) -> MaskOutcome:
    """Render one mask, turning any failure into a reported outcome.

    A failure no retry can fix also leaves ``<job>/overlays/<name>.failed.json`` with its reason, so the
    orchestrator lists that one object as failed and hands the rest of the job to the audit.
    """
    try:
        target = render_mask_overlay(s3, parse_s3_uri(mask), settings)
    except _PERMANENT as exc:
        outcome = MaskOutcome(mask, "failed", error=type(exc).__name__, message=str(exc)[:500])
    except Exception as exc:  # one bad object never sinks the chunk; S3 trouble may be retried
        code = error_code(exc)
        outcome = MaskOutcome(
            mask,
            "failed",
            error=type(exc).__name__,
            message=(f"{code}: " if code else "") + str(exc)[:500],
            retryable=code not in PERMANENT_CODES,
        )
    else:
        return MaskOutcome(mask, "written", overlay=str(target))
    if not outcome.retryable:
        _record_failure(s3, mask, outcome.message or outcome.error or "unknown")
    return outcome


def _record_failure(s3: Any, mask: str, reason: str) -> None:
    """Write the failure marker of a mask whose overlay can never be rendered (best effort: the
    orchestrator's retry renders again and writes it then)."""
    try:
        uri = parse_s3_uri(mask)
        if _decoded(uri) != uri and not exists(s3, uri) and exists(s3, _decoded(uri)):
            uri = _decoded(uri)  # an event's URL-encoded key: the marker is named after the mask as stored
        put_json(s3, layout.overlay_failure(job_root_of(uri), layout.mask_name(uri)), {"mask": mask, "reason": reason})
    except Exception as exc:  # the marker is an optimisation of the retry; never fail the chunk for it
        log.warning("could not record the overlay failure of %s: %s", mask, exc)


def render_mask_overlays(
    s3: Any,
    masks: Sequence[str],
    settings: OverlaySettings,
    *,
    threads: int = 2,
    time_left: Callable[[], float] | None = None,
    reserve_seconds: float = 30.0,
    ignored: int = 0,
) -> OverlayReport:
    """Render the overlays of a chunk of masks; one bad mask never stops the others.

    Parameters
    ----------
    s3
        A boto3 S3 client (thread-safe for these calls).
    masks
        Consolidated mask URIs.
    settings
        Rendering options and allowed locations.
    threads
        Masks rendered at once: S3 transfers of one overlap with Pillow's work on another
        (Pillow releases the GIL while it decodes, blends and encodes).
    time_left
        Seconds the invocation has left (from the Lambda context); masks not started while
        more than ``reserve_seconds`` remain are reported ``deferred`` for the caller to resend.
    ignored
        Count of event keys already skipped as not masks, carried into the report.

    Returns
    -------
    OverlayReport
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")

    def one(mask: str) -> MaskOutcome:
        if time_left is not None and time_left() < reserve_seconds:
            return MaskOutcome(mask, "deferred", message="not started: too little time left in this invocation")
        return _outcome(s3, mask, settings)

    if threads == 1 or len(masks) <= 1:
        outcomes = [one(m) for m in masks]
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(masks))) as pool:
            outcomes = list(pool.map(one, masks))
    return OverlayReport(tuple(outcomes), ignored)


def requested_masks(event: MaskCreatedEvent | MaskChunkEvent) -> tuple[list[str], int]:
    """The consolidated masks an overlay event names, in order, and how many of its keys are not masks."""
    if isinstance(event, MaskChunkEvent):
        keep = [m for m in event.masks if is_mask_key(parse_s3_uri(m).key)]
        return keep, len(event.masks) - len(keep)
    if not is_mask_key(event.uri.key):
        return [], 1
    return [str(event.uri)], 0


def render_requested_overlays(
    s3: Any,
    event: MaskCreatedEvent | MaskChunkEvent,
    settings: OverlaySettings,
    *,
    threads: int = 2,
    time_left: Callable[[], float] | None = None,
) -> OverlayReport:
    """Render the overlays an overlay Lambda event asks for.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    event
        The parsed event (``parse_event(OverlayEvent, event).root``).
    settings, threads, time_left
        As for ``render_mask_overlays``.

    Returns
    -------
    OverlayReport
        ``retry_invocation`` is set for an S3 event whose mask failed for a reason a retry may
        fix: EventBridge invokes asynchronously, and failing the invocation lets Lambda retry
        this one mask. A chunk only reports its retryable masks.
    """
    masks, ignored = requested_masks(event)
    report = render_mask_overlays(s3, masks, settings, threads=threads, time_left=time_left, ignored=ignored)
    if isinstance(event, MaskCreatedEvent) and any(o.retryable for o in report.failures):
        return replace(report, retry_invocation=True)
    return report
