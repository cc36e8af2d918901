"""The worktime function's discriminated union of events: each trigger is recognised, bad events name fields only."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import CloudWatchLogsModel, S3EventNotificationEventBridgeModel
from gtaudit.exceptions import InvalidEventError
from gtaudit.models import parse_event
from gtaudit.models.worktime import WorktimeEvent
from support import load_event

WORKER = "private.us-east-1.secret-worker"


def awslogs(batch: Any) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(batch).encode())).decode()}}


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("worktime-labeling", S3EventNotificationEventBridgeModel),
        ("worktime-audit", S3EventNotificationEventBridgeModel),
        ("worktime-old-format", S3EventNotificationEventBridgeModel),
        ("worktime-activity", CloudWatchLogsModel),
    ],
)
def test_each_trigger_parses_into_its_powertools_model(name: str, model: type) -> None:
    assert type(parse_event(WorktimeEvent, load_event(name)).root) is model


@pytest.mark.parametrize(
    "event",
    [
        {"awslogs": {"data": "not base64 gzip"}},
        {"awslogs": WORKER},
        {"detail": {"object": {"key": WORKER}}},
        {},
        [WORKER],
    ],
)
def test_bad_events(event: object) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(WorktimeEvent, event)


def test_errors_name_the_trigger_and_field_never_the_value() -> None:
    # A log batch whose entries lack fields: the worker identity beside them must not be echoed.
    batch = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
             "subscriptionFilters": [], "logEvents": [{"id": "1", "message": WORKER}]}  # fmt: skip
    with pytest.raises(InvalidEventError) as activity_error:
        parse_event(WorktimeEvent, awslogs(batch))
    assert "activity-log.awslogs.data.logEvents.0.timestamp" in str(activity_error.value)
    assert WORKER not in str(activity_error.value)
    created = copy.deepcopy(load_event("worktime-labeling"))
    created["detail"]["object"]["key"] = {"worker": WORKER}
    with pytest.raises(InvalidEventError) as created_error:
        parse_event(WorktimeEvent, created)
    assert "object-created.detail.object.key" in str(created_error.value) and WORKER not in str(created_error.value)
