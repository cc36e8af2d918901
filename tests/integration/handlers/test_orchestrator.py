"""The orchestrator Lambda handler and ``gtaudit start`` on moto, with a fake Ground Truth control plane."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from gtaudit.exceptions import InvalidEventError
from gtaudit_local.cli import main
from gtaudit_local.template import load_template
from pipeline_fakes import FakeSageMaker, FakeSNS, pipeline_table
from support import orchestrator_env

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
RUN = "20261124t100000-ab12"


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str) -> dict[str, str]:
    values = orchestrator_env(bucket, "pipeline")
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    pipeline_table(boto3.resource("dynamodb", region_name="us-east-1"))
    return values


@pytest.fixture
def fake_gt(monkeypatch: pytest.MonkeyPatch) -> FakeSageMaker:
    fake = FakeSageMaker()
    real = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        return fake if service == "sagemaker" else real(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    return fake


def test_template_wires_the_orchestrator_as_the_code_expects() -> None:
    stack = load_template(ROOT / "template.yaml", parameters={"JobNamePrefix": "gt-dev"})
    (rule,) = [r for r in stack.rules if r.function == "OrchestratorFunction"]
    assert rule.pattern["detail"]["LabelingJobStatus"] == ["Completed", "Failed", "Stopped"]
    prefix = rule.pattern["resources"][0]["prefix"]
    assert prefix.endswith(":labeling-job/gt-dev-")
    env = stack.functions["OrchestratorFunction"].environment
    from gtaudit.pipeline.config import ENV, PipelineConfig

    assert {ENV[k] for k in ("bucket", "table", "prefix", "workteam_arn", "role_arn", "audit_pre_arn")} <= set(env)
    config = PipelineConfig.from_env(env)
    from gtaudit.pipeline.jobs import name_for

    assert f"arn:aws:sagemaker:x:y:labeling-job/{name_for(config, 'rework', 9, RUN)}".split("labeling-job/")[
        1
    ].startswith(prefix.split("labeling-job/")[1])
    gt_role = stack.resources["GroundTruthExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    invoke = next(s for s in gt_role["Statement"] if s["Sid"] == "InvokeTaskLambdas")["Resource"]
    assert stack.functions["AuditPreFunction"].arn in invoke and stack.functions["AuditPostFunction"].arn in invoke


def test_handler_ignores_other_stacks_and_rejects_non_events(env: Any, lambda_context: Any, fake_gt: Any) -> None:
    import orchestrator.app

    app = importlib.reload(orchestrator.app)
    assert app.lambda_handler(load_event("orchestrator-other-stack"), lambda_context)["action"] == "ignored"
    assert app.lambda_handler(load_event("orchestrator-completed"), lambda_context)["why"] == "unknown job"
    with pytest.raises(InvalidEventError):
        app.lambda_handler({"detail-type": "Something else"}, lambda_context)


@pytest.mark.parametrize("event_name", ["orchestrator-failed", "orchestrator-stopped"])
def test_start_cli_then_a_failed_job_event(
    env: Any,
    lambda_context: Any,
    fake_gt: FakeSageMaker,
    tmp_path: Path,
    s3: Any,
    bucket: str,
    capsys: pytest.CaptureFixture[str],
    event_name: str,
) -> None:
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"jpg")
    (folder / "sub" / "b.png").write_bytes(b"png")
    (folder / "notes.txt").write_text("not an image")
    code = main(["start", "--images", str(folder), "--labels", "cat,dog", "--run-id", RUN])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["objects"] == 2 and out["uploaded"] == 2
    assert out["job"] == f"gtaudit-labeling-r1-{RUN}"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"inputs/{RUN}/")["Contents"])
    assert keys == [f"inputs/{RUN}/images/a.jpg", f"inputs/{RUN}/images/sub/b.png"]
    cats = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/label-categories.json")["Body"].read())
    assert cats["labels"] == [{"label": "cat"}, {"label": "dog"}]
    template_uri = fake_gt.jobs[out["job"]]["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"]
    key = template_uri.split("/", 3)[3]
    assert b"crowd-semantic-segmentation" in s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # the same start again (a retry) creates nothing new
    assert main(["start", "--images", str(folder), "--run-id", RUN]) == 0
    assert fake_gt.created == [out["job"]]

    import orchestrator.app

    app = importlib.reload(orchestrator.app)
    sns = FakeSNS()
    app.CLIENTS.sns = sns
    status = event_name.split("-")[1].capitalize()
    fake_gt.jobs[out["job"]]["LabelingJobStatus"] = status
    fake_gt.jobs[out["job"]]["FailureReason"] = "ClientError: something broke" if status == "Failed" else ""
    result = app.lambda_handler(load_event(event_name), lambda_context)
    assert result["action"] == "failed" and result["failed"] == 2
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/summary.json")["Body"].read())
    assert summary["status"] == status.lower() and summary["balanced"] is True
    assert [m["subject"] for m in sns.messages] == [
        f"gtaudit: labeling job {status}",
        f"gtaudit: run {RUN} {status.lower()}",
    ]


def test_start_cli_needs_a_bucket(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DATA_BUCKET", raising=False)
    monkeypatch.delenv("GTAUDIT_STACK", raising=False)
    assert main(["start", "--images", "s3://bucket-x/images/"]) == 2
    assert "no bucket" in capsys.readouterr().err


def test_start_cli_labels_must_restate_the_stacks_label_set(
    env: Any,
    fake_gt: FakeSageMaker,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LABEL_SET", '["猫", {"label": "dog", "color": "#ff0000"}]')
    s3.put_object(Bucket=bucket, Key="images/a.jpg", Body=b"jpg")
    assert main(["start", "--images", f"s3://{bucket}/images/", "--labels", "cat,dog"]) == 2
    assert "differ from the stack's LabelSet" in capsys.readouterr().err
    assert fake_gt.created == []
    assert main(["start", "--images", f"s3://{bucket}/images/", "--run-id", RUN]) == 0
    cats = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/label-categories.json")["Body"].read())
    assert cats["labels"] == [{"label": "猫"}, {"label": "dog"}]
