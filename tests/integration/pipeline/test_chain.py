"""The orchestrator end to end on moto (S3, DynamoDB) with a fake Ground Truth control plane.

moto has no labeling-job API, so ``FakeSageMaker`` plays it: it validates each CreateLabelingJob
request against botocore's own SageMaker model, refuses a second job of the same name as GT
does, and answers DescribeLabelingJob with whatever status a test sets. ``complete_*`` write the
output manifest Ground Truth would write, with labeling_post's / audit_post's content.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters
from gtaudit import layout
from gtaudit.labeling.post import consolidate_batch
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PostAnnotationEvent
from gtaudit.models.jobs import JobStateChangeEvent
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.context import Clients, Context
from gtaudit.pipeline.orchestrator import handle_job_event
from gtaudit.pipeline.start import start_run
from gtaudit.pipeline.state import PipelineState
from gtaudit.s3uri import parse_s3_uri
from PIL import Image
from pipeline_fakes import ACCOUNT, COLOR_MAP, REGION, FakeSageMaker, FakeSNS, event, pipeline_table

ROOT = Path(__file__).resolve().parents[3]


class Harness:
    """One moto account, a fake GT, and the orchestrator's context."""

    def __init__(self, s3: Any, bucket: str, **config: Any) -> None:
        self.s3, self.bucket = s3, bucket
        self.sm, self.sns = FakeSageMaker(), FakeSNS()
        self.table = pipeline_table(boto3.resource("dynamodb", region_name=REGION))
        self.now = 1_000_000.0
        self.config = PipelineConfig(
            bucket=bucket,
            table="pipeline",
            prefix=config.pop("prefix", "gtaudit-test"),
            workteam_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/team",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/gt",
            labeling_pre_arn=lam("pre"),
            labeling_post_arn=lam("post"),
            audit_pre_arn=lam("apre"),
            audit_post_arn=lam("apost"),
            topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
            **config,
        )
        self.rendered: list[str] = []

    def ctx(self) -> Context:
        clients = Clients(self.s3, self.sm, self.table, self.sns, getattr(self, "lambda_client", None))
        state = PipelineState(self.table, clock=lambda: self.now)
        return Context(self.config, clients, state, render_inline=self.render)

    def render(self, masks: list[str]) -> None:
        for m in masks:
            self.rendered.append(m)
            root = m.split("/annotations/")[0]
            name = layout.mask_name(parse_s3_uri(m))
            uri = layout.overlay(layout.job_root(root.rsplit("/", 1)[0], root.rsplit("/", 1)[1]), name)
            self.s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=b"jpg")

    def handle(self, name: str, status: str = "Completed", owner: str | None = None) -> dict[str, Any]:
        return handle_job_event(
            self.ctx(), parse_event(JobStateChangeEvent, event(name, status)), owner=owner
        ).as_dict()

    def start(self, n: int, **kw: Any) -> Any:
        for i in range(n):
            self.s3.put_object(Bucket=self.bucket, Key=f"images/img{i}.jpg", Body=b"x")
        return start_run(
            s3=self.s3,
            sagemaker=self.sm,
            table=self.table,
            config=self.config,
            images=f"s3://{self.bucket}/images/",
            run_id="20261124t100000-ab12",
            **kw,
        )

    def lines(self, uri: Any) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode()
        return [json.loads(x) for x in body.splitlines() if x.strip()]

    def input_lines(self, name: str) -> list[dict[str, Any]]:
        src = self.sm.jobs[name]["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
        b, k = src[5:].split("/", 1)
        return self.lines(mf.S3Uri(b, k))

    def write_output(self, name: str, lines: list[dict[str, Any]], *, overlays: bool = True) -> None:
        job = self.sm.jobs[name]
        root = layout.job_root(job["OutputConfig"]["S3OutputPath"], name)
        uri = layout.output_manifest(root)
        body = "".join(json.dumps(x) + "\n" for x in lines)
        self.s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body.encode())
        job["LabelingJobStatus"] = "Completed"

    def complete_labeling(
        self,
        name: str,
        outcome: Callable[[int, dict[str, Any]], Any],
        *,
        overlays: bool = True,
        drop: int | None = None,
    ) -> None:
        """``outcome(i, line)`` -> ``(workers, agreement)`` for a consolidated mask, or a failure string."""
        job = self.sm.jobs[name]
        attr = job["LabelAttributeName"]
        root = layout.job_root(job["OutputConfig"]["S3OutputPath"], name)
        out = []
        for i, line in enumerate(self.input_lines(name)):
            if i == drop:
                continue
            res = outcome(i, line)
            meta = {"type": "groundtruth/custom", "job-name": name, "human-annotated": "yes"}
            if res == "expired":
                out.append(
                    {**line, f"{attr}-metadata": {**meta, "failure-reason": "ClientError: expired", "retry-count": 1}}
                )
                continue
            if res == "skipped":
                out.append(line)
                continue
            if isinstance(res, str):
                out.append(
                    {
                        **line,
                        attr: {"status": "failed", "failure-reason": res, "workers": [], "excluded": []},
                        f"{attr}-metadata": meta,
                    }
                )
                continue
            workers, agreement = res
            # As labeling_post names them: after the image (the start's object-id where names collide).
            image = line["object-id"]
            mask = layout.consolidated_mask(root.join("annotations"), image, "2026-11-24T100000")
            self.s3.put_object(Bucket=mask.bucket, Key=mask.key, Body=b"png")
            if overlays:
                ov = layout.overlay(root, image)
                self.s3.put_object(Bucket=ov.bucket, Key=ov.key, Body=b"jpg")
            content = {
                "status": "consolidated",
                "mask-ref": str(mask),
                "internal-color-map": COLOR_MAP,
                "image-size": {"width": 4, "height": 3},
                "workers": workers,
                "agreement": agreement,
                "excluded": [],
            }
            out.append({**line, attr: content, f"{attr}-metadata": meta})
        self.write_output(name, out)

    def complete_audit(self, name: str, verdict: Callable[[int, dict[str, Any]], str]) -> None:
        job = self.sm.jobs[name]
        attr = job["LabelAttributeName"]
        out = []
        for i, line in enumerate(self.input_lines(name)):
            v = verdict(i, line)
            content: dict[str, Any]
            if v == "failed":
                content = {
                    "status": "failed",
                    "failure-reason": "no usable answer: w9: no verdict chosen",
                    "auditors": [],
                    "excluded": [],
                }
            else:
                content = {
                    "status": "audited",
                    "verdict": v,
                    "reasons": ["loose-boundary"] if v == "reject" else [],
                    "comment": "arm" if v == "reject" else "",
                    "notes": [],
                    "auditors": ["private.a1"],
                    "votes": {"approve": int(v == "approve"), "reject": int(v == "reject")},
                    "excluded": [],
                }
            out.append({**line, attr: content, f"{attr}-metadata": {"type": "groundtruth/custom", "job-name": name}})
        self.write_output(name, out)

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            self.s3.get_object(Bucket=self.bucket, Key="runs/20261124t100000-ab12/summary.json")["Body"].read()
        )
        return data


def lam(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def ok(i: int, line: dict[str, Any]) -> tuple[list[str], float]:
    return ["private.w1", "private.w2"], 0.95


@pytest.fixture
def h(s3: Any, bucket: str) -> Harness:
    return Harness(s3, bucket)


# ---------------------------------------------------------------- the chain
def test_full_chain_with_rework_and_a_failed_object(h: Harness) -> None:
    started = h.start(3)
    assert started.objects == 3
    label1 = started.job_name
    assert label1 == "gtaudit-test-labeling-r1-20261124t100000-ab12"
    req = h.sm.jobs[label1]
    assert req["LabelAttributeName"] == "label-r1"
    assert req["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"].endswith("/segmentation.liquid.html")
    assert req["LabelCategoryConfigS3Uri"].endswith("label-categories.json")

    h.complete_labeling(label1, lambda i, line: "no usable annotation: all masks empty" if i == 2 else ok(i, line))
    r = h.handle(label1)
    assert r["action"] == "audit-created"
    audit1 = r["next"]
    areq = h.sm.jobs[audit1]
    assert areq["LabelAttributeName"] == "audit-r1"
    assert areq["HumanTaskConfig"]["PreHumanTaskLambdaArn"] == lam("apre")
    assert areq["HumanTaskConfig"]["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] == lam("apost")
    assert areq["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"].endswith("/audit.liquid.html")
    audit_lines = h.input_lines(audit1)
    assert len(audit_lines) == 2
    first = audit_lines[0]
    assert first["source-ref"].endswith("/overlays/img0.jpg")
    assert first["gtaudit"]["stage"] == "audit"
    assert first["gtaudit"]["original"] == f"s3://{h.bucket}/images/img0.jpg"
    assert first["gtaudit"]["labelers"] == ["private.w1", "private.w2"]
    assert first["gtaudit"]["labeling-job"] == label1
    failed = h.lines(mf.cumulative(h.bucket, started.run_id, "failed"))
    assert [f["gtaudit"]["reason"] for f in failed] == ["no usable annotation: all masks empty"]

    h.complete_audit(audit1, lambda i, line: "reject" if i == 1 else "approve")
    r = h.handle(audit1)
    assert r["action"] == "rework-created"
    rework2 = r["next"]
    assert rework2 == "gtaudit-test-rework-r2-20261124t100000-ab12"
    assert h.sm.jobs[rework2]["LabelAttributeName"] == "label-r2"
    (rework_line,) = h.input_lines(rework2)
    assert rework_line["source-ref"] == f"s3://{h.bucket}/images/img1.jpg"
    assert rework_line["object-id"] == audit_lines[1]["object-id"]
    g = rework_line["gtaudit"]
    assert g["round"] == 2
    assert g["previous-mask"] == audit_lines[1]["gtaudit"]["mask"]
    assert g["color-map"] == COLOR_MAP
    assert g["feedback"]["verdict"] == "reject"
    assert g["feedback"]["reasons"] == ["loose-boundary"]
    assert g["feedback"]["auditors"] == ["private.a1"]

    h.complete_labeling(rework2, ok)
    audit2 = h.handle(rework2)["next"]
    assert audit2 == "gtaudit-test-audit-r2-20261124t100000-ab12"
    h.complete_audit(audit2, lambda i, line: "approve")
    r = h.handle(audit2)
    assert r["action"] == "finished"

    s = h.summary()
    assert s["status"] == "completed"
    assert (s["objects-in"], s["approved"], s["needs-attention"], s["failed"]) == (3, 2, 0, 1)
    assert s["balanced"] is True
    assert [rd["round"] for rd in s["rounds"]] == [1, 2]
    assert s["rounds"][0]["audit"]["rejected"] == 1
    accepted = h.lines(mf.cumulative(h.bucket, started.run_id, "accepted"))
    assert sorted(a["object-id"] for a in accepted) == sorted(x["object-id"] for x in audit_lines)
    assert {a["gtaudit"]["outcome"] for a in accepted} == {"approved"}
    assert [m["subject"] for m in h.sns.messages] == ["gtaudit: run 20261124t100000-ab12 completed"]
    assert h.sns.messages[0]["balanced"] is True


def test_duplicate_events_create_one_job_and_no_duplicate_lines(h: Harness) -> None:
    label1 = h.start(2).job_name
    h.complete_labeling(label1, ok)
    first = h.handle(label1)
    again = h.handle(label1)
    assert again["action"] == "duplicate"
    audit1 = first["next"]
    h.complete_audit(audit1, lambda i, line: "approve")
    h.handle(audit1)
    assert h.handle(audit1)["action"] == "duplicate"
    assert h.handle(label1)["action"] == "duplicate"  # an old event replayed after the next step
    assert h.sm.created == [label1, audit1]
    accepted = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "accepted"))
    assert len(accepted) == 2
    assert len(h.sns.messages) == 1  # the summary is published once


def test_event_ahead_of_the_job_state_is_ignored_then_processed(h: Harness) -> None:
    label1 = h.start(1).job_name
    r = h.handle(label1)  # GT still says InProgress: an early or stale event
    assert r["action"] == "ignored"
    assert "InProgress" in r["why"]
    h.complete_labeling(label1, ok)
    assert h.handle(label1, status="Stopped")["action"] == "audit-created"  # Describe, not the event, decides


def test_events_of_other_stacks_and_unknown_jobs_are_ignored(h: Harness) -> None:
    assert h.handle("someone-else-labeling-r1-20261124t100000-ab12")["action"] == "ignored"
    assert h.handle("gtaudit-test-labeling-r1-20261124t100000-ffff")["why"] == "unknown job"
    assert h.handle("gtaudit-test-adhoc")["action"] == "ignored"


def test_crash_mid_step_is_finished_by_the_retry(h: Harness) -> None:
    label1 = h.start(2).job_name
    h.complete_labeling(label1, ok)
    h.sm.fail_next_create = True
    with pytest.raises(RuntimeError, match="crash"):
        h.handle(label1, owner="req-1")
    # A second delivery while the crashed invocation's lease is live backs off...
    assert h.handle(label1, owner="req-2")["action"] == "busy"
    # ...the asynchronous retry (same request ID) finishes the step.
    r = h.handle(label1, owner="req-1")
    assert r["action"] == "audit-created"
    assert h.sm.created == [label1, r["next"]]


def test_crash_after_create_is_finished_by_another_invocation_once_the_lease_expires(h: Harness) -> None:
    label1 = h.start(1).job_name
    h.complete_labeling(label1, ok)
    ctx = h.ctx()
    state = ctx.state
    assert state.acquire("20261124t100000-ab12", label1, "req-1")
    h.now += 10_000  # the crashed holder's lease has expired
    r = h.handle(label1, owner="req-3")
    assert r["action"] == "audit-created"
    assert len(h.sm.created) == 2


def test_create_that_already_happened_is_not_repeated(h: Harness) -> None:
    label1 = h.start(1).job_name
    h.complete_labeling(label1, ok)
    # The job was created but the invocation died before recording it: simulate by creating it now.
    audit_name = "gtaudit-test-audit-r1-20261124t100000-ab12"
    h.sm.jobs[audit_name] = {"LabelingJobStatus": "InProgress"}
    r = h.handle(label1)
    assert r["next"] == audit_name
    assert h.sm.created == [label1]  # ResourceInUse was taken as "already created"


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_job_ends_the_run_with_its_objects_listed(h: Harness, status: str) -> None:
    label1 = h.start(3).job_name
    h.sm.jobs[label1]["LabelingJobStatus"] = status
    if status == "Failed":
        h.sm.jobs[label1]["FailureReason"] = "ClientError: workteam not found"
    r = h.handle(label1, status=status)
    assert r["action"] == "failed"
    assert h.sm.created == [label1]
    failed = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "failed"))
    assert len(failed) == 3
    assert all(status in f["gtaudit"]["reason"] for f in failed)
    s = h.summary()
    assert s["status"] == status.lower()
    assert s["failed"] == 3 and s["balanced"] is True
    subjects = [m["subject"] for m in h.sns.messages]
    assert subjects[0] == f"gtaudit: labeling job {status}"
    if status == "Failed":
        assert h.sns.messages[0]["reason"] == "ClientError: workteam not found"
    assert h.handle(label1, status=status)["action"] == "duplicate"
    assert len(h.sns.messages) == 2


def test_round_limit_sends_the_rest_to_needs_attention(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, max_rounds=2)
    label = h.start(2).job_name
    h.complete_labeling(label, ok)
    audit = h.handle(label)["next"]
    h.complete_audit(audit, lambda i, line: "reject")
    rework = h.handle(audit)["next"]
    h.complete_labeling(rework, ok)
    audit2 = h.handle(rework)["next"]
    h.complete_audit(audit2, lambda i, line: "reject" if i == 0 else "approve")
    assert h.handle(audit2)["action"] == "finished"
    attention = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "needs-attention"))
    assert len(attention) == 1
    assert attention[0]["gtaudit"]["reason"] == "rejected in round 2, the last of 2"
    assert attention[0]["gtaudit"]["feedback"]["reasons"] == ["loose-boundary"]
    s = h.summary()
    assert (s["approved"], s["needs-attention"], s["failed"], s["balanced"]) == (1, 1, 0, True)
    assert not any("rework-r3" in n for n in h.sm.created)


def test_objects_that_failed_labeling_are_listed_with_reasons(h: Harness) -> None:
    label = h.start(5).job_name

    def outcome(i: int, line: dict[str, Any]) -> Any:
        return {0: "expired", 1: "skipped", 2: "no usable annotation: w1: not a PNG"}.get(i) or ok(i, line)

    h.complete_labeling(label, outcome, drop=4)  # object 4 is missing from the output manifest altogether
    r = h.handle(label)
    assert r["consolidated"] == 1 and r["failed"] == 4
    failed = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "failed"))
    reasons = sorted(f["gtaudit"]["reason"] for f in failed)
    assert reasons == sorted(
        [
            "ClientError: expired",
            "no label: skipped by labeling_pre or not worked",
            "no usable annotation: w1: not a PNG",
            "missing from the job's output manifest",
        ]
    )
    assert all(f["source-ref"].startswith(f"s3://{h.bucket}/images/") for f in failed)
    audit = r["next"]
    h.complete_audit(audit, lambda i, line: "failed")
    h.handle(audit)
    s = h.summary()
    assert (s["objects-in"], s["approved"], s["failed"], s["balanced"]) == (5, 0, 5, True)


def test_missing_overlays_are_rendered_before_the_audit(h: Harness) -> None:
    label = h.start(2).job_name
    h.complete_labeling(label, ok, overlays=False)
    r = h.handle(label)
    assert len(h.rendered) == 2
    assert r["overlays-missing"] == 2
    for line in h.input_lines(r["next"]):
        b, k = line["source-ref"][5:].split("/", 1)
        h.s3.head_object(Bucket=b, Key=k)


def test_an_overlay_that_can_never_render_fails_its_object_and_the_rest_go_to_audit(h: Harness) -> None:
    started = h.start(3)
    label = started.job_name
    h.complete_labeling(label, ok, overlays=False)
    fake_render = h.render

    def render(masks: list[str]) -> None:  # as the overlay renderer does when object 1's original is gone
        for m in masks:
            if m.rsplit("/", 1)[1].startswith("img1_"):
                root = layout.job_root(f"s3://{h.bucket}/jobs", label)
                marker = layout.overlay_failure(root, "img1")
                reason = {"mask": m, "reason": f"source image not found: s3://{h.bucket}/images/img1.jpg"}
                h.s3.put_object(Bucket=marker.bucket, Key=marker.key, Body=json.dumps(reason).encode())
            else:
                fake_render([m])

    h.render = render  # type: ignore[method-assign]
    r = h.handle(label)
    assert (r["action"], r["audit"], r["failed"], r["overlays-failed"]) == ("audit-created", 2, 1, 1)
    assert len(h.input_lines(r["next"])) == 2
    (failed,) = h.lines(mf.part(h.bucket, started.run_id, "failed", label))
    assert failed["gtaudit"]["reason"].startswith("overlay cannot be rendered: source image not found: s3://")
    assert failed["gtaudit"]["mask"].endswith("/img1_2026-11-24T100000.png")
    assert "img1" not in json.dumps(h.input_lines(r["next"]))


def test_an_object_whose_original_is_gone_fails_with_that_cause_not_the_expiry(h: Harness) -> None:
    started = h.start(2)
    h.s3.delete_object(Bucket=h.bucket, Key="images/img1.jpg")  # deleted before anyone could paint it
    h.complete_labeling(started.job_name, lambda i, line: "expired" if i == 1 else ok(i, line))
    r = h.handle(started.job_name)
    assert (r["audit"], r["failed"]) == (1, 1)
    (failed,) = h.lines(mf.part(h.bucket, started.run_id, "failed", started.job_name))
    assert failed["gtaudit"]["reason"] == (
        f"source image not found: s3://{h.bucket}/images/img1.jpg (ClientError: expired)"
    )


class InProcessLabelingPost:
    """The Lambda API's RequestResponse invoke of labeling_post, run in this process on moto."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.events = s3, []

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:
        event = json.loads(Payload)
        self.events.append(event)
        result = consolidate_batch(parse_event(PostAnnotationEvent, event), self.s3).response
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def test_a_failed_consolidation_is_redone_from_the_worker_responses(h: Harness) -> None:
    started = h.start(2)
    label = started.job_name
    h.complete_labeling(label, lambda i, line: "expired" if i == 1 else ok(i, line))
    # Ground Truth gave up on object 1 (its consolidation call failed), but two workers had answered.
    png = io.BytesIO()
    Image.new("RGBA", (4, 3), (0x2C, 0xA0, 0x2C, 255)).save(png, "PNG")
    answer = {
        "crowd-semantic-segmentation": {
            "inputImageProperties": {"width": 4, "height": 3},
            "labelMappings": {"person": {"color": "#2ca02c"}},
            "labeledImage": {"pngImageData": base64.b64encode(png.getvalue()).decode()},
        }
    }
    root = layout.job_root(f"s3://{h.bucket}/jobs", label)
    for n, worker in enumerate(("private.w1", "private.w2")):
        uri = layout.worker_response(root, 1, 1, f"2026-11-24_10:0{n}:00")
        doc = {"answers": [{"workerId": worker, "answerContent": answer}]}
        h.s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=json.dumps(doc).encode())
    h.lambda_client = InProcessLabelingPost(h.s3)  # type: ignore[attr-defined]
    r = h.handle(label)
    assert (r["redone"], r["audit"], r["failed"]) == (1, 2, 0)
    (event,) = h.lambda_client.events  # type: ignore[attr-defined]
    assert event["payload"]["s3Uri"].endswith("/consolidation-request/iteration-1/redo.json")
    redone = [x for x in h.input_lines(r["next"]) if x["gtaudit"]["mask"].endswith("/img1_redo.png")]
    assert len(redone) == 1 and redone[0]["gtaudit"]["labelers"] == ["private.w1", "private.w2"]


def test_sample_policy_audits_low_agreement_and_accepts_the_rest_as_not_audited(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, audit_policy="sample", sample_rate=0.0, agreement_threshold=0.8)
    label = h.start(4).job_name
    h.complete_labeling(label, lambda i, line: (["private.w1"], 0.5 if i < 2 else 0.9))
    r = h.handle(label)
    assert (r["audit"], r["low-agreement"], r["not-audited"]) == (2, 2, 2)
    accepted = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "accepted"))
    assert [a["gtaudit"]["outcome"] for a in accepted] == ["not-audited", "not-audited"]
    h.complete_audit(r["next"], lambda i, line: "approve")
    h.handle(r["next"])
    s = h.summary()
    assert (s["approved"], s["not-audited"], s["approved-after-audit"], s["balanced"]) == (4, 2, 2, True)


def test_nothing_to_audit_finishes_the_run(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, audit_policy="sample", sample_rate=0.0)
    label = h.start(2).job_name
    h.complete_labeling(label, ok)
    assert h.handle(label)["action"] == "finished"
    assert h.summary()["not-audited"] == 2


def test_long_prefix_and_round_9_names_fit(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, prefix="a" * 23 + "z", max_rounds=9)
    started = h.start(1)
    from gtaudit.pipeline.jobs import build_request

    req = build_request(
        h.config.with_(labeling_template="s3://b/t/l.html", audit_template="s3://b/t/a.html"),
        kind="rework",
        round_no=9,
        run_id=started.run_id,
        manifest="s3://b/m",
        output_path="s3://b/o",
    )
    assert len(req["LabelingJobName"]) <= 63
    assert req["LabelingJobName"].startswith(h.config.prefix + "-")
    assert req["LabelAttributeName"] == "label-r9"
    validate_parameters(req, h.sm._shape)


def test_a_corrupt_output_line_is_listed_once_and_the_run_stays_balanced(h: Harness) -> None:
    label = h.start(3).job_name
    h.complete_labeling(label, ok)
    job = h.sm.jobs[label]
    uri = layout.output_manifest(layout.job_root(job["OutputConfig"]["S3OutputPath"], label))
    body = h.s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read().decode().splitlines()
    body[1] = "{not json"
    h.s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=("\n".join(body) + "\n").encode())
    r = h.handle(label)
    assert (r["lines"], r["failed"], r["audit"]) == (3, 1, 2)
    h.complete_audit(r["next"], lambda i, line: "approve")
    h.handle(r["next"])
    s = h.summary()
    assert (s["objects-in"], s["approved"], s["failed"], s["balanced"]) == (3, 2, 1, True)


def test_a_refused_next_job_ends_the_run_as_failed_with_its_objects_listed(h: Harness) -> None:
    label = h.start(2).job_name
    h.complete_labeling(label, ok)
    h.sm.refuse = "Workteam arn:...:workteam/private-crowd/team does not exist"
    r = h.handle(label)
    assert r["action"] == "failed" and r["next"] == "gtaudit-test-audit-r1-20261124t100000-ab12"
    failed = h.lines(mf.cumulative(h.bucket, "20261124t100000-ab12", "failed"))
    assert len(failed) == 2 and all("does not exist" in f["gtaudit"]["reason"] for f in failed)
    s = h.summary()
    assert (s["status"], s["failed"], s["balanced"]) == ("failed", 2, True)
    assert [m["subject"] for m in h.sns.messages] == [
        "gtaudit: audit job Failed",
        "gtaudit: run 20261124t100000-ab12 failed",
    ]
    assert h.handle(label)["action"] == "duplicate"


def test_a_labeler_rejected_in_round_1_is_audited_on_everything_in_round_2(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, audit_policy="sample", sample_rate=0.0, agreement_threshold=0.8)
    label = h.start(4).job_name
    # objects 0-1 by "bad" with low agreement (audited, then rejected); 2-3 by "good" (not audited)
    h.complete_labeling(label, lambda i, line: (["bad"], 0.5) if i < 2 else (["good"], 0.9))
    r = h.handle(label)
    assert (r["audit"], r["not-audited"]) == (2, 2)
    h.complete_audit(r["next"], lambda i, line: "reject")
    rework = h.handle(r["next"])["next"]
    # round 2: high agreement, so only the labeler's history can send the objects to the audit
    h.complete_labeling(rework, lambda i, line: (["bad"], 0.99))
    r2 = h.handle(rework)
    assert (r2["audit"], r2["not-audited"], r2["low-agreement"]) == (2, 0, 0)
    audits = sorted((j for j in h.ctx().state.jobs("20261124t100000-ab12") if j.kind == "audit"), key=lambda j: j.round)
    assert [j.labeler_counts for j in audits] == [{"bad": {"audited": 2, "rejected": 2}}, {}]  # r2 not audited yet
