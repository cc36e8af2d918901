"""The job state change event and the job kinds."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from gtaudit.exceptions import InvalidEventError
from gtaudit.models import parse_event
from gtaudit.models.jobs import JobKind, JobStateChangeEvent
from support import EVENTS


def sample() -> dict[str, Any]:
    return json.loads((EVENTS / "orchestrator-completed.json").read_text(encoding="utf-8"))


def test_the_sample_event_names_its_job_and_status() -> None:
    event = parse_event(JobStateChangeEvent, sample())
    assert event.job_name == "gtaudit-labeling-r1-20261124t100000-ab12"
    assert event.detail.status == "Completed"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("source",), "aws.s3"),
        (("detail-type",), "Object Created"),
        (("resources",), ["arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/x"]),
        (("detail",), {}),
    ],
)
def test_other_events_are_refused_without_echoing_values(path: tuple[str, ...], value: Any) -> None:
    event = copy.deepcopy(sample())
    event[path[0]] = value
    with pytest.raises(InvalidEventError) as err:
        parse_event(JobStateChangeEvent, event)
    assert "111122223333" not in str(err.value) and "aws.s3" not in str(err.value)


def test_kinds_are_their_names_and_know_their_stage() -> None:
    assert [k.value for k in JobKind] == ["labeling", "rework", "audit"]
    assert JobKind("rework").stage == "labeling" and JobKind.AUDIT.stage == "audit"
    assert json.dumps({"kind": JobKind.REWORK}) == '{"kind": "rework"}'
