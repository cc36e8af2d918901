"""The demo shows quality: the report ranks its scripted crew in the order of their configured skill,
and the gold objects that measure it stay out of the run and out of the workers' sight.

One scripted demo of the 12 sample images with the samples' gold (``samples/gold``): all 8 gold
objects mixed into the labeling, all 8 seeded in the first audit. Which gold objects a run takes and
where their lines go are drawn from the run ID, so the test fixes it; every answer is then fixed by
the seed. ``tests/unit/local/workers/test_crew.py`` checks the crew and the gold samples themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gtaudit.gold import GoldIndex
from gtaudit_local.cli import main
from gtaudit_local.demo import run_demo
from gtaudit_local.workers.base import Answer, Task
from gtaudit_local.workers.crew import default_crew
from support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-runtime-demo-quality")]

RUN = "20261129t120000-d15a"  # the run ID fixes the gold taken and where its lines go
BUCKET = "gtaudit-databucket"
SAMPLES = {p.stem for p in (ROOT / "samples" / "images").iterdir()}
# What a page, a task input or an answer must never hold: where the truths live, or words of them.
TELLTALE = re.compile(r"/gold/|gold|seeded|truth", re.IGNORECASE)


@dataclass
class Seen:
    """One task as a worker was handed it: the page it saw and the input the page was made from."""

    kind: str
    job: str
    index: str
    source: str  # the image a labeling task shows; the original an audit task judges
    html: str
    task_input: dict[str, Any]


class Watching:
    """A worker that keeps what each of its tasks showed (the page and the task input), then works it."""

    seen: list[Seen]

    def __init__(self, inner: Any) -> None:
        self.inner, self.worker_id, self.sub = inner, inner.worker_id, inner.sub

    def work(self, task: Task, s3: Any) -> Answer:
        ti = task.task_input
        source = str(ti.get("taskObject") or ti.get("original") or "")
        Watching.seen.append(Seen(task.kind, task.job_name, task.dataset_object_id, source, task.html, dict(ti)))
        answer: Answer = self.inner.work(task, s3)
        return answer


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("quality")
    out = tmp / "out"
    Watching.seen = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("gtaudit_local.project.new_run_id", lambda: RUN)
        result = run_demo(out, project=ROOT, log=lambda _line: None, wrap_labeler=Watching, wrap_auditor=Watching)
    assert main(["report", "--project", str(out), "--format", "json", "-o", str(tmp / "report.json")]) == 0
    data = out / "bucket" / BUCKET
    index = GoldIndex.model_validate_json((data / "runs" / RUN / "gold" / "index.json").read_text())
    return {
        "out": out,
        "tmp": tmp,
        "data": data,
        "summary": result.summary,
        "report": json.loads((tmp / "report.json").read_text()),
        "index": index,
        "seen": list(Watching.seen),
    }


def crew_names() -> dict[str, str]:
    labelers, auditors = default_crew(0)
    return {w.worker_id: w.profile.name for w in labelers} | {w.worker_id: w.skill.name for w in auditors}


def test_the_demo_still_approves_its_twelve_images_with_every_gold_object_taken(demo: dict[str, Any]) -> None:
    s = demo["summary"]
    assert s["run"] == RUN and s["finished"] is True, s.get("stuck")
    c = s["counts"]
    assert (c["objects-in"], c["approved"], c["needing-attention"], c["failed"]) == (12, 12, 0, 0)
    assert c["adds-up"] and c.get("pipeline-agrees") is True
    index: GoldIndex = demo["index"]
    assert len(index.entries) == 8 and all(e.role == "seeded" for e in index.entries)
    assert {e.defect for e in index.entries} == {"missing-object", "wrong-class", "loose-boundary", "extra-region",
                                                 "none"}  # fmt: skip


def test_the_report_ranks_labelers_and_auditors_in_the_order_of_their_skill(demo: dict[str, Any]) -> None:
    report = demo["report"]
    assert report["schema"] == "gtaudit.report/2"
    names = crew_names()
    rows = {names[w["worker_id"]]: w for w in report["workers"]}
    assert set(rows) == {"careful", "average", "sloppy", "keen", "lax"}
    for figure in ("gold_iou", "consensus_iou"):
        careful, average, sloppy = (rows[n][figure] for n in ("careful", "average", "sloppy"))
        assert careful > average > sloppy, (figure, careful, average, sloppy)
    for name in ("careful", "average", "sloppy"):
        assert rows[name]["gold_objects"] >= 1 and set(rows[name]["tasks_by_stage"]) <= {"labeling", "rework"}
    auditors = {names[a["worker_id"]]: a for a in report["auditors"]}
    keen, lax = auditors["keen"], auditors["lax"]
    assert keen["defects_shown"] >= 1 and lax["defects_shown"] >= 1
    assert keen["catch_rate"] > lax["catch_rate"], (keen, lax)
    for name in ("keen", "lax"):  # nobody audits their own labels: the auditors label nothing
        assert set(rows[name]["tasks_by_stage"]) == {"audit"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_no_gold_object_is_an_object_of_the_run(demo: dict[str, Any], tmp_path: Path) -> None:
    index: GoldIndex = demo["index"]
    gold_ids = {e.object_id for e in index.entries}
    gold_refs = {e.source_ref for e in index.entries}
    assert gold_ids.isdisjoint(SAMPLES)
    assert set(demo["summary"]["objects"]) == SAMPLES
    runs = demo["data"] / "runs" / RUN
    accepted = _lines(runs / "accepted.manifest")
    assert {line["object-id"] for line in accepted} == SAMPLES
    for name in ("accepted", "needs-attention", "failed"):
        path = runs / f"{name}.manifest"
        for line in _lines(path) if path.is_file() else []:
            assert line["object-id"] not in gold_ids and line["source-ref"] not in gold_refs, (name, line)
    exported = tmp_path / "coco"
    assert main(["export", str(demo["out"]), "--format", "coco", "--out", str(exported)]) == 0
    coco = json.loads((exported / "annotations.json").read_text())
    assert {Path(im["file_name"]).stem for im in coco["images"]} == SAMPLES


def _gold_tasks(demo: dict[str, Any]) -> tuple[list[Seen], list[Seen]]:
    """``(tasks of gold objects, tasks of the run's own objects)``, as the workers saw them."""
    index: GoldIndex = demo["index"]
    gold_images = {e.source_ref for e in index.entries}
    seen: list[Seen] = demo["seen"]
    gold = [t for t in seen if t.source in gold_images]
    return gold, [t for t in seen if t.source not in gold_images]


def test_a_gold_task_looks_like_any_other_and_shows_nothing_of_the_truth(demo: dict[str, Any]) -> None:
    gold, own = _gold_tasks(demo)
    assert {t.kind for t in gold} == {"labeling", "audit"}  # labeled, and seeded into the audit
    assert len([t for t in gold if t.kind == "audit"]) == len(demo["index"].entries)
    for kind in ("labeling", "audit"):
        shapes = {tuple(sorted(t.task_input)) for t in own if t.kind == kind}
        assert {tuple(sorted(t.task_input)) for t in gold if t.kind == kind} <= shapes, kind
    for t in gold:
        page, given = t.html, json.dumps(t.task_input)
        assert not TELLTALE.search(page) and not TELLTALE.search(given), (t.kind, t.source)
        if t.kind == "audit":  # the mask it judges is the job's consolidated mask, as for any object
            assert "/annotations/consolidated-annotation/output/" in t.task_input["mask"]


def test_the_worker_responses_of_a_gold_object_hold_only_the_workers_own_answers(demo: dict[str, Any]) -> None:
    index: GoldIndex = demo["index"]
    gold, own = _gold_tasks(demo)
    jobs = demo["data"] / "jobs"
    responses = 0
    for t in gold:
        files = list((jobs / t.job / "annotations" / "worker-response" / "iteration-1" / t.index).glob("*.json"))
        assert len(files) == 1, (t.job, t.index)
        text = files[0].read_text(encoding="utf-8")
        assert not TELLTALE.search(text) and not any(e.truth_ref in text for e in index.entries)
        own_keys = {
            tuple(sorted(a["answerContent"]))
            for o in own
            if o.kind == t.kind
            for f in (jobs / o.job / "annotations" / "worker-response" / "iteration-1" / o.index).glob("*.json")
            for a in json.loads(f.read_text())["answers"]
        }
        for answer in json.loads(text)["answers"]:
            assert tuple(sorted(answer["answerContent"])) in own_keys
            responses += 1
    assert responses >= 2 * len(index.entries)
