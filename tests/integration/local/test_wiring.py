"""Template wiring and shutdown: each test starts a runtime of its own (one runtime per process at a time)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import psutil
import pytest
from gt_project import TEAM, FakeWorker, job_request, make_project, seed
from gtaudit_local.runtime import LocalRuntime


@pytest.fixture
def workers() -> list[FakeWorker]:
    return [FakeWorker(1), FakeWorker(2), FakeWorker(3)]


def test_a_wrong_handler_in_the_template_fails_locally(tmp_path: Path, workers: list[FakeWorker]) -> None:
    proj = make_project(tmp_path / "proj", pre_handler="app.no_such_handler")
    with LocalRuntime(proj, work_dir=tmp_path / "work", workteams={TEAM: workers}) as rt:
        seed(rt, ["a"])
        rt.client("sagemaker").create_labeling_job(**job_request(rt, "job-bad"))
        assert rt.wait_idle(60)
        key = "out/job-bad/manifests/output/output.manifest"
        line = json.loads(rt.client("s3").get_object(Bucket=rt.bucket, Key=key)["Body"].read())
    reason = line["label-r1-metadata"]["failure-reason"]
    assert "pre-annotation Lambda failed" in reason and "no_such_handler" in reason
    assert not any(w.tasks for w in workers)


def test_a_missing_env_var_in_the_template_fails_locally(tmp_path: Path, workers: list[FakeWorker]) -> None:
    proj = make_project(tmp_path / "proj")
    text = (proj / "template.yaml").read_text().replace("REQUIRED_SETTING: !Ref Setting", "OTHER: !Ref Setting")
    (proj / "template.yaml").write_text(text)
    with LocalRuntime(proj, work_dir=tmp_path / "work", workteams={TEAM: workers}) as rt:
        seed(rt, ["a"])
        rt.client("sagemaker").create_labeling_job(**job_request(rt, "job-env"))
        assert rt.wait_idle(60)
        desc = rt.client("sagemaker").describe_labeling_job(LabelingJobName="job-env")
    assert desc["LabelCounters"]["FailedNonRetryableError"] == 1
    assert "REQUIRED_SETTING" in (tmp_path / "work" / "logs" / "gtaudit-PreFunction.log").read_text()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_nothing_is_left_running_after_shutdown(tmp_path: Path, workers: list[FakeWorker]) -> None:
    with LocalRuntime(make_project(tmp_path / "proj"), work_dir=tmp_path / "w", workteams={TEAM: workers}) as rt:
        seed(rt, ["a"])
        rt.client("sagemaker").create_labeling_job(**job_request(rt, "job-x"))
        assert rt.wait_idle(60)
        assert rt.gt is not None and rt.lambdas is not None
        ports = [*rt.moto.ports, int(rt.gt.endpoint.rsplit(":", 1)[1])]
        pids = rt.lambdas.pids()
        assert pids and all(_port_open(p) for p in ports)
        assert all(c.laddr.ip == "127.0.0.1" for c in psutil.Process().net_connections() if c.status == "LISTEN")
    assert not any(_port_open(p) for p in ports)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_an_exception_inside_the_runtime_still_stops_everything(tmp_path: Path, workers: list[FakeWorker]) -> None:
    rt = LocalRuntime(make_project(tmp_path / "proj"), work_dir=tmp_path / "w", workteams={TEAM: workers})
    with pytest.raises(KeyboardInterrupt), rt:
        ports = rt.moto.ports
        rt.lambdas.invoke(
            "PreFunction", {"dataObject": {"object-id": "a", "source-ref": "s3://b/k"}}
        ) if rt.lambdas else None
        pids = rt.lambdas.pids() if rt.lambdas else []
        raise KeyboardInterrupt
    assert not any(_port_open(p) for p in ports)
    assert pids and not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_one_person_never_gets_two_tasks_at_once(tmp_path: Path) -> None:
    person = FakeWorker(1)
    person.pause = 0.3
    with LocalRuntime(make_project(tmp_path / "proj"), work_dir=tmp_path / "w", workteams={TEAM: [person]}) as rt:
        seed(rt, ["a", "b", "c", "d"])
        req = job_request(rt, "job-one-person")
        req["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 1
        rt.client("sagemaker").create_labeling_job(**req)
        assert rt.wait_idle(60)
    assert len(person.tasks) == 4
    assert person.max_busy == 1


ROOT = Path(__file__).resolve().parents[3]


def test_every_function_of_the_real_template_initialises(tmp_path: Path) -> None:
    """Handler, CodeUri, layers and module-level set-up of every function in template.yaml."""
    with LocalRuntime(ROOT, work_dir=tmp_path) as rt:
        assert rt.lambdas is not None
        assert {"LabelingPreFunction", "LabelingPostFunction"} <= set(rt.stack.functions)
        for name in rt.stack.functions:
            rt.lambdas.warm(name)
        assert len(rt.lambdas.pids()) == len(rt.stack.functions)


def test_gtaudit_invoke_runs_one_handler_like_sam_local_invoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gtaudit_local.cli import main

    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "version": "2018-10-16",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x",
        "dataObject": {"source-ref": "s3://gtaudit-databucket/images/street.jpg", "object-id": "street-1"},
    }))  # fmt: skip
    assert main(["invoke", "labeling_pre", "--event", str(event), "--project", str(ROOT)]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["taskInput"]["objectId"] == "street-1"
    assert result["taskInput"]["taskObject"] == "s3://gtaudit-databucket/images/street.jpg"
    assert "REPORT RequestId:" in out.err
    assert main(["invoke", "NoSuchFunction", "--event", str(event), "--project", str(ROOT)]) == 2


def test_stop_labeling_job_stops_and_publishes_stopped(tmp_path: Path) -> None:
    person = FakeWorker(1)
    person.pause = 0.4
    with LocalRuntime(make_project(tmp_path / "proj"), work_dir=tmp_path / "w", workteams={TEAM: [person]}) as rt:
        seed(rt, [f"o{i}" for i in range(8)])
        req = job_request(rt, "job-stop")
        req["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 1
        sm = rt.client("sagemaker")
        sm.create_labeling_job(**req)
        while not person.tasks:
            time.sleep(0.05)
        sm.stop_labeling_job(LabelingJobName="job-stop")
        assert sm.describe_labeling_job(LabelingJobName="job-stop")["LabelingJobStatus"] in {"Stopping", "Stopped"}
        assert rt.wait_idle(60)
        desc = sm.describe_labeling_job(LabelingJobName="job-stop")
        s3 = rt.client("s3")
        event = json.loads(s3.get_object(Bucket=rt.bucket, Key="events/job-stop/Stopped.json")["Body"].read())
        body = s3.get_object(Bucket=rt.bucket, Key="out/job-stop/manifests/output/output.manifest")["Body"].read()
    lines = [json.loads(x) for x in body.decode().splitlines()]
    assert desc["LabelingJobStatus"] == "Stopped"
    assert event["detail"] == {"LabelingJobStatus": "Stopped"}
    assert len(lines) == 8  # every object accounted for
    stopped = [x for x in lines if "stopped" in x["label-r1-metadata"].get("failure-reason", "")]
    assert 0 < len(stopped) < 8
    assert len(person.tasks) < 8


ON_UPLOAD = """
import json, os, boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    key = record["s3"]["object"]["key"]
    s3.put_object(Bucket=record["s3"]["bucket"]["name"], Key="seen/" + key.replace("/", "_"), Body=b"1")
"""

S3_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Data:
    Type: AWS::S3::Bucket
  OnUpload:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/on_upload/
      Handler: app.lambda_handler
      Events:
        Manifest:
          Type: S3
          Properties:
            Bucket: !Ref Data
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: suffix, Value: .manifest}]}}
"""


def test_s3_events_of_the_template_reach_the_function_in_s3_notification_shape(tmp_path: Path) -> None:
    (tmp_path / "functions" / "on_upload").mkdir(parents=True)
    (tmp_path / "functions" / "on_upload" / "app.py").write_text(ON_UPLOAD)
    (tmp_path / "template.yaml").write_text(S3_TEMPLATE)
    with LocalRuntime(tmp_path, work_dir=tmp_path / "w") as rt:
        s3 = rt.client("s3")
        for key in ("in/a b.manifest", "in/b.txt", "other/c.manifest"):
            s3.put_object(Bucket=rt.bucket, Key=key, Body=b"{}")
        assert rt.wait_idle(60)
        seen = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=rt.bucket, Prefix="seen/").get("Contents", []))
        assert rt.dispatcher is not None and all(d.ok for d in rt.dispatcher.deliveries)
    # S3 notifications URL-encode keys (a space is "+"), as in AWS.
    assert seen == ["seen/in_a+b.manifest"]


FLAKY = """
import boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    bucket = event["Records"][0]["s3"]["bucket"]["name"]
    attempts = s3.list_objects_v2(Bucket=bucket, Prefix="attempts/").get("KeyCount", 0)
    s3.put_object(Bucket=bucket, Key=f"attempts/{attempts}", Body=context.aws_request_id.encode())
    if attempts < 2:
        raise RuntimeError("fails twice, as a step that found its work pending does")
"""


def test_an_event_is_retried_twice_with_one_request_id_then_succeeds(tmp_path: Path) -> None:
    # Lambda keeps an asynchronous event's request ID across its retries; the orchestrator's lease
    # owner is that ID, so a retry must find the lease its first attempt took still its own.
    (tmp_path / "functions" / "on_upload").mkdir(parents=True)
    (tmp_path / "functions" / "on_upload" / "app.py").write_text(FLAKY)
    (tmp_path / "template.yaml").write_text(S3_TEMPLATE)
    with LocalRuntime(tmp_path, work_dir=tmp_path / "w") as rt:
        s3 = rt.client("s3")
        s3.put_object(Bucket=rt.bucket, Key="in/a.manifest", Body=b"{}")
        assert rt.wait_idle(60)
        ids = [s3.get_object(Bucket=rt.bucket, Key=f"attempts/{n}")["Body"].read() for n in range(3)]
        assert rt.dispatcher is not None
        attempts = [(d.attempt, d.ok, d.gave_up) for d in rt.dispatcher.deliveries]
    assert len(set(ids)) == 1
    assert attempts == [(1, False, False), (2, False, False), (3, True, False)]


SLEEPY = """
import time
def lambda_handler(event, context):
    if event.get("raise"):
        raise RuntimeError("asked to fail")
    time.sleep(event.get("sleep", 0))
    return {"slept": event.get("sleep", 0), "remaining_ms": context.get_remaining_time_in_millis()}
"""

SLEEPY_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Data:
    Type: AWS::S3::Bucket
  Sleepy:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/sleepy/, Handler: app.lambda_handler, Timeout: 1}
"""


def test_the_lambda_api_and_the_templates_timeout(tmp_path: Path) -> None:
    from gtaudit_local.lambdas import LambdaInvokeError

    (tmp_path / "functions" / "sleepy").mkdir(parents=True)
    (tmp_path / "functions" / "sleepy" / "app.py").write_text(SLEEPY)
    (tmp_path / "template.yaml").write_text(SLEEPY_TEMPLATE)
    with LocalRuntime(tmp_path, work_dir=tmp_path / "w") as rt:
        assert rt.lambdas is not None
        lam = rt.client("lambda")
        ok = lam.invoke(FunctionName="gtaudit-Sleepy", Payload=b'{"sleep": 0}')
        result = json.loads(ok["Payload"].read())
        assert "FunctionError" not in ok and result["slept"] == 0 and 0 < result["remaining_ms"] <= 1000
        bad = lam.invoke(FunctionName="gtaudit-Sleepy", Payload=b'{"raise": true}')
        assert bad["FunctionError"] == "Unhandled"
        assert json.loads(bad["Payload"].read())["errorMessage"] == "asked to fail"
        assert lam.invoke(FunctionName="Sleepy", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.invoke(FunctionName="nope", Payload=b"{}")
        assert rt.wait_idle(10)  # the asynchronous invoke is done
        before = set(rt.lambdas.pids())
        with pytest.raises(LambdaInvokeError) as err:
            rt.lambdas.invoke("Sleepy", {"sleep": 3})  # Timeout: 1 in the template
        assert err.value.error_type == "Sandbox.Timedout"
        assert set(rt.lambdas.pids()) < before  # the timed-out environment was discarded
        assert rt.lambdas.invoke("Sleepy", {"sleep": 0})["slept"] == 0  # a fresh environment
