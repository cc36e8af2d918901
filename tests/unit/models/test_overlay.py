"""The overlay Lambda's discriminated union of events: each shape is recognised, bad events name fields only."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from gtaudit.exceptions import InvalidEventError
from gtaudit.models import parse_event
from gtaudit.models.overlay import MAX_CHUNK, MaskChunkEvent, MaskCreatedEvent, OverlayEvent
from support import load_event

MASK = "s3://b-1/jobs/j-1/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"
PRESIGNED = "https://b-1.s3.amazonaws.com/x.png?X-Amz-Credential=ASIAEXAMPLE&X-Amz-Signature=SECRETSIG"


def created(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("overlay-mask-created"))
    event.update(changes)
    return event


def test_each_shape_parses_into_its_model() -> None:
    event = parse_event(OverlayEvent, load_event("overlay-mask-created")).root
    assert isinstance(event, MaskCreatedEvent)
    assert str(event.uri) == (
        "s3://gtaudit-test-data/jobs/demo-labeling-r1/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"
    )
    chunk = parse_event(OverlayEvent, load_event("overlay-chunk")).root
    assert isinstance(chunk, MaskChunkEvent) and len(chunk.masks) == 2


@pytest.mark.parametrize(
    "event",
    [
        created(**{"detail-type": "Object Deleted"}),
        created(source="aws.events"),
        {"masks": [MASK] * (MAX_CHUNK + 1)},
        {"masks": ["s3://B/x"]},
        {"detail-type": "Object Created", "source": "aws.s3"},
        "x",
    ],
)
def test_bad_events(event: object) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(OverlayEvent, event)


def test_errors_name_the_shape_and_field_never_the_value() -> None:
    with pytest.raises(InvalidEventError) as chunk_error:
        parse_event(OverlayEvent, {"masks": [MASK, PRESIGNED]})
    assert "chunk.masks" in str(chunk_error.value) and "SECRETSIG" not in str(chunk_error.value)
    with pytest.raises(InvalidEventError) as created_error:
        parse_event(OverlayEvent, created(**{"detail-type": "Object Deleted"}))
    assert "created.detail-type" in str(created_error.value) and "Deleted" not in str(created_error.value)
