"""The audit stage's pure logic: task input, answer parsing, the any-reject-wins rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit.audit.post import AuditorAnswer, merge_verdicts, read_verdict
from gtaudit.audit.pre import audit_task_input, pre_audit
from gtaudit.exceptions import InvalidAnswerError, ManifestError
from gtaudit.models.stages import Exclusion

ALLOWED = ["gtaudit-test-data"]
EVENTS = Path(__file__).resolve().parents[3] / "events"


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def audit_line() -> dict[str, Any]:
    line: dict[str, Any] = load_event("audit_pre-task")["dataObject"]
    return line


def consolidate(answers: list[AuditorAnswer], excluded: list[dict[str, str]]) -> dict[str, Any]:
    """merge_verdicts on the JSON the audit attribute carries."""
    return merge_verdicts(answers, [Exclusion.model_validate(e) for e in excluded]).dump()


def answer(verdict: str, *reasons: str, comment: str = "", notes: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"approve": {"on": verdict == "approve"}, "reject": {"on": verdict == "reject"}}
    for code in ("missing-object", "wrong-class", "loose-boundary", "extra-region", "other"):
        content[f"reason-{code}"] = {"on": code in reasons}
    content["comment"] = comment
    content["region-notes"] = json.dumps(notes or [])
    return content


def test_task_input_has_the_contract_shape() -> None:
    task = audit_task_input(audit_line(), language="en", allowed=ALLOWED).dump()
    assert task["objectId"] == "street-1a2b3c4d"
    assert task["round"] == 1
    assert task["original"].endswith("/images/street.jpg")
    assert task["overlay"].endswith("/overlays/0.jpg")
    assert task["mask"].endswith(".png")
    assert task["legend"] == [
        {"index": 1, "label": "person", "color": "#2ca02c"},
        {"index": 2, "label": "animal", "color": "#1f77b4"},
    ]
    assert task["agreement"] == 0.91
    assert task["labelers"] == ["private.us-east-1.aaaaaaaaaaaaaaaa", "private.us-east-1.bbbbbbbbbbbbbbbb"]
    assert [r["code"] for r in task["reasons"]][:2] == ["missing-object", "wrong-class"]
    assert task["language"] == "en"


def test_task_input_japanese() -> None:
    task = audit_task_input(audit_line(), language="ja", allowed=ALLOWED).dump()
    assert task["language"] == "ja"
    assert "検品" in task["header"]
    assert task["reasons"][0]["text"].startswith("未ラベル")


def test_image_outside_allowed_buckets_is_skipped() -> None:
    line = audit_line()
    line["gtaudit"]["original"] = "s3://someone-elses-bucket/x.jpg"
    with pytest.raises(ManifestError, match="original"):
        audit_task_input(line, language="en", allowed=ALLOWED)
    result = pre_audit(line, language="en", allowed=ALLOWED).dump()
    assert result["isHumanAnnotationRequired"] is False
    assert result["taskInput"]["objectId"] == "street-1a2b3c4d"
    assert "original" in result["taskInput"]["skipReason"]


def test_a_labeling_line_is_not_an_audit_line() -> None:
    line = load_event("audit_pre-not-an-audit-line")["dataObject"]
    result = pre_audit(line, language="en", allowed=ALLOWED).dump()
    assert result == {
        "taskInput": {
            "objectId": "street-1a2b3c4d",
            "skipReason": "not an audit manifest line: no gtaudit.stage == 'audit'",
        },
        "isHumanAnnotationRequired": False,
    }


def test_parse_approve() -> None:
    v = read_verdict("w1", answer("approve", comment=" fine "))
    assert v == AuditorAnswer("w1", "approve", (), "fine", ())


def test_parse_reject_with_reasons_and_notes() -> None:
    notes = [{"n": 1, "x": 0.41, "y": 0.22, "text": "edge of the arm"}, {"n": 2, "x": 1.5, "y": 0.1, "text": "off"}]
    v = read_verdict("w1", answer("reject", "loose-boundary", "wrong-class", comment="arm", notes=notes))
    assert v.verdict == "reject"
    assert v.reasons == ("loose-boundary", "wrong-class")
    assert v.notes == ({"x": 0.41, "y": 0.22, "text": "edge of the arm"},)
    assert v.dropped == ("a region note's x/y is not a fraction 0..1",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"approve": {"on": False}, "reject": {"on": False}}, "no verdict"),
        ({"approve": {"on": True}, "reject": {"on": True}}, "exactly one"),
        ({}, "no verdict"),
    ],
)
def test_bad_verdicts_raise(content: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAnswerError, match=message):
        read_verdict("w1", content)


def test_reject_without_feedback_is_kept_as_other() -> None:
    v = read_verdict("w1", answer("reject"))
    assert v.verdict == "reject"
    assert v.reasons == ("other",)


def test_region_notes_not_json_are_dropped_but_verdict_kept() -> None:
    content = answer("reject", "missing-object")
    content["region-notes"] = "{not json"
    v = read_verdict("w1", content)
    assert v.reasons == ("missing-object",)
    assert v.notes == ()
    assert v.dropped == ("region-notes is not JSON",)


def test_any_reject_wins_and_feedback_merges() -> None:
    a = AuditorAnswer("w1", "approve", comment="looks fine")
    b = AuditorAnswer("w2", "reject", ("loose-boundary",), "arm", ({"x": 0.1, "y": 0.2, "text": "arm"},))
    c = AuditorAnswer("w3", "reject", ("missing-object", "loose-boundary"), "", ({"x": 0.5, "y": 0.5, "text": "dog"},))
    out = consolidate([a, b, c], [{"workerId": "w4", "reason": "no verdict chosen"}])
    assert out["status"] == "audited"
    assert out["verdict"] == "reject"
    assert out["reasons"] == ["missing-object", "loose-boundary"]  # gtaudit.reasons order
    assert out["notes"] == [{"n": 1, "x": 0.1, "y": 0.2, "text": "arm"}, {"n": 2, "x": 0.5, "y": 0.5, "text": "dog"}]
    assert out["comment"] == "w1: looks fine\nw2: arm"
    assert out["auditors"] == ["w1", "w2", "w3"]
    assert out["votes"] == {"approve": 1, "reject": 2}
    assert out["excluded"] == [{"workerId": "w4", "reason": "no verdict chosen"}]


def test_unanimous_approve() -> None:
    out = consolidate([AuditorAnswer("w1", "approve"), AuditorAnswer("w2", "approve")], [])
    assert out["verdict"] == "approve"
    assert out["reasons"] == []
    assert out["votes"] == {"approve": 2, "reject": 0}


def test_no_usable_answer_is_a_failure() -> None:
    out = consolidate([], [{"workerId": "w1", "reason": "no verdict chosen"}])
    assert out == {
        "status": "failed",
        "failure-reason": "no usable answer: w1: no verdict chosen",
        "auditors": [],
        "excluded": [{"workerId": "w1", "reason": "no verdict chosen"}],
    }
