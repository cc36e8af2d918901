"""The overlay jobs without AWS: which masks an event asks for, job roots, settings from the environment."""

from __future__ import annotations

import copy

import pytest
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.models import parse_event
from gtaudit.models.overlay import MaskChunkEvent, MaskCreatedEvent, OverlayEvent
from gtaudit.overlay.jobs import job_root_of, requested_masks, settings_from_env
from gtaudit.overlay.render import MAX_PIXELS_ENV
from gtaudit.s3uri import S3Uri
from support import load_event

MASK = "jobs/j-1/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"


def s3_event(key: str) -> dict[str, object]:
    """The sample S3 ``Object Created`` event, for ``key`` in bucket ``b-1``."""
    event = copy.deepcopy(load_event("overlay-mask-created"))
    event["detail"]["bucket"]["name"] = "b-1"
    event["detail"]["object"]["key"] = key
    return event


def test_event_for_a_mask() -> None:
    event = parse_event(OverlayEvent, s3_event(MASK)).root
    assert isinstance(event, MaskCreatedEvent)  # Lambda retries it when the mask fails transiently
    assert requested_masks(event) == ([f"s3://b-1/{MASK}"], 0)


def test_event_for_another_key_is_ignored() -> None:
    event = parse_event(OverlayEvent, s3_event("jobs/j-1/overlays/0.jpg")).root
    assert requested_masks(event) == ([], 1)


def test_chunk_keeps_order_and_drops_non_masks() -> None:
    uris = [f"s3://b-1/{MASK}", "s3://b-1/images/x.jpg", f"s3://b-1/{MASK.replace('0_', '1_')}"]
    event = parse_event(OverlayEvent, {"masks": uris}).root
    assert isinstance(event, MaskChunkEvent)  # reported per mask, never retried whole
    assert requested_masks(event) == ([uris[0], uris[2]], 1)


def test_job_root_of() -> None:
    assert job_root_of(S3Uri("b-1", MASK)) == S3Uri("b-1", "jobs/j-1")
    with pytest.raises(InvalidS3UriError):
        job_root_of(S3Uri("b-1", "elsewhere/0.png"))


def test_settings_from_env() -> None:
    s = settings_from_env(
        {"OVERLAY_OPACITY": "0.3", "OVERLAY_OUTLINE": "2", "ALLOWED_BUCKETS": "a-b, s3://c-d/x/", MAX_PIXELS_ENV: "9"}
    )
    assert (s.opacity, s.outline, s.max_pixels, s.allowed) == (0.3, 2, 9, ("a-b", "s3://c-d/x/"))
    with pytest.raises(ValueError, match="OVERLAY_OPACITY"):
        settings_from_env({"OVERLAY_OPACITY": "lots"})
    with pytest.raises(ValueError, match="opacity"):
        settings_from_env({"OVERLAY_OPACITY": "2"})
