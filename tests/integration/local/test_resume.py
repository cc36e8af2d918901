"""A project survives kill -9: ``gtaudit demo --out DIR`` killed mid-labeling, mid-audit and mid-rework,
started again on the same folder each time, ends with every object accounted for and nothing done twice.

The kills land where the project folder shows a stage under way (its bucket is written as it goes),
not at fixed times, so the test holds on a loaded machine: wherever a kill lands, the invariants
must hold at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from gtaudit_local.cli import main
from support import ROOT

pytestmark = pytest.mark.xdist_group("local-runtime-demo")

IMAGES = ("coffee.jpg", "horse.png", "astronaut.jpg", "rocket.jpg", "chelsea.jpg", "camera.jpg")
BUCKET = "gtaudit-databucket"


def _responses(out: Path, kind: str) -> list[Path]:
    jobs = out / "bucket" / BUCKET / "jobs"
    return sorted(jobs.glob(f"*-{kind}-r*/annotations/worker-response/iteration-1/*/*.json")) if jobs.is_dir() else []


def _rework_started(out: Path) -> bool:
    return bool(_responses(out, "rework"))


KILL_POINTS: list[tuple[str, Callable[[Path], bool]]] = [
    ("mid-labeling", lambda out: len(_responses(out, "labeling")) >= 2),
    ("mid-audit", lambda out: len(_responses(out, "audit")) >= 1),
    ("mid-rework", _rework_started),
]


def _demo(out: Path, images: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    command = ["demo", "--out", str(out), "--images", str(images), "--timeout", "300"]
    return subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", *command],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_a_project_killed_at_several_points_resumes_and_nothing_happens_twice(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(ROOT / "samples" / "images" / name, images / name)
    out = tmp_path / "project"
    kills: list[str] = []
    for point, reached in KILL_POINTS:
        proc = _demo(out, images)
        deadline = time.monotonic() + 240
        while proc.poll() is None and not reached(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is not None:  # the run ended before this point (e.g. nothing was rejected)
            break
        proc.kill()
        proc.wait(timeout=30)
        kills.append(point)
    # The seed is fixed, so the sloppy labeler's work is rejected and a rework happens every time.
    assert kills == ["mid-labeling", "mid-audit", "mid-rework"], kills
    proc = _demo(out, images) if proc.returncode is not None and proc.returncode < 0 else proc
    try:
        output, _ = proc.communicate(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert "resuming it" in output

    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    assert summary["finished"] and summary["resumed"] and counts["adds-up"], counts
    assert counts["objects-in"] == len(IMAGES)
    assert counts["approved"] + counts["needing-attention"] + counts["failed"] == len(IMAGES)
    # One job per stage and round, whatever was interrupted.
    stages = Counter((j["kind"], j["round"]) for j in summary["jobs"])
    assert set(stages.values()) == {1}, stages
    assert all(j["status"] == "Completed" for j in summary["jobs"])
    # Every submitted answer is in Ground Truth's layout once: one response file per object and
    # job, each worker at most once in it, never more answers than the job asked for.
    bucket = out / "bucket" / BUCKET
    for job in summary["jobs"]:
        root = bucket / "jobs" / job["name"] / "annotations" / "worker-response" / "iteration-1"
        files = sorted(root.glob("*/*.json"))
        assert len({f.parent.name for f in files}) == len(files), f"two response files for one object in {job}"
        per_object = 1 if job["kind"] == "audit" else 3  # the demo's three labelers each (rework too), one auditor
        for f in files:
            workers = [a["workerId"] for a in json.loads(f.read_text())["answers"]]
            assert len(workers) == len(set(workers)) <= per_object, (job["name"], f.parent.name, workers)
    # Each round's consolidation ran on one request key (a resumed job re-sends the same batch).
    for job in summary["jobs"]:
        requests = bucket / "jobs" / job["name"] / "annotations/consolidated-annotation/consolidation-request"
        assert len(list(requests.glob("iteration-1/*.json"))) == 1, job["name"]
    project = json.loads((out / "project.json").read_text())
    assert project["finished"] is True and project["run"] == summary["run"]

    # The trace table was kept too: the report, read from the stopped project, counts each
    # submitted answer once, and an object's lineage is there.
    answers = sum(
        len(json.loads(f.read_text())["answers"])
        for job in summary["jobs"]
        for f in (bucket / "jobs" / job["name"] / "annotations" / "worker-response").glob("iteration-1/*/*.json")
    )
    assert main(["report", "--project", str(out), "--format", "json", "-o", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["tasks"] == answers
    assert main(["trace", "--project", str(out), "coffee"]) == 0
