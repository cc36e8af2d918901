"""The trace stage on malformed or unstorable input: one bad field never loses a file or a batch."""

from __future__ import annotations

from gtaudit.trace.records import JobContext, parse_answers, parse_response_key

KEY = parse_response_key("out/job-a/annotations/worker-response/iteration-1/0/2026-11-24T100000.json")


CTX = JobContext(job="job-a", stage="labeling", round=1, object_id="x-1a2b3c4d")


def test_malformed_worker_metadata_is_tolerated_not_raised() -> None:
    # A non-object workerMetadata / identityData used to raise AttributeError out of the worktime
    # Lambda, losing every record of the file; it is now recorded without the identity fields.
    assert KEY is not None
    for meta in ("x", ["a"], {"identityData": "x"}, {"identityData": ["a"]}):
        doc = {"answers": [{"workerId": "private.us-east-1.a", "workerMetadata": meta, "timeSpentInSeconds": 3}]}
        (rec,) = parse_answers(doc, CTX, KEY)
        assert rec.worker_id == "private.us-east-1.a"
        assert rec.cognito_sub is None and rec.active_seconds == 3.0


def test_out_of_range_activity_time_skips_the_entry_not_the_batch() -> None:
    # An epoch value datetime cannot hold (e.g. milliseconds) used to raise ValueError/OverflowError
    # out of the worktime Lambda, losing every other returned task of the CloudWatch Logs batch.
    import json

    from gtaudit.trace.activity import activity_items, parse_activity_time

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
    assert [i["worker_id"]["S"] for i in items] == ["w3"]
    assert parse_activity_time(float("nan")) is None


def test_unstorable_times_are_recorded_as_missing() -> None:
    # An infinite timeSpentInSeconds (JSON 1e999, "inf") reached DynamoDB as N "inf", which it
    # refuses, failing the whole file; an offset time past year 9999 raised OverflowError.
    assert KEY is not None
    doc = {
        "answers": [
            {
                "workerId": "private.us-east-1.a",
                "timeSpentInSeconds": float("inf"),
                "acceptanceTime": "9999-12-31T23:59:59-01:00",
                "submissionTime": "2026-11-24T10:01:54.343Z",
            },
            {"workerId": "private.us-east-1.b", "timeSpentInSeconds": "Infinity"},
            {"workerId": "private.us-east-1.c", "timeSpentInSeconds": 10**400},
        ]
    }
    a, b, c = parse_answers(doc, CTX, KEY)
    assert a.active_seconds is None and a.accepted_at is None and a.submitted_at == "2026-11-24T10:01:54.343Z"
    assert {"timeSpentInSeconds", "acceptanceTime"} <= set(a.missing)
    assert b.active_seconds is None and "timeSpentInSeconds" in b.missing
    assert c.active_seconds is None and "timeSpentInSeconds" in c.missing


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def iter_lines(self, keepends: bool = False) -> list[bytes]:
        return self._data.splitlines()

    def close(self) -> None:
        pass


class _FlakySageMaker:
    """DescribeLabelingJob fails once (throttled), then answers."""

    def __init__(self) -> None:
        self.calls = 0

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, object]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("ThrottlingException")
        return {"InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://bkt/in/job-a.manifest"}}}}


class _S3:
    def get_object(self, Bucket: str, Key: str) -> dict[str, object]:
        if Key == "in/job-a.manifest":
            return {"Body": _Body(b'{"source-ref": "s3://bkt/i/x.jpg", "object-id": "x-1a2b3c4d"}\n')}
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")


def test_a_transient_manifest_failure_is_not_cached_for_the_container() -> None:
    # While a job runs its output manifest does not exist yet, so one throttled DescribeLabelingJob
    # used to cache "no manifest" for the job: every later record of that job in the warm container
    # lost its object-id. The next record now tries again.
    from gtaudit.trace.ingest import ManifestIndex

    assert KEY is not None
    index = ManifestIndex(_S3(), _FlakySageMaker())
    assert index.line("bkt", KEY) is None
    assert index.line("bkt", KEY) == {"object-id": "x-1a2b3c4d"}
