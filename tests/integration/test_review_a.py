"""Review findings (reviewer A): each test pins a defect that was fixed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from gtaudit.audit import post_audit
from gtaudit.local.lambdas import LambdaService
from gtaudit.local.template import FunctionSpec
from gtaudit.models import PostAnnotationEvent, parse_event


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


def test_lambda_service_closed_during_a_cold_start_leaves_no_worker_process(tmp_path: Path) -> None:
    """close() during a cold start used to miss the worker being started: it was added to the
    service's list after close had emptied it, so its process outlived the runtime's shutdown."""
    code = tmp_path / "fn"
    code.mkdir()
    pid_file = tmp_path / "pid"
    (code / "app.py").write_text(
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(1.5)\n"
        "def lambda_handler(event, context):\n    return 'ok'\n"
    )
    spec = FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", code, "app.lambda_handler",
                        "python3.13", 30, 128, {}, (), ())  # fmt: skip
    service = LambdaService({"Fn": spec}, {"": "http://127.0.0.1:9"}, tmp_path / "logs")
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(service.invoke("fn", {}))
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    service.close()
    t.join(timeout=30)
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    if alive:  # clean up the process this test started before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive
    assert isinstance(outcome[0], RuntimeError)
