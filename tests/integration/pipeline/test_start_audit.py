"""An audit-only run on moto from a Ground Truth output manifest in S3, through rework, to its summary.

The delivery lives in another bucket, as a customer's would: photos, the built-in type's masks in
its own colours and class order, and ``manifests/output/output.manifest`` with ``s3://`` URIs. The
start imports what it can (copying originals into the data bucket, one photo already there stays
in place), renders real overlays, refuses the rest each with its reason, and starts the round-1
audit; then the orchestrator's own steps carry the run: a rejected object is reworked from the
imported mask (``initial-value``), and the summary counts every object in.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from typing import Any

import boto3
import numpy as np
import pytest
from gtaudit import layout
from gtaudit.labeling.pre import PreConfig, labeling_task_input
from gtaudit.models import parse_event
from gtaudit.models.jobs import JobStateChangeEvent
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.context import Clients, Context
from gtaudit.pipeline.orchestrator import handle_job_event
from gtaudit.pipeline.overlays import inline_renderer
from gtaudit.pipeline.start_audit import AuditRunStarted, import_name, run_label_set, start_audit_run
from gtaudit.pipeline.state import PipelineState
from gtaudit.s3uri import parse_s3_uri
from gtaudit_local.imports import read_source
from PIL import Image
from pipeline_fakes import ACCOUNT, REGION, FakeSageMaker, FakeSNS, event, pipeline_table

RUN = "20261124t100000-ab12"
DELIVERY = "delivery-photos"
JOB_MAP = {  # the delivering job's classes: another order and other colours than the run's
    "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.9},
    "1": {"class-name": "animal", "hex-color": "#e6194b", "confidence": 0.9},
    "2": {"class-name": "person", "hex-color": "#3cb44b", "confidence": 0.9},
}
W, H = 40, 30


def lam(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.new("RGB", size, (120, 80, 40)).save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def job_mask(size: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    """A mask in the job's palette (person left, animal bottom right) and the same in the run's classes."""
    w, h = size
    job = np.zeros((h, w), dtype=np.uint8)
    job[:, : w // 3] = 2
    job[h // 2 :, w - w // 4 :] = 1
    im = Image.fromarray(job, "P")
    im.putpalette([255, 255, 255, 0xE6, 0x19, 0x4B, 0x3C, 0xB4, 0x4B])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    run = np.choose(job, [0, 2, 1]).astype(np.uint8)  # run: person 1, animal 2
    return buf.getvalue(), run


class Pipeline:
    """moto's S3 and DynamoDB, a fake Ground Truth, and the orchestrator's context with real overlays."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.sm, self.sns = FakeSageMaker(), FakeSNS()
        self.table = pipeline_table(boto3.resource("dynamodb", region_name=REGION))
        self.config = PipelineConfig(
            bucket=bucket,
            table="pipeline",
            prefix="gtaudit-test",
            workteam_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/team",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/gt",
            labeling_pre_arn=lam("pre"),
            labeling_post_arn=lam("post"),
            audit_pre_arn=lam("apre"),
            audit_post_arn=lam("apost"),
            max_rounds=2,
        )

    def start(self, source: str, run_id: str = RUN) -> AuditRunStarted:
        _, objects = read_source(source, labels=run_label_set(self.config, None), s3=self.s3)
        return start_audit_run(
            s3=self.s3,
            sagemaker=self.sm,
            table=self.table,
            config=self.config,
            objects=objects,
            source=source,
            run_id=run_id,
        )

    def handle(self, name: str) -> dict[str, Any]:
        ctx = Context(
            self.config,
            Clients(self.s3, self.sm, self.table, self.sns),
            PipelineState(self.table),
            render_inline=inline_renderer(self.s3),
        )
        return handle_job_event(ctx, parse_event(JobStateChangeEvent, event(name))).as_dict()

    def lines(self, uri: str) -> list[dict[str, Any]]:
        u = parse_s3_uri(uri)
        body = self.s3.get_object(Bucket=u.bucket, Key=u.key)["Body"].read().decode()
        return [json.loads(x) for x in body.splitlines() if x.strip()]

    def input_lines(self, job: str) -> list[dict[str, Any]]:
        return self.lines(self.sm.jobs[job]["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])

    def complete(self, job: str, lines: list[dict[str, Any]]) -> None:
        req = self.sm.jobs[job]
        out = layout.output_manifest(layout.job_root(req["OutputConfig"]["S3OutputPath"], job))
        body = "".join(json.dumps(x) + "\n" for x in lines)
        self.s3.put_object(Bucket=out.bucket, Key=out.key, Body=body.encode())
        req["LabelingJobStatus"] = "Completed"

    def audit(self, job: str, verdicts: dict[str, str]) -> None:
        attr = self.sm.jobs[job]["LabelAttributeName"]
        out = []
        for line in self.input_lines(job):
            v = verdicts[line["object-id"]]
            label = {"status": "audited", "verdict": v, "reasons": ["missing-object"] if v == "reject" else [],
                     "comment": "", "notes": [], "auditors": ["private.a1"], "excluded": []}  # fmt: skip
            out.append({**line, attr: label, f"{attr}-metadata": {"type": "groundtruth/custom", "job-name": job}})
        self.complete(job, out)


@pytest.fixture
def delivery(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, np.ndarray]]:
    """The Ground Truth job's output in the delivery bucket; returns the manifest URI and the expected classes."""
    monkeypatch.setenv("ALLOWED_BUCKETS", bucket)  # the orchestrator's inline renderer, as the template sets it
    s3.create_bucket(Bucket=DELIVERY)
    root = "jobs/delivery-job/annotations/consolidated-annotation/output"
    expected: dict[str, np.ndarray] = {}
    lines: list[dict[str, Any]] = []
    meta = {"internal-color-map": JOB_MAP, "type": "groundtruth/semantic-segmentation", "job-name": "labeling-job/dj"}
    specs = [  # (photo bucket, stem, stored size, EXIF orientation, mask size, photo present)
        (DELIVERY, "a", (W, H), 1, (W, H), True),
        (bucket, "b", (W, H), 1, (W, H), True),  # already in the data bucket: stays in place
        (DELIVERY, "side", (H, W), 6, (H, W), True),  # displayed W x H, mask drawn on the stored pixels
        (DELIVERY, "small", (W, H), 1, (W // 2, H // 2), True),
        (DELIVERY, "gone", (W, H), 1, (W, H), False),
    ]
    for i, (where, stem, stored, orientation, mask_size, present) in enumerate(specs):
        photo = f"s3://{where}/photos/{stem}.jpg"
        if present:
            s3.put_object(Bucket=where, Key=f"photos/{stem}.jpg", Body=jpeg(stored, orientation))
        png, expected[stem] = job_mask(mask_size)
        s3.put_object(Bucket=DELIVERY, Key=f"{root}/{i}_2024-05-01T12:00:00.png", Body=png)
        lines.append(
            {
                "source-ref": photo,
                "dj-ref": f"s3://{DELIVERY}/{root}/{i}_2024-05-01T12:00:00.png",
                "dj-ref-metadata": meta,
            }
        )
    gave_up = {"job-name": "labeling-job/dj", "failure-reason": "ClientError: the task expired", "retry-count": 1}
    lines.append({"source-ref": f"s3://{DELIVERY}/photos/expired.jpg", "dj-ref-metadata": gave_up})
    key = "jobs/delivery-job/manifests/output/output.manifest"
    s3.put_object(Bucket=DELIVERY, Key=key, Body="".join(json.dumps(x) + "\n" for x in lines).encode())
    return f"s3://{DELIVERY}/{key}", expected


def test_an_audit_only_run_from_a_ground_truth_manifest_is_carried_to_its_summary(
    s3: Any, bucket: str, delivery: tuple[str, dict[str, np.ndarray]]
) -> None:
    manifest, expected = delivery
    p = Pipeline(s3, bucket)
    started = p.start(manifest)

    # Refused, each with its reason; the others went on.
    reasons = {r.name: r.reason for r in started.refused}
    assert (started.imported, started.objects) == (2, 6)
    assert reasons["side"].startswith(f"orientation: the mask is {H}x{W}, the image's stored size")
    assert reasons["small"] == f"size: the mask is {W // 2}x{H // 2}, the image is displayed as {W}x{H}"
    assert reasons["gone"].startswith(f"image not found or not readable (NoSuchKey): s3://{DELIVERY}/photos/gone.jpg")
    assert "no mask" in reasons["expired"] and "the task expired" in reasons["expired"]
    failed = p.lines(str(mf.part(bucket, RUN, "failed", import_name(p.config, RUN))))
    assert {f["object-id"]: f["gtaudit"]["reason"] for f in failed} == reasons
    assert {f["gtaudit"]["stage"] for f in failed} == {"import"}

    # The round-1 audit, in labeling_post's form: masks in the run's colours, with its metadata.
    job = started.job_name
    assert job == f"gtaudit-test-audit-r1-{RUN}" and p.sm.created == [job]
    assert p.sm.jobs[job]["LabelAttributeName"] == "audit-r1"
    lines = {x["object-id"]: x for x in p.input_lines(job)}
    assert sorted(lines) == ["a", "b"]
    run_map = run_label_set(p.config, None).color_map()
    originals = {"a": f"s3://{bucket}/inputs/{RUN}/images/a.jpg", "b": f"s3://{bucket}/photos/b.jpg"}
    for oid, line in lines.items():
        info = line["gtaudit"]
        assert (info["stage"], info["round"], info["original"]) == ("audit", 1, originals[oid])
        assert (info["labelers"], info["agreement"], info["labeling-job"]) == (
            ["labeling-job/dj"],
            None,
            import_name(p.config, RUN),
        )
        assert info["color-map"] == run_map and line["source-ref"] == info["overlay"]
        mask = parse_s3_uri(info["mask"])
        assert mask.key.startswith(
            f"jobs/{import_name(p.config, RUN)}/annotations/consolidated-annotation/output/{oid}_"
        )
        got = s3.get_object(Bucket=mask.bucket, Key=mask.key)
        assert got["Metadata"]["source-ref"] == urllib.parse.quote(originals[oid], safe=":/")
        assert got["Metadata"]["dataset-object-id"] == oid
        with Image.open(io.BytesIO(got["Body"].read())) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im), expected[oid])
            palette = im.getpalette() or []
            assert ["#" + bytes(palette[3 * i : 3 * i + 3]).hex() for i in range(3)] == [
                run_map[str(i)]["hex-color"] for i in range(3)
            ]
        overlay = parse_s3_uri(info["overlay"])
        with Image.open(io.BytesIO(s3.get_object(Bucket=overlay.bucket, Key=overlay.key)["Body"].read())) as im:
            assert im.format == "JPEG"  # rendered, not a placeholder
    run = PipelineState(p.table).get_run(RUN) or {}
    assert (run["objects_in"], run["import_refused"], run["source"]) == (6, 4, manifest)

    # Rejected -> rework from the imported mask; the labeling task's initial-value is that mask.
    p.audit(job, {"a": "reject", "b": "approve"})
    r = p.handle(job)
    assert (r["action"], r["approved"], r["rework"]) == ("rework-created", 1, 1)
    (rework,) = p.input_lines(r["next"])
    assert rework["object-id"] == "a" and rework["source-ref"] == originals["a"]
    assert rework["gtaudit"]["previous-mask"] == lines["a"]["gtaudit"]["mask"]
    task = labeling_task_input(rework, PreConfig(run_label_set(p.config, None), "en", (bucket,)))
    assert task.initial_value is not None and task.initial_value.src == lines["a"]["gtaudit"]["mask"]

    # The rework labels it again (here: the same mask), the second audit approves, the run ends.
    rework_job = r["next"]
    attr = p.sm.jobs[rework_job]["LabelAttributeName"]
    old = parse_s3_uri(lines["a"]["gtaudit"]["mask"])
    new = layout.consolidated_mask(
        layout.job_root(f"s3://{bucket}/jobs", rework_job).join("annotations"), "a", "2026-11-25T100000"
    )
    s3.copy_object(Bucket=new.bucket, Key=new.key, CopySource={"Bucket": old.bucket, "Key": old.key})
    label = {"status": "consolidated", "mask-ref": str(new), "internal-color-map": run_map, "workers": ["private.w1"]}
    p.complete(rework_job, [{**rework, attr: label, f"{attr}-metadata": {"type": "groundtruth/custom"}}])
    audit2 = p.handle(rework_job)["next"]
    p.audit(audit2, {"a": "approve"})
    assert p.handle(audit2)["action"] == "finished"
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/summary.json")["Body"].read())
    assert (summary["objects-in"], summary["approved"], summary["needs-attention"], summary["failed"]) == (6, 2, 0, 4)
    assert summary["balanced"] is True and summary["import"]["refused"] == 4
    failed_all = p.lines(str(mf.cumulative(bucket, RUN, "failed")))
    assert sorted(f["object-id"] for f in failed_all) == sorted(reasons)
    accepted = p.lines(str(mf.cumulative(bucket, RUN, "accepted")))
    assert sorted(a["object-id"] for a in accepted) == ["a", "b"]


def test_a_retried_start_with_the_same_run_id_creates_nothing_twice(
    s3: Any, bucket: str, delivery: tuple[str, dict[str, np.ndarray]]
) -> None:
    manifest, _ = delivery
    p = Pipeline(s3, bucket)
    first = p.start(manifest)
    again = p.start(manifest)
    assert again.job_name == first.job_name and p.sm.created == [first.job_name]
    assert len(p.input_lines(first.job_name or "")) == 2


def test_when_nothing_can_be_imported_no_run_is_started(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.create_bucket(Bucket=DELIVERY)
    line = {"source-ref": f"s3://{DELIVERY}/photos/x.jpg", "dj-ref-metadata": {"failure-reason": "expired"}}
    s3.put_object(Bucket=DELIVERY, Key="out.manifest", Body=json.dumps(line).encode())
    p = Pipeline(s3, bucket)
    started = p.start(f"s3://{DELIVERY}/out.manifest")
    assert started.job_name is None and started.imported == 0 and [r.name for r in started.refused] == ["x"]
    assert p.sm.created == [] and PipelineState(p.table).get_run(RUN) is None
