"""The demo's pure parts: the output folder's clean start, each object's final state, the gold it takes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.demo import DemoError, default_gold, default_images, gold_source
from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.project import (
    OLD_MARKER,
    PROJECT_FILE,
    ProjectError,
    open_project,
    project_lock,
    read_settings,
    settings_for,
)
from gtaudit_local.summary import object_states
from support import ROOT


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


def _wanted(labels: str = '["cat"]') -> Any:
    return settings_for(labels=labels, workers="scripted", seed=0, images="/imgs")


def test_a_new_folder_starts_a_project_with_its_run_id_kept_before_anything_runs(tmp_path: Path) -> None:
    opened = open_project(tmp_path / "new", _wanted())
    assert not opened.resuming and "new or empty" in opened.note
    kept = read_settings(tmp_path / "new")
    assert kept == opened.settings and kept is not None and kept.run and not kept.finished


def test_an_interrupted_project_resumes_with_its_own_settings(tmp_path: Path) -> None:
    first = open_project(tmp_path, _wanted())
    again = open_project(tmp_path, settings_for(labels='["cat"]', workers="browser", seed=7, images="/other"))
    assert again.resuming and f"interrupted run {first.settings.run}" in again.note and "resuming" in again.note
    assert again.settings == first.settings  # what the project was started with, not this command line


def test_a_resume_with_another_label_set_is_refused_and_the_project_kept(tmp_path: Path) -> None:
    first = open_project(tmp_path, _wanted())
    with pytest.raises(ProjectError, match="label set is fixed"):
        open_project(tmp_path, _wanted('["dog"]'), labels_given=True)
    assert read_settings(tmp_path) == first.settings


def test_a_finished_project_or_fresh_starts_clean_and_says_so(tmp_path: Path) -> None:
    first = open_project(tmp_path, _wanted())
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "x").write_text("old")
    fresh = open_project(tmp_path, _wanted(), fresh=True)
    assert f"interrupted run {first.settings.run}" in fresh.note and "(--fresh)" in fresh.note
    assert not (tmp_path / "bucket").exists() and fresh.settings.run != first.settings.run
    fresh.save(replace(fresh.settings, finished=True))
    nxt = open_project(tmp_path, _wanted())
    assert not nxt.resuming and f"finished run {fresh.settings.run}" in nxt.note and "starting clean" in nxt.note


def test_an_earlier_demo_folder_starts_clean_and_a_foreign_one_is_left_alone(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "jobs").mkdir(parents=True)
    (demo / OLD_MARKER).write_text(json.dumps({"run": "r1"}))
    note = open_project(demo, _wanted()).note
    assert "an earlier demo" in note and sorted(p.name for p in demo.iterdir()) == [PROJECT_FILE]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="holds no gtaudit project"):
        open_project(foreign, _wanted())
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]


def test_a_finished_project_people_worked_is_kept_unless_fresh(tmp_path: Path) -> None:
    team = settings_for(labels='["cat"]', workers="team", seed=0, images="/imgs")
    first = open_project(tmp_path, team)
    first.save(replace(first.settings, finished=True))
    with pytest.raises(ProjectError, match="worked by people"):
        open_project(tmp_path, team)
    assert read_settings(tmp_path) == replace(first.settings, finished=True)
    assert "starting clean" in open_project(tmp_path, team, fresh=True).note


def test_one_process_holds_a_project_folder_at_a_time(tmp_path: Path) -> None:
    holder = project_lock(tmp_path / "p")
    holder.__enter__()
    try:
        with pytest.raises(ProjectError, match="in use by another gtaudit process"), project_lock(tmp_path / "p"):
            pass
    finally:
        holder.__exit__(None, None, None)
    with project_lock(tmp_path / "p"):  # released when the holder let go
        pass


def test_a_run_of_the_sample_images_by_the_scripted_crew_takes_the_sample_gold_and_no_other_does() -> None:
    def settings(**values: Any) -> Any:
        base = {"labels": '["cat"]', "workers": "scripted", "seed": 0, "images": str(default_images(ROOT))}
        return settings_for(**{**base, **values})

    samples = str(default_gold(ROOT))
    assert gold_source(ROOT, settings(), None) == samples
    assert gold_source(ROOT, settings(), None, with_gold=False) is None  # --no-gold
    assert gold_source(ROOT, settings(images="/my/photos"), None) is None  # the samples' gold goes with the samples
    assert gold_source(ROOT, settings(workers="browser"), None) is None  # people get gold when they ask for it
    assert gold_source(ROOT, settings(workers="team", images="/x"), "s3://b/gold/") == "s3://b/gold/"
    assert gold_source(ROOT, settings(source="delivery.json"), None) is None  # an audit-only run labels nothing
    with pytest.raises(DemoError, match="--gold scores the labelers of a labeling run"):
        gold_source(ROOT, settings(source="delivery.json"), samples)
