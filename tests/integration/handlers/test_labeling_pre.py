"""labeling_pre's handler with the sample events: the contract, skips, logging and bad events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from gtaudit.exceptions import InvalidEventError
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PreAnnotationEvent
from support import EVENTS, load_event

BUCKET = "gtaudit-test-data"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_BUCKETS", BUCKET)
    monkeypatch.setenv("TASK_LANGUAGE", "en")
    monkeypatch.delenv("LABEL_SET", raising=False)


def invoke(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    from labeling_pre import app

    result: dict[str, Any] = app.lambda_handler(event, ctx)
    return result


def test_every_sample_event_fits_the_handler_model() -> None:
    files = sorted(EVENTS.glob("labeling_pre-*.json"))
    assert len(files) >= 7
    for f in files:
        parse_event(PreAnnotationEvent, json.loads(f.read_text(encoding="utf-8")))


def test_source_ref_gives_a_task(lambda_context: Any) -> None:
    out = invoke(load_event("labeling_pre-source-ref"), lambda_context)
    assert out["isHumanAnnotationRequired"] is True
    assert out["taskInput"]["taskObject"] == f"s3://{BUCKET}/images/street 01 ☃.jpg"


def test_rework_event_with_chained_attributes(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_LANGUAGE", "ja")
    monkeypatch.setenv("LABEL_SET", json.dumps(["person", "animal"]))
    out = invoke(load_event("labeling_pre-rework"), lambda_context)
    task = out["taskInput"]
    assert out["isHumanAnnotationRequired"] is True
    assert task["round"] == 2 and task["language"] == "ja"
    assert task["initialValue"]["src"].endswith("/0_2026-11-24T100000.png")
    assert task["feedback"]["verdict"] == "reject"


@pytest.mark.parametrize(
    "case", ["inline-source", "no-image-ref", "unsupported-extension", "outside-bucket", "bad-rework"]
)
def test_unworkable_object_is_skipped_and_logged_with_its_id(
    case: str, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    event = load_event(f"labeling_pre-{case}")
    out = invoke(event, lambda_context)
    assert out["isHumanAnnotationRequired"] is False
    reason = out["taskInput"]["skipReason"]
    warnings = [rec for rec in caplog.records if rec.getMessage() == "data object not workable"]
    assert len(warnings) == 1
    assert warnings[0].__dict__["object_id"] == event["dataObject"]["object-id"]
    assert warnings[0].__dict__["reason"] == reason
    assert not any("dataObject" in rec.getMessage() for rec in caplog.records)  # never the whole event


@pytest.mark.parametrize(
    "event",
    [
        {"version": "2018-10-16", "labelingJobArn": "arn:x"},
        {"dataObject": "s3://gtaudit-test-data/images/a.jpg"},
        {"dataObject": None},
    ],
)
def test_malformed_event_raises_a_typed_error(event: dict[str, Any], lambda_context: Any) -> None:
    with pytest.raises(InvalidEventError, match="dataObject") as err:
        invoke(copy.deepcopy(event), lambda_context)
    assert "gtaudit-test-data" not in str(err.value)


def test_non_object_event_raises_a_typed_error(lambda_context: Any) -> None:
    with pytest.raises(InvalidEventError):
        invoke(["not", "an", "event"], lambda_context)  # type: ignore[arg-type]
