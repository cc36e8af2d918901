"""The overlay Lambda's two events, told apart once at the edge.

- ``MaskCreatedEvent``: S3's EventBridge notification that a consolidated mask was written
  (Powertools' ``S3EventNotificationEventBridgeModel``, pinned to ``aws.s3`` / ``Object Created``,
  the two fields the template's rule filters on). One mask per invocation; Lambda retries the
  invocation when it fails.
- ``MaskChunkEvent``: ``{"masks": ["s3://...png", ...]}``, at most ``MAX_CHUNK`` URIs, which the
  orchestrator's fan-out sends asynchronously for masks that still lack an overlay.

``OverlayEvent`` is their discriminated union (the tag is chosen by a callable, as in Powertools'
``examples/parser/src/multiple_model_parsing.py``): an event that names ``masks`` is a chunk,
anything else is read as S3's event, so each shape's errors name that shape's fields. Parse with
``parse_event(OverlayEvent, event).root``; like every ``parse_event`` error, the message names the
fields and never echoes their values (chunks may carry presigned URLs by mistake).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import Discriminator, Field, RootModel, Tag, field_validator

from gtaudit.models import EventModel, tag_by_key
from gtaudit.s3uri import S3Uri, parse_s3_uri

# 200 masks x ~0.4 s (3968x2976 at one vCPU, S3 included) ~ 80 s, far below the function's
# 300 s timeout; the handler also stops starting masks when little time is left.
MAX_CHUNK = 200


class MaskCreatedEvent(S3EventNotificationEventBridgeModel):
    """S3's EventBridge notification of a new object (``source: aws.s3``, ``detail-type: Object Created``)."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")

    @property
    def uri(self) -> S3Uri:
        """The object the event is about, its key as the event spells it."""
        return S3Uri(self.detail.bucket.name, self.detail.object.key)


class MaskChunkEvent(EventModel):
    """A direct invocation: a chunk of consolidated mask URIs."""

    masks: list[str] = Field(max_length=MAX_CHUNK)

    @field_validator("masks")
    @classmethod
    def _uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            parse_s3_uri(uri)  # its message names the problem, never the URI
        return value


class OverlayEvent(
    RootModel[
        Annotated[
            Annotated[MaskCreatedEvent, Tag("created")] | Annotated[MaskChunkEvent, Tag("chunk")],
            Discriminator(tag_by_key("masks", present="chunk", absent="created", model=MaskChunkEvent)),
        ]
    ]
):
    """The overlay Lambda's event: ``root`` is a ``MaskCreatedEvent`` or a ``MaskChunkEvent``."""
