"""The scripted auditor: approvals, and rejections with the right reasons and pins."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from gtaudit.audit.post import read_verdict
from gtaudit.reasons import REASONS
from gtaudit_local.workers.auditor import ScriptedAuditor
from gtaudit_local.workers.simulation import worker_identity
from PIL import Image
from worker_scenes import (
    ANIMAL,
    OBJECT,
    PERSON,
    SAMPLES,
    audit_task,
    clock,
    put_image,
    put_mask,
    reference_scene,
    save_reference,
)


def audit(s3: Any, bucket: str, refs: Path, mask: np.ndarray, language: str = "en") -> dict[str, Any]:
    """The scripted auditor's answer on ``mask`` against the references in ``refs``."""
    original = put_image(s3, bucket, "images/scene.jpg", (mask.shape[1], mask.shape[0]))
    uri = put_mask(s3, bucket, "out/scene.png", mask)
    auditor = ScriptedAuditor(*worker_identity(1, "aud"), 1, references=refs, clock=clock)
    answer = auditor.work(audit_task(uri, original, language), s3)
    assert answer.status == "submitted" and answer.content is not None
    return answer.content


def test_auditor_approves_the_sample_reference_itself(s3: Any, bucket: str) -> None:
    reference = np.asarray(Image.open(SAMPLES / "reference" / "camera.png"))
    s3.put_object(Bucket=bucket, Key="images/camera.jpg", Body=(SAMPLES / "images" / "camera.jpg").read_bytes())
    mask = put_mask(s3, bucket, "out/camera.png", reference)
    auditor = ScriptedAuditor(*worker_identity(2, "aud"), 2, references=SAMPLES / "reference", clock=clock)

    answer = auditor.work(audit_task(mask, f"s3://{bucket}/images/camera.jpg"), s3)

    assert answer.status == "submitted" and answer.content is not None
    content = answer.content
    assert content["approve"] == {"on": True} and content["reject"] == {"on": False}
    assert set(content) == {"approve", "reject", "comment", "region-notes", *(f"reason-{r.code}" for r in REASONS)}
    assert not any(content[f"reason-{r.code}"]["on"] for r in REASONS)
    assert json.loads(content["region-notes"]) == []
    assert read_verdict(auditor.worker_id, content).verdict == "approve"
    assert 15 <= answer.active_seconds <= 90
    assert answer.submitted_at is not None and answer.submitted_at - answer.accepted_at >= timedelta(
        seconds=answer.active_seconds
    )


def _pins_inside(content: dict[str, Any], region: np.ndarray) -> list[bool]:
    h, w = region.shape
    notes = json.loads(content["region-notes"])
    assert 1 <= len(notes) <= 3
    return [bool(region[int(n["y"] * h), int(n["x"] * w)]) for n in notes]


def test_auditor_rejects_a_missing_object_with_a_pin_on_it(s3: Any, bucket: str, tmp_path: Path) -> None:
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    mask = reference.copy()
    mask[reference == OBJECT] = 0

    content = audit(s3, bucket, tmp_path, mask)

    assert content["reject"] == {"on": True} and content["approve"] == {"on": False}
    assert [r.code for r in REASONS if content[f"reason-{r.code}"]["on"]] == ["missing-object"]
    assert _pins_inside(content, reference == OBJECT)[0]
    verdict = read_verdict("w", content)
    assert verdict.verdict == "reject" and verdict.reasons == ("missing-object",) and verdict.comment


def test_auditor_rejects_a_wrong_class_and_an_extra_region(s3: Any, bucket: str, tmp_path: Path) -> None:
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    mask = reference.copy()
    mask[reference == OBJECT] = ANIMAL
    mask[100:116, 100:150] = OBJECT  # a stray strip on the background

    content = audit(s3, bucket, tmp_path, mask, language="ja")

    assert {r.code for r in REASONS if content[f"reason-{r.code}"]["on"]} == {"wrong-class", "extra-region"}
    wrong_or_extra = (reference == OBJECT) | (mask != reference)
    assert all(_pins_inside(content, wrong_or_extra))
    assert "クラス" in content["comment"] or "対象" in content["comment"]


def test_auditor_rejects_loose_boundaries_only_as_such(s3: Any, bucket: str, tmp_path: Path) -> None:
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    mask = np.zeros_like(reference)
    mask[14:106, 14:70] = PERSON  # 6 px too wide all round
    mask[34:86, 70:116] = OBJECT

    content = audit(s3, bucket, tmp_path, mask)

    assert [r.code for r in REASONS if content[f"reason-{r.code}"]["on"]] == ["loose-boundary"]
    assert all(_pins_inside(content, mask != reference))
