"""The GT emulator against a botocore client, on a small template of its own (test doubles only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from gt_project import TEAM, FakeWorker, job_request, make_project, seed
from gtaudit_local.aws import client
from gtaudit_local.runtime import LocalRuntime

# The module shares one runtime (or one demo run): keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("local-runtime-gt")


@pytest.fixture
def workers() -> list[FakeWorker]:
    return [FakeWorker(1), FakeWorker(2), FakeWorker(3)]


@pytest.fixture(scope="module")
def shared_workers() -> list[FakeWorker]:
    return [FakeWorker(1), FakeWorker(2), FakeWorker(3)]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, shared_workers: list[FakeWorker]) -> Iterator[LocalRuntime]:
    """One runtime for the tests that do not need a template of their own (start-up costs ~3 s)."""
    tmp = tmp_path_factory.mktemp("gt")
    with LocalRuntime(make_project(tmp / "proj"), work_dir=tmp / "work", workteams={TEAM: shared_workers}) as rt:
        yield rt


@pytest.mark.parametrize(
    ("override", "code", "needle"),
    [
        ({"LabelingJobName": "bad_name"}, "ValidationException", "labeling job name"),
        ({"LabelingJobName": "-starts-with-hyphen"}, "ValidationException", "labeling job name"),
        ({"LabelAttributeName": "label-ref"}, "ValidationException", "-ref"),
        ({"LabelAttributeName": "x-metadata"}, "ValidationException", "-metadata"),
        ({"HumanTaskConfig.NumberOfHumanWorkersPerDataObject": 10}, "ValidationException", "between 1 and 9"),
        ({"HumanTaskConfig.TaskTimeLimitInSeconds": 29}, "ValidationException", "between 30 and 28800"),
        ({"HumanTaskConfig.TaskAvailabilityLifetimeInSeconds": 59}, "ValidationException", "between 60"),
        ({"HumanTaskConfig.TaskTitle": "x" * 129}, "ValidationException", "TaskTitle"),
        ({"HumanTaskConfig.TaskKeywords": ["a"] * 6}, "ValidationException", "TaskKeywords"),
        (
            {"HumanTaskConfig.PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:nope"},
            "ValidationException",
            "does not exist",
        ),
        ({"HumanTaskConfig.PreHumanTaskLambdaArn": None}, "ValidationException", "PreHumanTaskLambdaArn"),
        (
            {"HumanTaskConfig.WorkteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/x"},
            "ValidationException",
            "does not exist",
        ),
        ({"RoleArn": "arn:aws:iam::123456789012:user/bob"}, "ValidationException", "RoleArn"),
        ({"OutputConfig.S3OutputPath": "https://example.com/x"}, "ValidationException", "S3OutputPath"),
    ],
)
def test_create_labeling_job_validation(
    runtime: LocalRuntime, override: dict[str, Any], code: str, needle: str
) -> None:
    # botocore checks some minimums itself; switch that off so the emulator's own checks answer.
    assert runtime.gt is not None
    sm = client("sagemaker", runtime.gt.endpoint, config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as err:
        sm.create_labeling_job(**job_request(runtime, "job-1", **override))
    assert err.value.response["Error"]["Code"] == code
    assert needle in err.value.response["Error"]["Message"]


def test_names_are_unique_case_insensitively_and_unknown_jobs_are_not_found(runtime: LocalRuntime) -> None:
    seed(runtime, ["a"])
    sm = runtime.client("sagemaker")
    sm.create_labeling_job(**job_request(runtime, "Same-Name"))
    with pytest.raises(ClientError) as err:
        sm.create_labeling_job(**job_request(runtime, "same-name"))
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as err:
        sm.describe_labeling_job(LabelingJobName="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    assert runtime.wait_idle(60)


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_job_runs_as_ground_truth_does(runtime: LocalRuntime, shared_workers: list[FakeWorker]) -> None:
    ids = ["a", "b", "skip-c", "ret-d"]
    seed(runtime, ids)
    sm = runtime.client("sagemaker")
    arn = sm.create_labeling_job(**job_request(runtime, "job-e2e"))["LabelingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/job-e2e"
    assert runtime.wait_idle(60)
    desc = sm.describe_labeling_job(LabelingJobName="job-e2e")
    assert desc["LabelingJobStatus"] == "Completed"
    assert desc["LabelCounters"]["TotalLabeled"] == 2
    assert desc["LabelCounters"]["FailedNonRetryableError"] == 2
    out = desc["LabelingJobOutput"]["OutputDatasetS3Uri"]
    assert out == f"s3://{runtime.bucket}/out/job-e2e/manifests/output/output.manifest"
    s3 = runtime.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=runtime.bucket, Prefix="out/job-e2e/")["Contents"])
    responses = [k for k in keys if "/worker-response/" in k]
    assert [k.split("/")[4:6] for k in responses] == [["iteration-1", "0"], ["iteration-1", "1"]]
    for k in responses:
        answers = read_json(s3, runtime.bucket, k)["answers"]
        assert len(answers) == 2
        for a in answers:
            assert set(a) == {"acceptanceTime", "answerContent", "submissionTime", "timeSpentInSeconds", "workerId",
                              "workerMetadata"}  # fmt: skip
            assert a["acceptanceTime"] == "2026-11-24T10:00:00.123Z"
            assert a["submissionTime"] == "2026-11-24T10:00:42.623Z"
            assert a["timeSpentInSeconds"] == 40.25
            assert a["workerMetadata"]["identityData"]["identityProviderType"] == "Cognito"
            assert a["answerContent"]["answer"]["html_has_url"] is True
    req_keys = [k for k in keys if "/consolidation-request/iteration-1/" in k]
    assert len(req_keys) == 1
    batch = read_json(s3, runtime.bucket, req_keys[0])
    assert [b["datasetObjectId"] for b in batch] == ["0", "1"]
    assert batch[0]["dataObject"] == {"s3Uri": f"s3://{runtime.bucket}/images/a.jpg"}
    assert json.loads(batch[0]["annotations"][0]["annotationData"]["content"])["answer"]["id"] == "a"
    assert any("/consolidation-response/iteration-1/" in k for k in keys)
    lines = [json.loads(x) for x in s3.get_object(Bucket=runtime.bucket, Key=out[len(f"s3://{runtime.bucket}/") :])
             ["Body"].read().decode().splitlines()]  # fmt: skip
    assert [x["object-id"] for x in lines] == ids
    assert lines[0]["label-r1"]["ids"] == ["a", "a"]
    meta = lines[0]["label-r1-metadata"]
    assert meta["type"] == "groundtruth/custom" and meta["human-annotated"] == "yes"
    assert meta["job-name"] == "labeling-job/job-e2e" and "failure-reason" not in meta
    assert "label-r1" not in lines[2] and "isHumanAnnotationRequired" in lines[2]["label-r1-metadata"]["failure-reason"]
    assert "not an image" in lines[2]["label-r1-metadata"]["failure-reason"]
    assert "label-r1" not in lines[3] and "3 returned" in lines[3]["label-r1-metadata"]["failure-reason"]
    assert lines[3]["label-r1-metadata"]["retry-count"] == 3
    # Every worker got at most one task per object, and nobody saw the skipped object.
    for w in shared_workers:
        assert w.max_busy == 1  # the emulator never hands one person two tasks at once
        seen = [t.dataset_object_id for t in w.tasks if t.job_name == "job-e2e"]
        assert len(seen) == len(set(seen)) and "2" not in seen
    # The state change event reached the function the template's rule names, through EventBridge.
    event = read_json(s3, runtime.bucket, "events/job-e2e/Completed.json")
    assert event["detail-type"] == "SageMaker Ground Truth Labeling Job State Change"
    assert event["source"] == "aws.sagemaker" and event["resources"] == [arn]
    listed = sm.list_labeling_jobs(NameContains="E2E", StatusEquals="Completed")["LabelingJobSummaryList"]
    assert [j["LabelingJobName"] for j in listed] == ["job-e2e"]


def test_grant_read_access_urls_stream_the_object_and_expire(runtime: LocalRuntime) -> None:
    import urllib.error
    import urllib.request

    seed(runtime, ["a"])
    assert runtime.gt is not None
    url = runtime.gt.url_for(f"s3://{runtime.bucket}/images/a.jpg")
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read() == b"jpeg-bytes-a"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=5)
    assert err.value.code == 403
    expired = runtime.gt.url_for(f"s3://{runtime.bucket}/images/a.jpg", expires_in=-1)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(expired, timeout=5)


def test_list_labeling_jobs_pages_and_sorts(runtime: LocalRuntime) -> None:
    seed(runtime, ["a"])
    sm = runtime.client("sagemaker")
    for i in range(3):
        sm.create_labeling_job(**job_request(runtime, f"page-job-{i}"))
    assert runtime.wait_idle(60)
    first = sm.list_labeling_jobs(NameContains="page-job", MaxResults=2, SortBy="Name", SortOrder="Descending")
    assert [j["LabelingJobName"] for j in first["LabelingJobSummaryList"]] == ["page-job-2", "page-job-1"]
    rest = sm.list_labeling_jobs(NameContains="page-job", MaxResults=2, SortBy="Name", SortOrder="Descending",
                                 NextToken=first["NextToken"])  # fmt: skip
    assert [j["LabelingJobName"] for j in rest["LabelingJobSummaryList"]] == ["page-job-0"]
    assert "NextToken" not in rest
    summary = rest["LabelingJobSummaryList"][0]
    assert summary["LabelingJobStatus"] == "Completed" and summary["WorkteamArn"] == TEAM
    assert summary["LabelCounters"]["TotalLabeled"] == 1


def test_an_answer_past_the_task_time_limit_counts_as_abandoned(runtime: LocalRuntime) -> None:
    seed(runtime, ["slow-a"])
    sm = runtime.client("sagemaker")
    sm.create_labeling_job(**job_request(runtime, "job-slow"))
    assert runtime.wait_idle(60)
    s3 = runtime.client("s3")
    body = s3.get_object(Bucket=runtime.bucket, Key="out/job-slow/manifests/output/output.manifest")["Body"].read()
    meta = json.loads(body)["label-r1-metadata"]
    assert "3 abandoned" in meta["failure-reason"] and meta["retry-count"] == 3
    listed = s3.list_objects_v2(Bucket=runtime.bucket, Prefix="out/job-slow/annotations/worker-response/")
    assert listed["KeyCount"] == 0


def test_a_missing_manifest_fails_the_job_with_a_reason_and_a_failed_event(runtime: LocalRuntime) -> None:
    sm = runtime.client("sagemaker")
    manifest = f"s3://{runtime.bucket}/in/no-such.manifest"
    sm.create_labeling_job(**job_request(runtime, "job-no-manifest", **{
        "InputConfig.DataSource.S3DataSource.ManifestS3Uri": manifest}))  # fmt: skip
    assert runtime.wait_idle(60)
    desc = sm.describe_labeling_job(LabelingJobName="job-no-manifest")
    assert desc["LabelingJobStatus"] == "Failed"
    assert "NoSuchKey" in desc["FailureReason"]
    assert "LabelingJobOutput" not in desc
    event = read_json(runtime.client("s3"), runtime.bucket, "events/job-no-manifest/Failed.json")
    assert event["detail"] == {"LabelingJobStatus": "Failed"}


def test_objects_are_consolidated_in_batches_of_max_concurrent_task_count(runtime: LocalRuntime) -> None:
    ids = [f"m{i}" for i in range(5)]
    seed(runtime, ids)
    sm = runtime.client("sagemaker")
    sm.create_labeling_job(**job_request(runtime, "job-batches", **{"HumanTaskConfig.MaxConcurrentTaskCount": 2}))
    assert runtime.wait_idle(60)
    assert sm.describe_labeling_job(LabelingJobName="job-batches")["LabelCounters"]["TotalLabeled"] == 5
    s3 = runtime.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=runtime.bucket, Prefix="out/job-batches/")["Contents"])
    requests = [k for k in keys if "/consolidation-request/iteration-1/" in k]
    assert len(requests) == 3  # 2 + 2 + 1, each under its own time
    batches = [[b["datasetObjectId"] for b in read_json(s3, runtime.bucket, k)] for k in requests]
    assert batches == [["0", "1"], ["2", "3"], ["4"]]
    # The finished objects' answers came back from their worker-response files, masks and all.
    first = read_json(s3, runtime.bucket, requests[0])[0]
    assert json.loads(first["annotations"][0]["annotationData"]["content"])["answer"]["id"] == "m0"
    assert len([k for k in keys if "/consolidation-response/iteration-1/" in k]) == 3
