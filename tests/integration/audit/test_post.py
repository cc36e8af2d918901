"""audit_post on moto S3: answer files that cannot be read exclude their auditor, never the batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from gtaudit.audit.post import post_audit
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PostAnnotationEvent


def _event(bucket: str, key: str) -> PostAnnotationEvent:
    return parse_event(
        PostAnnotationEvent,
        {
            "version": "2018-10-16",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/j",
            "labelAttributeName": "audit-r1",
            "payload": {"s3Uri": f"s3://{bucket}/{key}"},
        },
    )


def test_audit_post_unreadable_answer_files_exclude_the_worker_not_the_batch(s3: Any, bucket: str) -> None:
    """A missing answer file (NoSuchKey) or one that is not UTF-8 excluded that auditor; it used to
    raise out of post_audit and lose the verdicts of every object in the batch."""
    s3.put_object(Bucket=bucket, Key="answers/bad.json", Body=b'{"comment": "\xff\xfe"}')
    approve = json.dumps({"approve": {"on": True}, "reject": {"on": False}})
    batch = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": f"s3://{bucket}/o/0.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": approve}},
                         {"workerId": "w2", "annotationData": {"s3Uri": f"s3://{bucket}/answers/gone.json"}}]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": f"s3://{bucket}/o/1.jpg"},
         "annotations": [{"workerId": "w3", "annotationData": {"s3Uri": f"s3://{bucket}/answers/bad.json"}}]},
    ]  # fmt: skip
    s3.put_object(Bucket=bucket, Key="req/batch.json", Body=json.dumps(batch).encode())
    out = post_audit(s3, _event(bucket, "req/batch.json"), allowed=[bucket])
    by_id = {r["datasetObjectId"]: r["consolidatedAnnotation"]["content"]["audit-r1"] for r in out}
    assert by_id["0"]["verdict"] == "approve"
    assert [e["workerId"] for e in by_id["0"]["excluded"]] == ["w2"]
    assert by_id["1"]["status"] == "failed"
    assert [e["workerId"] for e in by_id["1"]["excluded"]] == ["w3"]


def test_a_throttled_answer_file_fails_the_batch_for_a_retry_never_drops_the_auditor(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping a rejecting auditor whose answer could not be read *this time* would approve the
    object (any reject wins): a transient error goes back to Ground Truth, which retries the batch."""
    reject = json.dumps({"approve": {"on": False}, "reject": {"on": True}, "comment": "arm"})
    s3.put_object(Bucket=bucket, Key="answers/reject.json", Body=reject.encode())
    approve = json.dumps({"approve": {"on": True}, "reject": {"on": False}})
    batch = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": f"s3://{bucket}/o/0.jpg"},
         "annotations": [{"workerId": "w1", "annotationData": {"content": approve}},
                         {"workerId": "w2", "annotationData": {"s3Uri": f"s3://{bucket}/answers/reject.json"}}]},
    ]  # fmt: skip
    s3.put_object(Bucket=bucket, Key="req/batch.json", Body=json.dumps(batch).encode())
    real_get = s3.get_object

    def throttled(**kwargs: Any) -> Any:
        if kwargs["Key"] == "answers/reject.json":
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "GetObject")
        return real_get(**kwargs)

    monkeypatch.setattr(s3, "get_object", throttled)
    with pytest.raises(ClientError):
        post_audit(s3, _event(bucket, "req/batch.json"), allowed=[bucket])
    monkeypatch.setattr(s3, "get_object", real_get)  # the retry reads it, and the reject wins
    (entry,) = post_audit(s3, _event(bucket, "req/batch.json"), allowed=[bucket])
    assert entry["consolidatedAnnotation"]["content"]["audit-r1"]["verdict"] == "reject"
