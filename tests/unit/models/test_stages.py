"""The contracts between stages: what a writer dumps is what the reader parses, in the documented shape."""

from __future__ import annotations

import json

from gtaudit.models.stages import (
    AuditVerdict,
    ColorMapEntry,
    ConsolidatedLabel,
    Exclusion,
    ImageSize,
    PreAnnotationResponse,
    RegionNote,
    StepResult,
    Votes,
)


def test_a_consolidated_label_dumps_in_ground_truths_key_order_and_parses_back() -> None:
    label = ConsolidatedLabel(
        status="consolidated",
        mask_ref="s3://b/out/j/annotations/consolidated-annotation/output/0_t.png",
        color_map={"0": ColorMapEntry(class_name="BACKGROUND", hex_color="#ffffff", confidence=0.9)},
        image_size=ImageSize(width=4, height=3),
        workers=["w1", "w2"],
        agreement=None,
        excluded=[Exclusion(worker_id="w3", reason="empty answer")],
    )
    data = label.dump()
    assert list(data) == ["status", "mask-ref", "internal-color-map", "image-size", "workers", "agreement", "excluded"]
    assert data["internal-color-map"]["0"] == {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.9}
    assert data["excluded"] == [{"workerId": "w3", "reason": "empty answer"}]
    assert data["agreement"] is None  # set, so written: readers tell "one worker" from "not computed"
    assert ConsolidatedLabel.model_validate(json.loads(json.dumps(data))) == label


def test_a_failed_label_carries_its_reason_second_and_nothing_it_does_not_have() -> None:
    data = ConsolidatedLabel(status="failed", failure_reason="no usable annotation", workers=[], excluded=[]).dump()
    assert list(data) == ["status", "failure-reason", "workers", "excluded"]


def test_unknown_keys_of_a_newer_writer_survive_a_round_trip() -> None:
    raw = {"status": "audited", "verdict": "approve", "auditors": ["a"], "future-field": {"x": 1}}
    assert AuditVerdict.model_validate(raw).dump() == raw


def test_the_verdict_gives_the_feedback_a_rework_carries() -> None:
    verdict = AuditVerdict(
        status="audited",
        verdict="reject",
        reasons=["wrong-class"],
        comment="arm",
        notes=[RegionNote(n=1, x=0.5, y=0.25, text="here")],
        auditors=["a"],
        votes=Votes(approve=0, reject=1),
        excluded=[],
    )
    assert verdict.feedback().dump() == {
        "verdict": "reject",
        "reasons": ["wrong-class"],
        "comment": "arm",
        "notes": [{"n": 1, "x": 0.5, "y": 0.25, "text": "here"}],
        "auditors": ["a"],
    }


def test_a_skipped_task_is_the_documented_pre_annotation_response() -> None:
    assert PreAnnotationResponse.skip("o-1", "no image").dump() == {
        "taskInput": {"objectId": "o-1", "skipReason": "no image"},
        "isHumanAnnotationRequired": False,
    }


def test_a_step_result_flattens_its_counts_for_the_lambda_answer() -> None:
    result = StepResult(job="j", action="audit-created", next="k", counts={"lines": 3, "audit": 2})
    assert result.as_dict() == {"job": "j", "action": "audit-created", "next": "k", "lines": 3, "audit": 2}
