"""audit_pre and audit_post handlers against moto, driven by the events in events/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit.exceptions import InvalidEventError

EVENTS = Path(__file__).resolve().parents[3] / "events"


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def answer(verdict: str, *reasons: str) -> dict[str, Any]:
    content: dict[str, Any] = {"approve": {"on": verdict == "approve"}, "reject": {"on": verdict == "reject"}}
    content.update({f"reason-{code}": {"on": True} for code in reasons})
    return content


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str) -> Any:
    monkeypatch.setenv("ALLOWED_BUCKETS", bucket)
    monkeypatch.setenv("TASK_LANGUAGE", "en")
    import importlib

    import audit_post.app
    import audit_pre.app

    return importlib.reload(audit_pre.app), importlib.reload(audit_post.app)


def test_pre_returns_a_task(handlers: Any, lambda_context: Any) -> None:
    pre, _ = handlers
    out = pre.lambda_handler(load_event("audit_pre-task"), lambda_context)
    assert out["isHumanAnnotationRequired"] is True
    assert out["taskInput"]["objectId"] == "street-1a2b3c4d"


def test_pre_rejects_a_malformed_event(handlers: Any, lambda_context: Any) -> None:
    pre, _ = handlers
    with pytest.raises(InvalidEventError, match="dataObject"):
        pre.lambda_handler({"version": "2018-10-16"}, lambda_context)


def test_post_consolidates_a_batch(handlers: Any, s3: Any, bucket: str, lambda_context: Any) -> None:
    _, post = handlers
    event = load_event("audit_post-batch")
    key = event["payload"]["s3Uri"].split("/", 3)[3]
    answer_key = "answers/w9.json"
    s3.put_object(Bucket=bucket, Key=answer_key, Body=json.dumps(answer("reject", "extra-region")).encode())
    batch = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://gtaudit-test-data/o/0.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": json.dumps(answer("approve"))}},
                         {"workerId": "w2", "annotationData": {"content": json.dumps(answer("reject", "wrong-class"))}},
                        ]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://gtaudit-test-data/o/1.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": json.dumps(answer("approve"))}}]},
        {"datasetObjectId": "2", "dataObject": {"s3Uri": "s3://gtaudit-test-data/o/2.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": "not json"}},
                         {"workerId": "w3", "annotationData": {"content": json.dumps({"comment": "?"})}}]},
        {"datasetObjectId": "3", "dataObject": {"s3Uri": "s3://gtaudit-test-data/o/3.jpg"},
         "annotations": [{"workerId": "w9", "annotationData": {"s3Uri": f"s3://{bucket}/{answer_key}"}},
                         {"workerId": "w8", "annotationData": {"s3Uri": "s3://elsewhere-bucket/a.json"}}]},
    ]  # fmt: skip
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(batch).encode())
    out = post.lambda_handler(event, lambda_context)
    by_id = {r["datasetObjectId"]: r["consolidatedAnnotation"]["content"]["audit-r1"] for r in out}
    assert set(by_id) == {"0", "1", "2", "3"}
    assert by_id["0"]["verdict"] == "reject"
    assert by_id["0"]["reasons"] == ["wrong-class"]
    assert by_id["0"]["votes"] == {"approve": 1, "reject": 1}
    assert by_id["1"]["verdict"] == "approve"
    assert by_id["2"]["status"] == "failed"
    assert [e["workerId"] for e in by_id["2"]["excluded"]] == ["w1", "w3"]
    assert by_id["3"]["verdict"] == "reject"
    assert by_id["3"]["reasons"] == ["extra-region"]
    assert by_id["3"]["excluded"][0]["workerId"] == "w8"


def test_post_refuses_a_request_outside_the_bucket(handlers: Any, lambda_context: Any) -> None:
    _, post = handlers
    event = load_event("audit_post-batch")
    event["payload"]["s3Uri"] = "s3://elsewhere-bucket/req.json"
    with pytest.raises(InvalidEventError, match="outside"):
        post.lambda_handler(event, lambda_context)
