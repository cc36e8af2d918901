"""trace.activity: WorkerActivity log times and the returned/declined task items."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gtaudit.trace.activity import activity_items, parse_activity_time, response_worker_id


def test_activity_time_and_items() -> None:
    assert parse_activity_time("Wed Aug 14 16:00:59 UTC 2019") == datetime(2019, 8, 14, 16, 0, 59, tzinfo=UTC)
    assert parse_activity_time("") is None
    ret = {
        "worker_id": "w",
        "labeling_job_arn": "arn:aws:sagemaker:r:1:labeling-job/j",
        "task_accepted_time": "Wed Aug 14 16:00:00 UTC 2019",
        "task_returned_time": "Wed Aug 14 16:02:00 UTC 2019",
        "task_declined_time": "",
    }
    sub = {**ret, "task_returned_time": "", "task_submitted_time": "Wed Aug 14 16:02:00 UTC 2019"}
    items = activity_items([("1", json.dumps(ret)), ("2", json.dumps(sub)), ("3", "not json")], "g", "s", "now")
    [item] = items
    assert item["event_type"] == {"S": "returned"} and item["wall_seconds"] == {"N": "120.0"}  # fmt: skip


def test_out_of_range_activity_time_skips_the_entry_not_the_batch() -> None:
    # An epoch value datetime cannot hold (e.g. milliseconds) used to raise ValueError/OverflowError
    # out of the worktime Lambda, losing every other returned task of the CloudWatch Logs batch.
    arn = "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/job-a"
    messages = [
        ("1", json.dumps({"worker_id": "w1", "labeling_job_arn": arn, "task_returned_time": "1763978459000"})),
        ("2", json.dumps({"worker_id": "w2", "labeling_job_arn": arn, "task_returned_time": 1e300})),
        (
            "3",
            json.dumps(
                {"worker_id": "w3", "labeling_job_arn": arn, "task_returned_time": "Wed Aug 14 16:00:59 UTC 2019"}
            ),
        ),
    ]
    items = activity_items(messages, "g", "s", "2026-11-24T10:00:00.000Z")
    assert [i["worker_id"]["S"] for i in items] == ["private.us-east-1.w3"]
    assert parse_activity_time(float("nan")) is None


def test_the_logs_bare_worker_id_joins_the_worker_response_files_private_id() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111122223333:labeling-job/job-a"
    assert response_worker_id("e52d58eb96bfba08", arn) == "private.eu-west-1.e52d58eb96bfba08"
    assert response_worker_id("private.eu-west-1.e52d58eb96bfba08", arn) == "private.eu-west-1.e52d58eb96bfba08"
    assert response_worker_id("w", "not-an-arn") == "w"
