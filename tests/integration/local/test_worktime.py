"""The worktime function on the local runtime: S3 -> EventBridge rule of template.yaml -> Lambda -> table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from gtaudit.trace import lineage, write_report
from gtaudit_local.cli import main
from gtaudit_local.runtime import LocalRuntime, find_project_root

pytestmark = pytest.mark.slow

JOB = "gtaudit-labeling-r1-local"
WORKER = "private.us-east-1.localworker1"


def test_a_worker_response_reaches_the_trace_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalRuntime(find_project_root(), work_dir=tmp_path) as rt:
        for key, value in rt.client_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("GTAUDIT_TRACE_TABLE", rt.stack.outputs["TraceTableName"])
        s3: Any = rt.client("s3")
        root = f"jobs/{JOB}"
        # No such job in the GT emulator: the function falls back to the job's output manifest.
        line = {"source-ref": f"s3://{rt.bucket}/images/cat.jpg", "object-id": "cat-0123abcd"}
        s3.put_object(Bucket=rt.bucket, Key=f"{root}/manifests/output/output.manifest", Body=json.dumps(line) + "\n")
        answer = {
            "acceptanceTime": "2026-11-24T09:58:01.123Z",
            "answerContent": {"crowd-semantic-segmentation": {}},
            "submissionTime": "2026-11-24T10:01:54.343Z",
            "timeSpentInSeconds": 231.2,
            "workerId": WORKER,
            "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "i", "sub": "s"}},
        }
        key = f"{root}/annotations/worker-response/iteration-1/0/2026-11-24_10:01:54.json"
        s3.put_object(Bucket=rt.bucket, Key=key, Body=json.dumps({"answers": [answer]}))
        assert rt.wait_idle(120)
        # wait_idle can return before the dispatcher has picked the S3 event up: poll the table too.
        table, ddb = rt.stack.outputs["TraceTableName"], rt.client("dynamodb")
        deadline = time.monotonic() + 60
        while not lineage(ddb, table, "cat-0123abcd") and time.monotonic() < deadline:
            time.sleep(0.2)

        assert main(["trace", "cat-0123abcd", "--format", "json"]) == 0
        [record] = json.loads(capsys.readouterr().out)["records"]
        assert (record["worker_id"], record["stage"], record["active_seconds"]) == (WORKER, "labeling", 231.2)
        assert record["src_key"] == key and record["src_version"]  # the bucket is versioned, as in the template

        paths = write_report(rt.stack.outputs["TraceTableName"], tmp_path / "out")
        report = json.loads(paths["json"].read_text())
        assert report["totals"]["tasks"] == 1 and report["workers"][0]["worker_id"] == WORKER


def test_a_scores_file_reaches_the_trace_table_through_the_templates_rule(tmp_path: Path) -> None:
    score = {"iou": 0.8, "classes": {"cat": {"inter": 4, "union": 5, "iou": 0.8}}, "confusion": []}
    doc = {"version": 1, "job": JOB, "dataset-object-id": "0", "source-ref": "s3://b/images/cat.jpg", "gold": True,
           "consensus": {WORKER: score}, "truth": {WORKER: score}, "seeded": None}  # fmt: skip
    with LocalRuntime(find_project_root(), work_dir=tmp_path) as rt:
        s3: Any = rt.client("s3")
        root = f"jobs/{JOB}"
        line = {"source-ref": f"s3://{rt.bucket}/images/cat.jpg", "object-id": "cat-0123abcd"}
        s3.put_object(Bucket=rt.bucket, Key=f"{root}/manifests/output/output.manifest", Body=json.dumps(line) + "\n")
        s3.put_object(Bucket=rt.bucket, Key=f"{root}/annotations/consolidated-annotation/scores/cat.json",
                      Body=json.dumps(doc))  # fmt: skip
        table, ddb = rt.stack.outputs["TraceTableName"], rt.client("dynamodb")
        deadline = time.monotonic() + 120
        while not lineage(ddb, table, "cat-0123abcd") and time.monotonic() < deadline:
            time.sleep(0.2)
        [item] = lineage(ddb, table, "cat-0123abcd")
    assert (item["kind"], item["worker_id"], item["iou"], item["gold_iou"]) == ("score", WORKER, 0.8, 0.8)
    assert item["class_iou"] == {"cat": [4, 5]} and item["gold"] is True
