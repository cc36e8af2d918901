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

from typing import Annotated

from aws_lambda_powertools.utilities.parser.models import CloudWatchLogsModel, S3EventNotificationEventBridgeModel
from pydantic import Discriminator, RootModel, Tag

from gtaudit.models import tag_by_key

_TAG = tag_by_key("awslogs", present="activity-log", absent="object-created", model=CloudWatchLogsModel)


class WorktimeEvent(
    RootModel[
        Annotated[
            Annotated[CloudWatchLogsModel, Tag("activity-log")]
            | Annotated[S3EventNotificationEventBridgeModel, Tag("object-created")],
            Discriminator(
                tag_by_key("awslogs", present="activity-log", absent="object-created", model=CloudWatchLogsModel)
            ),
        ]
    ]
):
    """The worktime function's event; ``root`` is the parsed Powertools model of its trigger."""
