"""The whole chain on the local runtime: the template's rule drives the orchestrator, the GT emulator
runs the jobs with scripted workers, and the real Lambdas label, overlay, audit and consolidate."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from gtaudit.pipeline.start import start_run
from gtaudit_local.commands.start import config_from_outputs

ROOT = Path(__file__).resolve().parents[3]
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/labelers"
AUDIT_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/inspectors"
IMAGES = ("astronaut.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg", "horse.png", "brick.jpg")


@pytest.mark.slow
@pytest.mark.parametrize("strict", [False, True], ids=["default-auditor", "strict-auditor"])
def test_local_chain_labeling_overlay_audit_rework_final(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    from gtaudit_local.runtime import LocalRuntime
    from gtaudit_local.workers.auditor import ScriptedAuditor
    from gtaudit_local.workers.crew import default_crew

    folder = tmp_path / "images"
    folder.mkdir()
    for name in IMAGES:
        shutil.copy(ROOT / "samples" / "images" / name, folder / name)
    labelers, auditors = default_crew(3, references=ROOT / "samples" / "reference")
    if strict:  # nothing is ever good enough: every round rejects, so the round limit decides
        a = auditors[0]
        auditors = [ScriptedAuditor(a.worker_id, a.sub, 3, references=a.references, threshold=0.9999)]
    params = {"WorkteamArn": TEAM, "AuditWorkteamArn": AUDIT_TEAM, "MaxRounds": "2" if strict else "3"}
    with LocalRuntime(
        ROOT, work_dir=tmp_path / "rt", workteams={TEAM: labelers, AUDIT_TEAM: auditors}, parameters=params
    ) as rt:
        for key, value in rt.client_env().items():
            monkeypatch.setenv(key, value)
        config = config_from_outputs(rt.stack.outputs, environ={})
        table = boto3.resource("dynamodb").Table(config.table)
        started = start_run(
            s3=rt.client("s3"), sagemaker=rt.client("sagemaker"), table=table, config=config, images=str(folder)
        )
        s3 = rt.client("s3")
        key = f"runs/{started.run_id}/summary.json"
        deadline = time.monotonic() + 900
        while True:  # idle between two steps is not the end: the summary is
            assert rt.wait_idle(timeout=max(1.0, deadline - time.monotonic())), "the chain did not settle"
            listed = s3.list_objects_v2(Bucket=config.bucket, Prefix=key).get("KeyCount", 0)
            if listed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        summary: dict[str, Any] = json.loads(s3.get_object(Bucket=config.bucket, Key=key)["Body"].read())
        jobs = rt.client("sagemaker").list_labeling_jobs()["LabelingJobSummaryList"]
        # EventBridge delivers at least once: replay every job's Completed event through the rule.
        entries = [
            {
                "Source": "aws.sagemaker",
                "DetailType": "SageMaker Ground Truth Labeling Job State Change",
                "Detail": json.dumps({"LabelingJobStatus": "Completed"}),
                "Resources": [j["LabelingJobArn"]],
            }
            for j in jobs
        ]
        assert rt.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
        assert rt.wait_idle(timeout=300)
        after = rt.client("sagemaker").list_labeling_jobs()["LabelingJobSummaryList"]
        accepted = s3.get_object(Bucket=config.bucket, Key=f"runs/{started.run_id}/accepted.manifest")["Body"].read()
    assert summary["status"] == "completed", summary
    assert summary["objects-in"] == len(IMAGES)
    assert summary["balanced"] is True
    assert summary["approved"] + summary["needs-attention"] + summary["failed"] == len(IMAGES)
    assert summary["rounds"][0]["labeling"]["consolidated"] >= 1
    assert "audit" in summary["rounds"][0]
    if strict:  # (nearly) every mask rejected twice: one rework round, then the round limit
        assert [r["round"] for r in summary["rounds"]] == [1, 2]
        r1 = summary["rounds"][0]["audit"]
        assert r1["rework"] >= 1 and r1["rework"] == r1["rejected"]
        assert summary["rounds"][1]["labeling"]["job"].startswith("gtaudit-rework-r2-")
        assert summary["needs-attention"] >= 1 and summary["rounds"][1]["audit"]["rework"] == 0
    else:  # scripted labelers are good enough that most masks pass the default auditor
        assert summary["approved"] >= 1
    assert len(after) == len(jobs)  # the replayed events created nothing
    log = (tmp_path / "rt" / "logs" / "gtaudit-OrchestratorFunction.log").read_text(encoding="utf-8")
    assert log.count('"action":"duplicate"') >= len(jobs)  # they did reach the orchestrator
    assert len(accepted.splitlines()) == summary["approved"]  # and duplicated no manifest line
    names = sorted(j["LabelingJobName"] for j in jobs)
    assert all(n.startswith("gtaudit-") for n in names)
    assert len(names) == 2 * len(summary["rounds"])  # one labeling/rework and one audit job per round
