"""The demo's pure parts: the output folder's clean start and each object's final state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.demo import MARKER, DemoError, local_path, object_states, prepare_out
from gtaudit_local.groundtruth.record import LabelingJobRun


def job(name: str, attr: str, kind: str, rnd: int, created: float) -> LabelingJobRun:
    j = LabelingJobRun(request={"LabelingJobName": name, "LabelAttributeName": attr}, arn="arn", created=created)
    j.kind, j.round, j.output_manifest = kind, rnd, f"s3://b/{name}.manifest"
    return j


def line(oid: str, attr: str, content: Any = None, failure: str | None = None) -> str:
    data: dict[str, Any] = {"source-ref": f"s3://b/{oid}.jpg", "object-id": oid}
    meta: dict[str, Any] = {"type": "groundtruth/custom", "job-name": "labeling-job/x", "human-annotated": "yes"}
    if failure:
        meta.update({"failure-reason": failure, "retry-count": 1})
    else:
        data[attr] = content
    data[f"{attr}-metadata"] = meta
    return json.dumps(data)


def test_object_states_follow_the_last_job_of_each_object() -> None:
    files = {
        "s3://b/l1.manifest": [
            line("a", "label-r1", {"status": "consolidated"}),
            line("b", "label-r1", {"status": "consolidated"}),
            line("c", "label-r1", failure="ClientError: the task expired"),
            line("d", "label-r1", {"status": "failed", "failure-reason": "no usable annotation"}),
            line("e", "label-r1", {"status": "consolidated"}),
        ],
        "s3://b/a1.manifest": [
            line("a", "audit-r1", {"status": "audited", "verdict": "approve"}),
            line("b", "audit-r1", {"status": "audited", "verdict": "reject", "reasons": ["loose-boundary"]}),
        ],
        "s3://b/l2.manifest": [line("b", "label-r2", {"status": "consolidated"})],
        "s3://b/a2.manifest": [line("b", "audit-r2", {"status": "audited", "verdict": "approve"})],
    }
    jobs = [  # listed out of order: creation time decides
        job("a2", "audit-r2", "audit", 2, 4.0),
        job("l1", "label-r1", "labeling", 1, 1.0),
        job("a1", "audit-r1", "audit", 1, 2.0),
        job("l2", "label-r2", "rework", 2, 3.0),
    ]
    states = object_states(jobs, lambda uri: "\n".join(files[uri]).encode())
    assert {k: v["state"] for k, v in states.items()} == {
        "a": "approved",
        "b": "approved",  # rejected in round 1, approved in round 2
        "c": "failed",
        "d": "failed",
        "e": "stalled",  # labeled, never audited: stuck, not the round limit
    }
    assert states["c"]["reason"] == "ClientError: the task expired"
    assert states["d"]["reason"] == "no usable annotation"
    assert states["b"]["job"] == "a2" and states["b"]["round"] == 2


def test_a_rejection_in_the_last_audit_needs_attention() -> None:
    files = {"s3://b/a1.manifest": [line("x", "audit-r1", {"status": "audited", "verdict": "reject", "reasons": []})]}
    states = object_states([job("a1", "audit-r1", "audit", 1, 1.0)], lambda uri: "\n".join(files[uri]).encode())
    assert states["x"]["state"] == "needs-attention" and "rejected in audit round 1" in states["x"]["reason"]


def test_prepare_out_starts_clean_only_in_a_demo_folder(tmp_path: Path) -> None:
    assert "new or empty" in prepare_out(tmp_path / "new")
    demo = tmp_path / "demo"
    (demo / "jobs").mkdir(parents=True)
    (demo / "jobs" / "x.json").write_text("{}")
    (demo / MARKER).write_text(json.dumps({"run": "r1", "started": "2026-11-24T00:00:00"}))
    note = prepare_out(demo)
    assert "held the demo run r1" in note and "starting clean" in note
    assert list(demo.iterdir()) == []
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(DemoError):
        prepare_out(foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("key", ["../evil", "a/../../e", "a//b", "C:/x", "a\\..\\b", "x\x01y", "/abs", "./a"])
def test_the_bucket_mirror_never_writes_outside_its_folder(tmp_path: Path, key: str) -> None:
    assert local_path(tmp_path.resolve(), key) is None


def test_the_bucket_mirror_keeps_the_buckets_layout(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert local_path(root, "jobs/j/overlays/猫.jpg") == root / "jobs" / "j" / "overlays" / "猫.jpg"
