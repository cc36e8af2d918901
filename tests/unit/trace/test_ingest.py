"""trace.ingest without services: the per-container cache of input manifests."""

from __future__ import annotations

from botocore.exceptions import ClientError
from gtaudit.trace.ingest import ManifestIndex, job_context
from gtaudit.trace.records import parse_response_key

KEY = parse_response_key("out/job-a/annotations/worker-response/iteration-1/0/2026-11-24T100000.json")


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
        raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")


def test_a_transient_manifest_failure_is_not_cached_for_the_container() -> None:
    # While a job runs its output manifest does not exist yet, so one throttled DescribeLabelingJob
    # used to cache "no manifest" for the job: every later record of that job in the warm container
    # lost its object-id. The next record now tries again.
    assert KEY is not None
    index = ManifestIndex(_S3(), _FlakySageMaker())
    assert index.line("bkt", KEY) is None
    assert index.line("bkt", KEY) == {"object-id": "x-1a2b3c4d"}


def test_a_seeded_audit_line_judges_no_labeler_and_names_its_defect() -> None:
    hand_over = {"stage": "audit", "round": 1, "labelers": ["a", "b"], "labeling-job": "lab", "seeded": "none"}
    ctx = job_context("gtaudit-audit-r1-x", {"object-id": "g-1", "gtaudit": hand_over})
    assert (ctx.seeded, ctx.judged, ctx.labeling_job, ctx.object_id) == ("none", (), "lab", "g-1")
    plain = job_context("gtaudit-audit-r1-x", {"object-id": "o-1", "gtaudit": {**hand_over, "seeded": "bogus"}})
    assert (plain.seeded, plain.judged) == (None, ("a", "b"))
    labeling = job_context("gtaudit-labeling-r1-x", {"object-id": "o-1", "gtaudit": hand_over})
    assert labeling.seeded is None
