"""The worktime function's event: an S3 ``Object Created`` event or a WorkerActivity log batch.

The function has two triggers (template.yaml): EventBridge delivers ``aws.s3`` / ``Object
Created`` for each worker-response file, and an optional CloudWatch Logs subscription delivers
batches of the workforce's WorkerActivity log. Both shapes are Powertools' own models; this
module only says which is which, as one discriminated union, so the handler parses once and
``match``-es on the parsed type.

Neither model has a field whose value names the shape, so the discriminator is a callable: a
CloudWatch Logs subscription event is the object with ``awslogs`` (its only key); anything else
is read as the EventBridge event, and fails there with the fields that are wrong. Parse with
``parse_event(WorktimeEvent, event).root`` (``gtaudit.models``): its error names fields, never values
(activity log lines carry worker identities).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.utilities.parser.models import CloudWatchLogsModel, S3EventNotificationEventBridgeModel
from pydantic import Discriminator, RootModel, Tag


def _shape(event: Any) -> str:
    """The union's tag: a log subscription's batch is the object with ``awslogs``; anything else is S3's event."""
    if isinstance(event, dict):
        return "activity-log" if "awslogs" in event else "object-created"
    return "activity-log" if isinstance(event, CloudWatchLogsModel) else "object-created"


class WorktimeEvent(
    RootModel[
        Annotated[
            Annotated[CloudWatchLogsModel, Tag("activity-log")]
            | Annotated[S3EventNotificationEventBridgeModel, Tag("object-created")],
            Discriminator(_shape),
        ]
    ]
):
    """The worktime function's event; ``root`` is the parsed Powertools model of its trigger."""
