"""A worker-response file rewritten after each answer (as the local GT emulator writes it): each answer one record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from gtaudit.trace import lineage
from gtaudit.trace.ingest import ManifestIndex, record_file
from support import REGION

JOB = "gtaudit-labeling-r1-grow"
KEY = f"jobs/{JOB}/annotations/worker-response/iteration-1/0/2026-11-24_10:00:05.json"


def answer(worker: str, second: int) -> dict[str, Any]:
    return {
        "acceptanceTime": "2026-11-24T10:00:00.000Z",
        "answerContent": {"crowd-semantic-segmentation": {}},
        "submissionTime": f"2026-11-24T10:00:{second:02d}.000Z",
        "timeSpentInSeconds": float(second),
        "workerId": worker,
        "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "i", "sub": f"s-{worker}"}},
    }


# Which version's event comes when: in order, newest first, and each again (EventBridge: at least once).
@pytest.mark.parametrize("order", [[0, 1], [1, 0], [0, 1, 1, 0], [1, 0, 1, 0]])
def test_each_answer_of_a_growing_file_is_one_record_whatever_order_its_versions_come_in(
    s3: Any, bucket: str, trace_table: str, order: list[int]
) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    line = {"source-ref": f"s3://{bucket}/images/a.jpg", "object-id": "a-1"}
    s3.put_object(Bucket=bucket, Key=f"jobs/{JOB}/manifests/output/output.manifest", Body=json.dumps(line) + "\n")
    versions = []
    for answers in ([answer("w1", 5)], [answer("w1", 5), answer("w2", 9)]):  # the file after each answer
        s3.put_object(Bucket=bucket, Key=KEY, Body=json.dumps({"answers": answers}).encode())
        versions.append(s3.head_object(Bucket=bucket, Key=KEY)["VersionId"])
    ddb = boto3.client("dynamodb", region_name=REGION)
    manifests = ManifestIndex(s3, None)

    for n in order:
        result = record_file(s3=s3, ddb=ddb, table=trace_table, manifests=manifests, bucket=bucket,
                             key=KEY, version_id=versions[n], sequencer=f"0{n}",
                             now=datetime(2026, 11, 24, 12, tzinfo=UTC))  # fmt: skip
        assert result.records == n + 1
    records = [r for r in lineage(ddb, trace_table, "a-1") if r["kind"] == "task"]
    assert sorted((r["worker_id"], r["active_seconds"]) for r in records) == [("w1", 5.0), ("w2", 9.0)]
    assert {r["src_version"] for r in records} == {versions[1]}
