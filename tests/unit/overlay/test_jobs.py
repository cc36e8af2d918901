"""The overlay Lambda's event parsing and chunking (no AWS)."""

from __future__ import annotations

import pytest
from gtaudit.exceptions import InvalidEventError, InvalidS3UriError
from gtaudit.overlay.jobs import MAX_CHUNK, chunked, is_mask_key, parse_overlay_event
from gtaudit.overlay.render import job_root_of
from gtaudit.s3uri import S3Uri

MASK = "jobs/j-1/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (MASK, True),
        (MASK.replace(".png", ".PNG"), True),
        ("jobs/j-1/annotations/consolidated-annotation/consolidation-response/iteration-1/t.json", False),
        ("jobs/j-1/annotations/consolidated-annotation/output/notes.txt", False),
        ("jobs/j-1/overlays/0.jpg", False),
        ("jobs/j-1/annotations/worker-response/iteration-1/0/t.png", False),
    ],
)
def test_is_mask_key(key: str, expected: bool) -> None:
    assert is_mask_key(key) is expected


def s3_event(key: str, detail_type: str = "Object Created") -> dict[str, object]:
    return {
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"bucket": {"name": "b-1"}, "object": {"key": key}},
    }


def test_event_for_a_mask() -> None:
    req = parse_overlay_event(s3_event(MASK))
    assert (req.masks, req.ignored, req.from_event) == ((f"s3://b-1/{MASK}",), 0, True)


def test_event_for_another_key_is_ignored() -> None:
    req = parse_overlay_event(s3_event("jobs/j-1/overlays/0.jpg"))
    assert (req.masks, req.ignored) == ((), 1)


def test_chunk_keeps_order_and_drops_non_masks() -> None:
    uris = [f"s3://b-1/{MASK}", "s3://b-1/images/x.jpg", f"s3://b-1/{MASK.replace('0_', '1_')}"]
    req = parse_overlay_event({"masks": uris})
    assert (req.masks, req.ignored, req.from_event) == ((uris[0], uris[2]), 1, False)


@pytest.mark.parametrize(
    "event",
    [s3_event(MASK, "Object Deleted"), {"masks": [f"s3://b-1/{MASK}"] * (MAX_CHUNK + 1)}, {"masks": ["s3://B/x"]}, "x"],
)
def test_bad_events(event: object) -> None:
    with pytest.raises(InvalidEventError):
        parse_overlay_event(event)


def test_chunked() -> None:
    assert chunked(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert chunked([], 5) == []
    for bad in (0, MAX_CHUNK + 1):
        with pytest.raises(ValueError, match="size"):
            chunked(["a"], bad)


def test_job_root_of() -> None:
    assert job_root_of(S3Uri("b-1", MASK)) == S3Uri("b-1", "jobs/j-1")
    with pytest.raises(InvalidS3UriError):
        job_root_of(S3Uri("b-1", "elsewhere/0.png"))
