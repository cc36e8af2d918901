"""trace.report: the numbers per worker, job and day, and the document's schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gtaudit.trace.render import render
from gtaudit.trace.report import build_report
from hypothesis import given
from hypothesis import strategies as st


def test_report_numbers(sample_report: dict[str, Any]) -> None:
    r = sample_report
    w = {row["worker_id"]: row for row in r["workers"]}
    assert w["w1"]["tasks"] == 3 and w["w1"]["active_hours"] == pytest.approx(4200 / 3600, abs=1e-4)
    assert w["w1"]["objects_per_hour"] == pytest.approx(3 / (4200 / 3600), abs=0.01)
    assert (w["w1"]["labels_judged"], w["w1"]["labels_rejected"], w["w1"]["rejection_rate"]) == (3, 1, 0.3333)
    assert (w["w1"]["first_pass_judged"], w["w1"]["first_pass_acceptance_rate"]) == (2, 0.5)
    assert (w["w2"]["rejection_rate"], w["w2"]["first_pass_acceptance_rate"]) == (1.0, 0.0)
    assert w["w2"]["tasks_missing_time"] == 1 and w["w2"]["objects_per_hour"] == 1.0
    assert w["w2"]["returned_tasks"] == 1 and w["w2"]["returned_hours"] == 0.25
    assert w["aud"]["rejection_rate"] is None and w["aud"]["tasks_by_stage"] == {"audit": 2}
    j = {row["job"]: row for row in r["jobs"]}
    aud = j["aud-r1"]
    assert (aud["objects_rejected"], aud["objects_approved"], aud["rejection_rate"]) == (1, 1, 0.5)
    # The labels' side counts every auditor's verdict: aud2 (no task in this sample) rejected o2 too.
    assert j["lab-r1"]["objects_rejected"] == 2 and j["lab-r1"]["tasks"] == 4 and j["lab-r1"]["returned_tasks"] == 1
    assert j["lab-r2"]["objects_approved"] == 1 and j["lab-r2"]["rejection_rate"] == 0.0
    d = {row["day"]: row for row in r["days"]}
    assert d["2026-11-23"]["tasks"] == 1 and d["2026-11-24"]["active_hours_by_worker"]["w2"] == 1.0
    assert r["totals"]["tasks"] == 7 and r["totals"]["labels_judged"] == 5 and r["totals"]["rejection_rate"] == 0.6


def test_report_json_is_the_documented_schema(sample_report: dict[str, Any]) -> None:
    doc = json.loads(render(sample_report, "json"))
    assert doc["schema"] == "gtaudit.report/2"
    # No filter was given: the filters echo that, not the last job the aggregation saw.
    assert doc["filters"] == {"since": None, "until": None, "worker": None, "job": None}
    assert set(doc) == {"schema", "generated_at", "table", "filters", "gold_threshold", "totals", "workers",
                        "auditors", "classes", "confusion", "gold_confusion", "jobs", "days"}  # fmt: skip
    assert set(doc["workers"][0]) >= {"worker_id", "tasks", "active_hours", "wall_hours", "objects_per_hour",
                                      "first_pass_acceptance_rate", "rejection_rate"}  # fmt: skip


def test_report_2_fields_are_the_documented_ones(quality_report: dict[str, Any]) -> None:
    """Every field docs/traceability.md lists for gtaudit.report/2, and no undocumented one."""
    doc = json.loads(render(quality_report, "json"))
    added_worker = {"labeling_objects_per_hour", "consensus_iou", "gold_iou", "scored_objects", "gold_objects",
                    "consensus_class_iou", "gold_class_iou", "flagged"}  # fmt: skip
    assert added_worker <= set(doc["workers"][0])
    assert set(doc["auditors"][0]) == {
        "worker_id", "audits", "seeded_shown", "defects_shown", "clean_shown", "caught", "caught_other_reason",
        "missed", "passed", "false_rejects", "catch_rate", "detection_rate", "false_reject_rate",
        "agreement_pairs", "agreeing_pairs", "agreement",
    }  # fmt: skip
    assert set(doc["classes"][0]) == {"class", "consensus_iou", "consensus_inter", "consensus_union", "gold_iou",
                                      "gold_inter", "gold_union"}  # fmt: skip
    assert set(doc["confusion"][0]) == {"reference", "painted", "pixels"}
    added_totals = {"consensus_iou", "gold_iou", "scored_objects", "gold_objects", "seeded_shown", "seeded_caught",
                    "catch_rate", "false_reject_rate", "auditor_agreement", "flagged_labelers"}  # fmt: skip
    assert added_totals <= set(doc["totals"])
    docs = (Path(__file__).resolve().parents[3] / "docs" / "traceability.md").read_text(encoding="utf-8")
    added_top = {"gold_threshold", "auditors", "classes", "confusion", "gold_confusion"}
    assert added_top <= set(doc)
    fields = added_top | added_worker | added_totals | set(doc["auditors"][0]) | set(doc["classes"][0])
    assert not [f for f in sorted(fields) if f"`{f}`" not in docs]


def test_worker_filter_keeps_that_auditor_only(quality_items: list[dict[str, Any]]) -> None:
    only = build_report([it for it in quality_items if it.get("worker_id") == "keen"], worker="keen")
    assert [a["worker_id"] for a in only["auditors"]] == ["keen"]
    # The other auditors' verdicts were not queried: no pair to agree with.
    assert only["auditors"][0]["agreement"] is None and only["auditors"][0]["catch_rate"] == 1.0


def test_roles(sample_report: dict[str, Any]) -> None:
    w = {row["worker_id"]: row["role"] for row in sample_report["workers"]}
    assert w == {"w1": "labeler", "w2": "labeler", "aud": "auditor"}


_task_args = st.lists(
    st.tuples(
        st.sampled_from(["w1", "w2", "w3"]),
        st.sampled_from(["lab-r1", "aud-r1", "lab-r2"]),
        st.sampled_from(["o1", "o2", "o3", "o4"]),
        st.sampled_from(["2026-11-23T09:00:00.000Z", "2026-11-24T09:00:00.000Z", "2026-11-25T23:59:59.999Z"]),
        st.one_of(st.none(), st.floats(0, 10_000)),
        st.sampled_from(["labeling", "rework", "audit"]),
    ),
    max_size=40,
)


@given(_task_args)
def test_report_sections_add_up(task_row: Callable[..., dict[str, Any]], args: list[tuple[Any, ...]]) -> None:
    items = [task_row(*a) for a in args]
    r = build_report(items)
    n = len(items)
    assert r["totals"]["tasks"] == n == sum(w["tasks"] for w in r["workers"]) == sum(d["tasks"] for d in r["days"])
    assert sum(j["tasks"] for j in r["jobs"]) == n
    active = sum(i["active_seconds"] or 0 for i in items) / 3600
    assert sum(d["active_hours"] for d in r["days"]) == pytest.approx(active, abs=1e-3 * (len(r["days"]) + 1))
    assert r["totals"]["tasks_missing_time"] == sum(1 for i in items if i["active_seconds"] is None)
    assert json.loads(render(r, "json"))["totals"] == r["totals"]  # strict JSON: no NaN or Infinity
