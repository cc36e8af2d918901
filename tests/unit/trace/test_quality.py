"""trace.quality: labelers' IoU against the consensus and gold truths, auditors on seeded objects, classes."""

from __future__ import annotations

from typing import Any

import pytest
from gtaudit.trace.quality import PixelSums, QualityTally, confusion_axes, object_scores
from gtaudit.trace.report import apply_gold_threshold, build_report
from hypothesis import given
from hypothesis import strategies as st

CAREFUL, AVERAGE, SLOPPY, KEEN, LAX = "careful", "average", "sloppy", "keen", "lax"  # as quality_items names them


def _rows(report: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {r["worker_id"]: r for r in report[key]}


def test_labelers_micro_averaged_from_pixel_sums(quality_report: dict[str, Any]) -> None:
    w = _rows(quality_report, "workers")
    # Micro average: (90 + 45 + 80 + 95) / (100 + 50 + 100 + 100), not the mean of the per-object ratios.
    assert w[CAREFUL]["consensus_iou"] == pytest.approx(310 / 350, abs=1e-4)
    assert w[CAREFUL]["consensus_class_iou"] == {"car": pytest.approx(265 / 300, abs=1e-4), "person": 0.9}
    assert (w[CAREFUL]["scored_objects"], w[CAREFUL]["gold_objects"]) == (3, 1)
    assert (w[AVERAGE]["consensus_iou"], w[AVERAGE]["gold_iou"]) == (0.75, 0.85)
    assert (w[SLOPPY]["consensus_iou"], w[SLOPPY]["gold_iou"], w[SLOPPY]["gold_class_iou"]) == (0.5, 0.6, {"car": 0.6})
    assert w[KEEN]["consensus_iou"] is None and w[KEEN]["scored_objects"] == 0 and w[KEEN]["consensus_class_iou"] == {}
    # The labelers rank in the order of their skill on both measures.
    labelers = [CAREFUL, AVERAGE, SLOPPY]
    assert sorted(labelers, key=lambda n: -w[n]["gold_iou"]) == labelers
    assert sorted(labelers, key=lambda n: -w[n]["consensus_iou"]) == labelers
    # Throughput of the labeling tasks alone: careful did 3 in 30 minutes.
    assert w[CAREFUL]["labeling_objects_per_hour"] == 6.0 and w[KEEN]["labeling_objects_per_hour"] is None


def test_flag_is_gold_iou_below_the_threshold(quality_items: list[dict[str, Any]]) -> None:
    report = build_report(quality_items)
    assert report["gold_threshold"] == 0.8
    assert {r["worker_id"] for r in report["workers"] if r["flagged"]} == {SLOPPY}
    assert report["totals"]["flagged_labelers"] == 1
    strict = apply_gold_threshold(report, 0.9)
    assert {r["worker_id"] for r in strict["workers"] if r["flagged"]} == {SLOPPY, AVERAGE}
    assert strict["gold_threshold"] == 0.9 and strict["totals"]["flagged_labelers"] == 2
    # Exactly at the threshold is not below it; consensus IoU alone never flags.
    assert not any(r["flagged"] for r in build_report(quality_items, gold_threshold=0.6)["workers"])
    no_gold = [{k: v for k, v in it.items() if not k.startswith("gold_")} for it in quality_items]
    assert not any(r["flagged"] for r in build_report(no_gold, gold_threshold=1.0)["workers"])
    with pytest.raises(ValueError, match="gold_threshold"):
        build_report([], gold_threshold=1.5)


def test_auditors_on_seeded_objects(quality_report: dict[str, Any]) -> None:
    a = _rows(quality_report, "auditors")
    assert set(a) == {KEEN, LAX}
    keen, lax = a[KEEN], a[LAX]
    assert (keen["audits"], keen["seeded_shown"], keen["defects_shown"], keen["clean_shown"]) == (4, 3, 2, 1)
    assert (keen["caught"], keen["missed"], keen["passed"], keen["false_rejects"]) == (2, 0, 1, 0)
    assert (keen["catch_rate"], keen["false_reject_rate"]) == (1.0, 0.0)
    assert (lax["caught"], lax["caught_other_reason"], lax["missed"], lax["false_rejects"]) == (0, 1, 1, 1)
    # A reject for another reason is not a catch, but it is a detection.
    assert (lax["catch_rate"], lax["detection_rate"], lax["false_reject_rate"]) == (0.0, 0.5, 1.0)
    # Pairs on o1 (both approve), g1 (differ), g2 (both reject), g3 (differ).
    assert (keen["agreement_pairs"], keen["agreeing_pairs"], keen["agreement"]) == (4, 2, 0.5)
    t = quality_report["totals"]
    assert (t["seeded_shown"], t["seeded_caught"], t["catch_rate"], t["false_reject_rate"]) == (6, 2, 0.5, 0.5)
    assert t["auditor_agreement"] == 0.5


def test_agreement_is_none_for_an_auditor_never_paired(task_row) -> None:
    items = [
        task_row("a1", "aud-r1", "o1", "2026-11-24T12:00:00.000Z", 10, "audit", verdict="approve"),
        task_row("a2", "aud-r1", "o2", "2026-11-24T12:00:00.000Z", 10, "audit", verdict="reject"),
        task_row("a3", "aud-r1", "o2", "2026-11-24T12:01:00.000Z", 10, "audit", verdict="reject"),
        task_row("a1", "aud-r2", "o2", "2026-11-24T12:02:00.000Z", 10, "audit", verdict="approve"),  # another job
        task_row("a4", "aud-r1", "o3", "2026-11-24T12:00:00.000Z", 10, "audit"),  # no verdict: never paired
        task_row("a5", "aud-r1", "o3", "2026-11-24T12:00:00.000Z", 10, "audit", verdict="approve"),
    ]
    a = _rows(build_report(items), "auditors")
    assert a["a1"]["agreement"] is None and a["a1"]["agreement_pairs"] == 0
    assert a["a4"]["agreement"] is None and a["a5"]["agreement"] is None
    assert (a["a2"]["agreement"], a["a3"]["agreement_pairs"]) == (1.0, 1)
    assert a["a1"]["seeded_shown"] == 0 and a["a1"]["catch_rate"] is None and a["a1"]["false_reject_rate"] is None


def test_seeded_audits_stay_out_of_the_jobs_approvals(quality_report: dict[str, Any]) -> None:
    aud = next(j for j in quality_report["jobs"] if j["job"] == "aud-r1")
    # Only the real object o1 counts (approved); the seeded g1..g3 are the auditors' test, not the labels'.
    assert (aud["objects_approved"], aud["objects_rejected"], aud["tasks"]) == (1, 0, 8)


def test_classes_and_confusion(quality_report: dict[str, Any]) -> None:
    c = {r["class"]: r for r in quality_report["classes"]}
    assert (c["car"]["consensus_inter"], c["car"]["consensus_union"]) == (515, 700)
    assert c["car"]["consensus_iou"] == pytest.approx(515 / 700, abs=1e-4) and c["car"]["gold_iou"] == 0.8
    assert c["person"]["gold_iou"] is None and c["person"]["consensus_iou"] == 0.9
    assert quality_report["confusion"] == [
        {"reference": "car", "painted": "person", "pixels": 20},
        {"reference": "car", "painted": "BACKGROUND", "pixels": 8},
        {"reference": "person", "painted": "car", "pixels": 3},
    ]
    assert quality_report["gold_confusion"] == [{"reference": "car", "painted": "BACKGROUND", "pixels": 15}]
    assert confusion_axes(quality_report["confusion"]) == ["BACKGROUND", "car", "person"]
    t = quality_report["totals"]
    assert (t["scored_objects"], t["gold_objects"], t["gold_iou"]) == (7, 3, 0.8)


def test_malformed_scores_are_skipped_not_fatal() -> None:
    tally = QualityTally()
    tally.add_score({"kind": "score", "worker_id": "w", "iou": 1.0, "class_iou": {}})  # nobody painted a pixel
    tally.add_score({"kind": "score", "worker_id": "v", "iou": 0.5, "class_iou": {"a": [1], "b": "x", "c": [1, 2]},
                     "confusion": [["a"], ["a", "b", -3], ["a", "b", 4]]})  # fmt: skip
    assert tally.labeler_fields("w")["consensus_iou"] == 1.0 and tally.labeler_fields("w")["scored_objects"] == 1
    assert tally.labeler_fields("v")["consensus_class_iou"] == {"c": 0.5}
    assert tally.confusion_rows() == [{"reference": "a", "painted": "b", "pixels": 4}]
    assert tally.labeler_fields("nobody")["consensus_iou"] is None


def test_object_scores_for_trace(quality_items: list[dict[str, Any]]) -> None:
    g1 = [it for it in quality_items if it.get("object_id") == "g1"]
    rows = object_scores(g1)
    assert [r["worker_id"] for r in rows] == sorted([CAREFUL, AVERAGE, SLOPPY])
    avg = next(r for r in rows if r["worker_id"] == AVERAGE)
    assert (avg["gold"], avg["consensus_iou"], avg["gold_iou"]) == (True, 0.5, 0.85)
    assert avg["classes"] == {"car": {"consensus": 0.75, "gold": 0.85}}
    assert object_scores([it for it in quality_items if it["kind"] == "task"]) == []


_pairs = st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 1000)).map(lambda p: [min(p), p[1]]), min_size=1)


@given(_pairs)
def test_micro_average_lies_between_the_scores(pairs: list[list[int]]) -> None:
    sums = PixelSums()
    for inter, union in pairs:
        sums.add({"c": [inter, union]})
    ratios = [i / u for i, u in pairs]
    assert min(ratios) - 1e-4 <= sums.iou() <= max(ratios) + 1e-4  # type: ignore[operator]
    assert sums.scores == len(pairs) and sums.class_iou()["c"] == sums.iou()
