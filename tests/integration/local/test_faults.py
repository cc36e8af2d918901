"""Fault drills on a reduced demo: one fault at a time, and the run still accounts for every object.

Each drill runs the real chain (template wiring, Ground Truth emulator, scripted workers) on three
sample photos with one fault injected, and checks what the issue asks of the product: every object
the fault did not touch is approved; the touched one is retried to success or failed with a reason
that names the cause; the run says whether it finished; nothing is left running.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
from gtaudit.s3uri import parse_s3_uri
from gtaudit_local.demo import run_demo
from gtaudit_local.workers.base import Answer, Task
from support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault-drills")]
PHOTOS = ("astronaut.jpg", "camera.jpg", "coffee.jpg")


def images(tmp: Path, *, truncate: str | None = None) -> Path:
    folder = tmp / "images"
    folder.mkdir()
    for name in PHOTOS:
        data = (ROOT / "samples" / "images" / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) * 2 // 3] if name == truncate else data)
    return folder


def children() -> set[int]:
    """This process's Lambda worker processes (a browser test on the same xdist worker leaves a
    Chromium whose helper processes come and go on their own)."""
    found = set()
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any("_lambda_worker" in part for part in p.cmdline()):
                found.add(p.pid)
    return found


def drill(tmp_path: Path, **kwargs: object) -> dict[str, object]:
    before = children()
    result = run_demo(tmp_path / "out", log=lambda _line: None, **kwargs)  # type: ignore[arg-type]
    assert children() <= before, "a process of the run outlived it"
    counts = result.summary["counts"]
    assert counts["adds-up"] and counts["objects-in"] == len(PHOTOS)
    return result.summary


@pytest.mark.parametrize("function", ["LabelingPostFunction", "OrchestratorFunction"])
def test_a_lambda_whose_process_dies_once_is_retried_and_no_answer_is_lost(tmp_path: Path, function: str) -> None:
    summary = drill(tmp_path, images=images(tmp_path), crashes={function: 1})
    assert summary["counts"]["approved"] == len(PHOTOS), summary["objects"]
    assert summary["finished"] is True
    crashed = [d for d in summary["deliveries"]["failed"] if not d["gave-up"]]
    if function == "OrchestratorFunction":  # EventBridge's target: Lambda's async retry took it over
        assert crashed and all(d["function"].endswith(function) for d in crashed)
    assert (tmp_path / "out" / "_runtime" / "faults" / f"{function}.crashes").read_bytes() == b"x"  # it did die


def test_a_truncated_photo_fails_alone_with_its_cause_and_the_rest_are_audited(tmp_path: Path) -> None:
    summary = drill(tmp_path, images=images(tmp_path, truncate="camera.jpg"))
    states = {oid.split("-")[0]: s for oid, s in summary["objects"].items()}  # type: ignore[union-attr]
    assert states["camera"]["state"] == "failed"
    assert "image is truncated" in states["camera"]["reason"]
    assert [states[n]["state"] for n in ("astronaut", "coffee")] == ["approved", "approved"]
    assert summary["finished"] is True


def test_a_consolidation_ground_truth_gives_up_on_is_redone_from_the_answers(tmp_path: Path) -> None:
    # labeling_post dies on all three of the emulator's tries, so Ground Truth lists every object as
    # failed; the orchestrator redoes the consolidation from the worker-response files (a 4th call).
    summary = drill(tmp_path, images=images(tmp_path), crashes={"LabelingPostFunction": 3})
    assert summary["counts"]["approved"] == len(PHOTOS), summary["objects"]
    assert summary["finished"] is True
    labeling = summary["pipeline-summary"]["rounds"][0]["labeling"]  # type: ignore[index]
    assert labeling["redone"] == len(PHOTOS)


class LosesAnOriginal:
    """A labeler at whose task one photo's original disappears from the bucket: before anyone could
    paint it, or after both labelers have answered (so consolidation succeeds and the overlay cannot)."""

    answered: ClassVar[dict[str, int]] = {}

    def __init__(self, inner: Any, stem: str, when: str) -> None:
        self.inner, self.stem, self.when = inner, stem, when
        self.worker_id, self.sub = inner.worker_id, inner.sub

    def work(self, task: Task, s3: Any) -> Answer:
        source = str(task.data_object.get("source-ref", ""))
        hit = task.kind == "labeling" and source.rsplit("/", 1)[-1].startswith(self.stem)
        if hit and self.when == "before":
            self._delete(s3, source)
        answer = self.inner.work(task, s3)
        if hit and self.when == "after" and answer.status == "submitted":
            LosesAnOriginal.answered[source] = LosesAnOriginal.answered.get(source, 0) + 1
            if LosesAnOriginal.answered[source] == 2:  # both labelers answered
                self._delete(s3, source)
        return answer

    @staticmethod
    def _delete(s3: Any, source: str) -> None:
        uri = parse_s3_uri(source)
        s3.delete_object(Bucket=uri.bucket, Key=uri.key)


@pytest.mark.parametrize(
    ("when", "cause"),
    [("before", "source image not found: s3://"), ("after", "overlay cannot be rendered: source image not found")],
)
def test_an_original_deleted_mid_run_fails_its_object_alone_with_that_cause(
    tmp_path: Path, when: str, cause: str
) -> None:
    LosesAnOriginal.answered.clear()
    summary = drill(tmp_path, images=images(tmp_path), wrap_labeler=lambda w: LosesAnOriginal(w, "camera", when))
    states = {oid.split("-")[0]: s for oid, s in summary["objects"].items()}  # type: ignore[union-attr]
    assert states["camera"]["state"] == "failed" and cause in states["camera"]["reason"], states["camera"]
    assert [states[n]["state"] for n in ("astronaut", "coffee")] == ["approved", "approved"]
    assert summary["finished"] is True
