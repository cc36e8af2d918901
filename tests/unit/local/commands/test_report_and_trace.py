"""``gtaudit report --gold-threshold`` and ``gtaudit trace``: each worker's IoU, from score items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gtaudit.trace.report import build_report
from gtaudit_local.cli import main
from gtaudit_local.commands.trace import format_lineage

GOLD = "g1"


def _score(worker: str, iou: float, gold_iou: float) -> dict[str, Any]:
    return {"kind": "score", "time": "2026-11-24T11:00:00.000Z", "job": "lab-r1", "stage": "labeling",
            "round": 1, "object_id": GOLD, "worker_id": worker, "gold": True, "seeded": "wrong-class",
            "iou": iou, "class_iou": {"car": [round(iou * 100), 100]},
            "gold_iou": gold_iou, "gold_class_iou": {"car": [round(gold_iou * 100), 100]}}  # fmt: skip


ITEMS = [
    {"kind": "task", "worker_id": "w1", "job": "lab-r1", "object_id": GOLD, "time": "2026-11-24T09:00:00.000Z",
     "stage": "labeling", "round": 1, "active_seconds": 60, "submitted_at": "2026-11-24T09:00:00.000Z"},
    {"kind": "task", "worker_id": "aud", "job": "aud-r1", "object_id": GOLD, "time": "2026-11-24T12:00:00.000Z",
     "stage": "audit", "round": 1, "verdict": "reject", "reasons": ["wrong-class"], "seeded": "wrong-class",
     "seeded_outcome": "caught"},
    _score("w1", 0.9, 0.85),
    _score("w2", 0.7, 0.75),
]  # fmt: skip


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace commands read ``ITEMS`` instead of a table (``--table`` skips the stack lookup)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(
        "gtaudit.trace.make_report",
        lambda *a, gold_threshold=0.8, **kw: build_report(ITEMS, gold_threshold=gold_threshold),
    )
    monkeypatch.setattr("gtaudit.trace.lineage", lambda *a, **kw: list(ITEMS))


def test_gold_threshold_flags_in_the_output(table: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--table", "t", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gtaudit.report/2" and doc["gold_threshold"] == 0.8
    assert {r["worker_id"]: r["flagged"] for r in doc["workers"]} == {"w1": False, "w2": True, "aud": False}
    assert main(["report", "--table", "t", "--format", "json", "--gold-threshold", "0.9"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gold_threshold"] == 0.9 and doc["totals"]["flagged_labelers"] == 2
    assert main(["report", "--table", "t", "--gold-threshold", "0.5"]) == 0
    assert "FLAGGED" not in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "high"])
def test_gold_threshold_outside_0_1_is_refused(table: None, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "--table", "t", "--gold-threshold", bad])
    assert exc.value.code == 2 and "gold-threshold" in capsys.readouterr().err


def test_trace_shows_each_workers_iou(table: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", GOLD, "--table", "t"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"object {GOLD} (a gold object): 2 task(s)")
    assert "[seeded wrong-class: caught]" in text
    w2 = next(line for line in text.splitlines() if line.strip().startswith("w2 "))
    assert "consensus 0.700" in w2 and "gold 0.750" in w2 and "car 0.700/0.750" in w2
    assert main(["trace", GOLD, "--table", "t", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(s["worker_id"], s["consensus_iou"], s["gold_iou"]) for s in doc["scores"]] == [
        ("w1", 0.9, 0.85),
        ("w2", 0.7, 0.75),
    ]
    assert doc["scores"][0]["classes"] == {"car": {"consensus": 0.9, "gold": 0.85}}


def test_trace_of_an_object_with_scores_only() -> None:
    text = format_lineage(GOLD, [_score("w1", 0.9, 0.85)])
    assert "0 task(s)" in text and "consensus 0.900" in text
    assert format_lineage("x", []) == "no records for object x\n"
