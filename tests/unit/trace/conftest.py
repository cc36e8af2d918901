"""Trace items as the report's queries return them (decoded, projected), for the report and render tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gtaudit.trace.report import build_report


def _task(worker: str, job: str, obj: str, t: str, active: float | None, stage: str = "labeling", **kw: object) -> dict:
    return {"kind": "task", "worker_id": worker, "job": job, "object_id": obj, "time": t, "stage": stage,
            "round": kw.pop("round", 1), "active_seconds": active,
            "wall_seconds": None if active is None else active * 2, **kw}  # fmt: skip


def _verdict(labeler: str, obj: str, rnd: int, v: str, auditor: str = "aud") -> dict:
    return {"kind": "verdict", "labeler": labeler, "worker_id": auditor, "object_id": obj, "round": rnd,
            "verdict": v, "labeling_job": f"lab-r{rnd}", "time": "2026-11-24T12:00:00.000Z"}  # fmt: skip


@pytest.fixture(scope="session")
def task_row() -> Callable[..., dict[str, Any]]:
    """One task item: ``task_row(worker, job, object, time, active_seconds, stage="labeling", **more)``."""
    return _task


@pytest.fixture
def sample_report() -> dict[str, Any]:
    """Three workers over two days, two rounds, two auditors (one rejects what the other approved)."""
    items = [
        _task("w1", "lab-r1", "o1", "2026-11-23T09:00:00.000Z", 1800),
        _task("w1", "lab-r1", "o2", "2026-11-24T09:00:00.000Z", 1800),
        _task("w2", "lab-r1", "o1", "2026-11-24T09:30:00.000Z", 3600),
        _task("w2", "lab-r1", "o2", "2026-11-24T10:30:00.000Z", None),
        _task("aud", "aud-r1", "o1", "2026-11-24T12:00:00.000Z", 60, "audit", verdict="reject", labeling_job="lab-r1"),
        _task("aud", "aud-r1", "o2", "2026-11-24T12:01:00.000Z", 60, "audit", verdict="approve", labeling_job="lab-r1"),
        _task("w1", "lab-r2", "o1", "2026-11-24T13:00:00.000Z", 600, "rework", round=2),
        _verdict("w1", "o1", 1, "reject"),
        _verdict("w2", "o1", 1, "reject"),
        _verdict("w1", "o2", 1, "approve"),
        _verdict("w2", "o2", 1, "approve"),
        _verdict("w2", "o2", 1, "reject", auditor="aud2"),  # a second auditor rejects: the reject wins
        _verdict("w1", "o1", 2, "approve"),
        {
            "kind": "activity",
            "worker_id": "w2",
            "job": "lab-r1",
            "time": "2026-11-24T11:00:00.000Z",
            "wall_seconds": 900,
        },
        {"kind": "day", "pk": "CAL"},
    ]
    return build_report(items, generated_at="2026-11-25T00:00:00Z", table="t")


# Worker IDs named after their skill, so that a test reads as the ranking it checks.
CAREFUL, AVERAGE, SLOPPY, KEEN, LAX = "careful", "average", "sloppy", "keen", "lax"


def _score(worker: str, obj: str, classes: dict, confusion: list | None = None, **gold: object) -> dict:
    """A ``score`` item as the queries return it (``item_from_wire`` output, absent values left out)."""
    item = {"kind": "score", "time": "2026-11-24T11:00:00.000Z", "job": "lab-r1", "stage": "labeling", "round": 1,
            "object_id": obj, "worker_id": worker, "gold": bool(gold), "iou": 0.5, "class_iou": classes}  # fmt: skip
    if confusion:
        item["confusion"] = confusion
    return {**item, **gold}


def _seeded_audit(auditor: str, obj: str, verdict: str, seeded: str, outcome: str, *reasons: str) -> dict:
    return _task(auditor, "aud-r1", obj, "2026-11-24T12:30:00.000Z", 30, "audit", verdict=verdict,
                 reasons=list(reasons), seeded=seeded, seeded_outcome=outcome)  # fmt: skip


@pytest.fixture
def quality_items() -> list[dict[str, Any]]:
    """Three labelers of different skill on two objects and one gold object, two auditors on seeded objects.

    Consensus IoU (micro): careful (90+45+80+95)/(100+50+100+100) = 0.8857, average 0.75 on car, sloppy
    0.5; gold IoU on g1: careful 0.95, average 0.85, sloppy 0.6 (below 0.8: flagged). Auditors on the
    seeded g1/g2/g3 and the real o1: keen catches both defects and passes the clean truth; lax misses
    one, rejects the other for another reason and rejects the clean truth. They agree on 2 of 4 objects.
    """
    conf = [["car", "BACKGROUND", 8], ["person", "car", 3]]
    return [
        _task(CAREFUL, "lab-r1", "o1", "2026-11-24T09:00:00.000Z", 600),
        _task(CAREFUL, "lab-r1", "o2", "2026-11-24T09:10:00.000Z", 600),
        _task(CAREFUL, "lab-r1", "g1", "2026-11-24T09:20:00.000Z", 600),
        _task(AVERAGE, "lab-r1", "o1", "2026-11-24T09:00:00.000Z", 300),
        _task(AVERAGE, "lab-r1", "g1", "2026-11-24T09:05:00.000Z", 300),
        _task(SLOPPY, "lab-r1", "o1", "2026-11-24T09:00:00.000Z", 120),
        _task(SLOPPY, "lab-r1", "g1", "2026-11-24T09:02:00.000Z", 120),
        _score(CAREFUL, "o1", {"car": [90, 100], "person": [45, 50]}, conf),
        _score(CAREFUL, "o2", {"car": [80, 100]}),
        _score(CAREFUL, "g1", {"car": [95, 100]}, gold_iou=0.95, gold_class_iou={"car": [95, 100]}),
        _score(AVERAGE, "o1", {"car": [75, 100]}, [["car", "person", 20]]),
        _score(
            AVERAGE,
            "g1",
            {"car": [75, 100]},
            gold_iou=0.85,
            gold_class_iou={"car": [85, 100]},
            gold_confusion=[["car", "BACKGROUND", 15]],
        ),
        _score(SLOPPY, "o1", {"car": [50, 100]}),
        _score(SLOPPY, "g1", {"car": [50, 100]}, gold_iou=0.6, gold_class_iou={"car": [60, 100]}),
        _task(KEEN, "aud-r1", "o1", "2026-11-24T12:00:00.000Z", 60, "audit", verdict="approve", labeling_job="lab-r1"),
        _task(LAX, "aud-r1", "o1", "2026-11-24T12:00:00.000Z", 20, "audit", verdict="approve", labeling_job="lab-r1"),
        _seeded_audit(KEEN, "g1", "reject", "loose-boundary", "caught", "loose-boundary"),
        _seeded_audit(KEEN, "g2", "reject", "wrong-class", "caught", "wrong-class", "other"),
        _seeded_audit(KEEN, "g3", "approve", "none", "passed"),
        _seeded_audit(LAX, "g1", "approve", "loose-boundary", "missed"),
        _seeded_audit(LAX, "g2", "reject", "wrong-class", "caught-other-reason", "missing-object"),
        _seeded_audit(LAX, "g3", "reject", "none", "false-reject", "extra-region"),
    ]


@pytest.fixture
def quality_report(quality_items: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of ``quality_items`` at the default gold threshold."""
    return build_report(quality_items, generated_at="2026-11-25T00:00:00Z", table="t")
