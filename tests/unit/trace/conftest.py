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
