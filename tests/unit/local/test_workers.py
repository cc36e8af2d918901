"""Scripted workers of the local runtime: answer shapes, determinism, skill profiles, audits."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.audit.post import parse_answer as parse_audit_answer
from gtaudit.labeling.masks import decode_mask, encode_mask
from gtaudit.labels import DEFAULT_LABELS, LabelSet
from gtaudit.reasons import REASONS, reason_inputs
from gtaudit_local.workers import (
    AVERAGE,
    CAREFUL,
    SLOPPY,
    Answer,
    ScriptedAuditor,
    ScriptedLabeler,
    Task,
    Worker,
    default_crew,
    label_components,
    worker_identity,
)
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LABELS = LabelSet.from_names(DEFAULT_LABELS)
COLORS = [lb.color for lb in LABELS.labels]
PALETTE = list(enumerate(COLORS, start=1))
LEGEND = [{"index": i, "label": n, "color": c} for i, (n, c) in enumerate(zip(LABELS.names, COLORS, strict=True), 1)]
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PERSON, ANIMAL, OBJECT = 1, 2, 7
WORKER_ID = re.compile(r"^private\.us-east-1\.[0-9a-f]{16}$")


def clock() -> datetime:
    return T0


def reference_scene() -> np.ndarray:
    """160x120: a person rectangle and an object square touching it, on background."""
    ref = np.zeros((120, 160), dtype=np.uint8)
    ref[20:100, 20:70] = PERSON
    ref[40:80, 70:110] = OBJECT
    return ref


def save_reference(folder: Path, stem: str, classes: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.png").write_bytes(encode_mask(classes, ["#ffffff", *COLORS]))


def put_image(s3: Any, bucket: str, key: str, size: tuple[int, int], exif_orientation: int = 1) -> str:
    buf = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation != 1:
        exif[0x0112] = exif_orientation
    Image.new("RGB", size, (120, 130, 140)).save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    return f"s3://{bucket}/{key}"


def labeling_task(image_uri: str, *, object_id: str = "scene-1", initial: Any = None, feedback: Any = None) -> Task:
    task_input = {
        "taskObject": image_uri,
        "objectId": object_id,
        "round": 2 if initial else 1,
        "labels": LABELS.names,
        "labelColors": [{"label": lb.name, "color": lb.color} for lb in LABELS.labels],
        "language": "en",
        "initialValue": initial,
        "feedback": feedback,
    }
    kind = "rework" if initial else "labeling"
    html = '<crowd-form><crowd-semantic-segmentation name="crowd-semantic-segmentation" labels="[]">'
    return Task("gtaudit-label-r1", kind, "0", {"source-ref": image_uri, "object-id": object_id}, task_input, html, 1)


def audit_task(mask_uri: str, original: str, language: str = "en") -> Task:
    task_input = {
        "objectId": "scene-1",
        "round": 1,
        "original": original,
        "overlay": original,
        "mask": mask_uri,
        "legend": LEGEND,
        "labelers": [],
        "agreement": None,
        "reasons": reason_inputs(language),
        "language": language,
    }
    return Task("gtaudit-audit-r1", "audit", "0", {"source-ref": original}, task_input, "<crowd-form>", 1)


def answer_classes(answer: Answer) -> np.ndarray:
    assert answer.content is not None
    png = base64.b64decode(answer.content["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"])
    return decode_mask(png, PALETTE)


def labeled_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero((a > 0) | (b > 0))
    return np.count_nonzero((a == b) & (a > 0)) / union


def put_mask(s3: Any, bucket: str, key: str, classes: np.ndarray) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=encode_mask(classes, ["#ffffff", *COLORS]))
    return f"s3://{bucket}/{key}"


def audit(s3: Any, bucket: str, refs: Path, mask: np.ndarray, language: str = "en") -> dict[str, Any]:
    original = put_image(s3, bucket, "images/scene.jpg", (mask.shape[1], mask.shape[0]))
    uri = put_mask(s3, bucket, "out/scene.png", mask)
    auditor = ScriptedAuditor(*worker_identity(1, "aud"), 1, references=refs, clock=clock)
    answer = auditor.work(audit_task(uri, original, language), s3)
    assert answer.status == "submitted" and answer.content is not None
    return answer.content


# ---------------------------------------------------------------- identities and crew


def test_default_crew_has_three_labelers_one_sloppy_and_one_auditor() -> None:
    labelers, auditors = default_crew(42)
    assert [lab.profile.name for lab in labelers] == ["careful", "average", "sloppy"]
    assert len(auditors) == 1
    crew: list[Worker] = [*labelers, *auditors]
    ids = [w.worker_id for w in crew]
    assert len(set(ids)) == 4 and all(WORKER_ID.match(i) for i in ids)
    assert all(uuid.UUID(w.sub).version == 4 for w in crew)
    assert [w.worker_id for w in default_crew(42)[0]] == ids[:3]  # stable for a seed
    assert default_crew(43)[0][0].worker_id != ids[0]


# ---------------------------------------------------------------- labeling answers


def test_labeling_answer_has_gt_segmentation_shape(s3: Any, bucket: str, tmp_path: Path) -> None:
    save_reference(tmp_path, "scene", reference_scene())
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    labeler = ScriptedLabeler(*worker_identity(3, "a"), 3, AVERAGE, references=tmp_path, clock=clock)

    answer = labeler.work(labeling_task(uri), s3)

    assert answer.status == "submitted" and answer.content is not None
    assert list(answer.content) == ["crowd-semantic-segmentation"]
    seg = answer.content["crowd-semantic-segmentation"]
    assert set(seg) == {"inputImageProperties", "labelMappings", "labeledImage"}  # no initialValue given
    assert seg["inputImageProperties"] == {"height": 120, "width": 160}
    assert seg["labelMappings"] == {"person": {"color": COLORS[0]}, "object": {"color": COLORS[6]}}
    img = Image.open(io.BytesIO(base64.b64decode(seg["labeledImage"]["pngImageData"])))
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (160, 120))
    rgba = np.asarray(img)
    opaque = rgba[rgba[..., 3] == 255][:, :3]
    exact = {"#{:02x}{:02x}{:02x}".format(*p) for p in np.unique(opaque, axis=0)} & set(COLORS)
    assert exact == {COLORS[0], COLORS[6]}
    is_label = np.isin(opaque.astype(np.uint32) @ [65536, 256, 1], [int(c[1:], 16) for c in COLORS])
    assert 0.9 < is_label.mean() < 1.0  # anti-aliased edges: some blended colours, mostly label colours
    assert np.count_nonzero((rgba[..., 3] > 0) & (rgba[..., 3] < 255)) > 0  # soft edges towards background
    classes = decode_mask(base64.b64decode(seg["labeledImage"]["pngImageData"]), PALETTE, size=(160, 120))
    assert set(np.unique(classes)) <= {0, PERSON, OBJECT}
    assert answer.submitted_at is not None and answer.submitted_at - answer.accepted_at >= timedelta(
        seconds=answer.active_seconds
    )
    assert 60 <= answer.active_seconds <= 400


def test_same_seed_and_task_give_the_same_bytes(s3: Any, bucket: str, tmp_path: Path) -> None:
    save_reference(tmp_path, "scene", reference_scene())
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    task = labeling_task(uri)

    def run(seed: int) -> Answer:
        labeler = ScriptedLabeler(*worker_identity(seed, "x"), seed, "sloppy", references=tmp_path, clock=clock)
        return labeler.work(task, s3)

    first, again, other = run(5), run(5), run(6)
    assert first.content is not None and first == again
    assert json.dumps(first.content, sort_keys=True) == json.dumps(again.content, sort_keys=True)
    assert other.content != first.content


def test_answer_size_is_the_displayed_size_of_an_exif_rotated_photo(s3: Any, bucket: str) -> None:
    data = (SAMPLES / "images" / "chelsea-exif6.jpg").read_bytes()
    assert Image.open(io.BytesIO(data)).size == (300, 451)  # stored sideways
    s3.put_object(Bucket=bucket, Key="images/chelsea-exif6.jpg", Body=data)
    faultless = replace(CAREFUL, p_miss=0.0, p_wrong_class=0.0)
    labeler = ScriptedLabeler(*worker_identity(1, "c"), 1, faultless, references=SAMPLES / "reference")

    answer = labeler.work(labeling_task(f"s3://{bucket}/images/chelsea-exif6.jpg"), s3)

    assert answer.content is not None
    assert answer.content["crowd-semantic-segmentation"]["inputImageProperties"] == {"width": 451, "height": 300}
    assert list(answer.content["crowd-semantic-segmentation"]["labelMappings"]) == ["animal"]


def test_careful_labeler_is_close_to_the_sample_reference_and_sloppy_is_not(s3: Any, bucket: str) -> None:
    data = (SAMPLES / "images" / "astronaut.jpg").read_bytes()
    s3.put_object(Bucket=bucket, Key="images/astronaut.jpg", Body=data)
    reference = np.asarray(Image.open(SAMPLES / "reference" / "astronaut.png"))
    uri = f"s3://{bucket}/images/astronaut.jpg"
    careful: list[float] = []
    sloppy: list[float] = []
    for seed in range(6):
        task = labeling_task(uri, object_id=f"astronaut-{seed}")
        for profile, scores in (("careful", careful), ("sloppy", sloppy)):
            no_giving_up = replace(CAREFUL if profile == "careful" else SLOPPY, p_return=0.0, p_abandon=0.0)
            labeler = ScriptedLabeler(
                *worker_identity(seed, profile), seed, no_giving_up, references=SAMPLES / "reference"
            )
            scores.append(labeled_iou(answer_classes(labeler.work(task, s3)), reference))
    # Even careful people sometimes miss a region (CAREFUL.p_miss), so most, not all, are close.
    assert np.mean(careful) > 0.95 and sorted(careful)[1] > 0.9
    assert np.mean(sloppy) < np.mean(careful) - 0.02
    assert min(sloppy) < 0.95


@pytest.mark.parametrize("status", ["returned", "abandoned"])
def test_returned_and_abandoned_tasks_have_no_content(s3: Any, bucket: str, tmp_path: Path, status: str) -> None:
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    profile = replace(AVERAGE, p_return=1.0 if status == "returned" else 0.0, p_abandon=1.0)
    labeler = ScriptedLabeler(*worker_identity(1, "q"), 1, profile, references=tmp_path, clock=clock)

    answer = labeler.work(labeling_task(uri), s3)

    assert (answer.status, answer.content, answer.submitted_at) == (status, None, None)
    assert answer.active_seconds > 0 and answer.accepted_at >= T0


def test_one_workers_tasks_do_not_overlap(s3: Any, bucket: str, tmp_path: Path) -> None:
    save_reference(tmp_path, "scene", reference_scene())
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    labeler = ScriptedLabeler(*worker_identity(1, "t"), 1, CAREFUL, references=tmp_path, clock=clock)

    first = labeler.work(labeling_task(uri, object_id="a"), s3)
    second = labeler.work(labeling_task(uri, object_id="b"), s3)

    assert first.submitted_at is not None and second.accepted_at > first.submitted_at


def test_without_a_reference_the_labeler_paints_a_central_blob_of_the_first_label(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    uri = put_image(s3, bucket, "images/unknown.jpg", (160, 120))
    labeler = ScriptedLabeler(*worker_identity(1, "n"), 1, CAREFUL, references=tmp_path)

    classes = answer_classes(labeler.work(labeling_task(uri), s3))

    assert classes[60, 80] == PERSON and classes[2, 2] == 0
    assert set(np.unique(classes)) == {0, PERSON}


def test_labeler_refuses_an_audit_task(s3: Any) -> None:
    labeler = ScriptedLabeler(*worker_identity(1, "r"), 1)
    with pytest.raises(ValueError, match="audit"):
        labeler.work(audit_task("s3://b-x/m.png", "s3://b-x/i.jpg"), s3)


# ---------------------------------------------------------------- rework


def test_careful_rework_restores_a_missing_region(s3: Any, bucket: str, tmp_path: Path) -> None:
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    previous = reference.copy()
    previous[reference == OBJECT] = 0
    src = put_mask(s3, bucket, "out/prev.png", previous)
    initial = {"labelMappings": LABELS.label_mappings(), "src": src}
    feedback = {
        "verdict": "reject",
        "reasons": ["missing-object"],
        "comment": "",
        "notes": [{"n": 1, "x": 0.56, "y": 0.5}],
    }
    labeler = ScriptedLabeler(*worker_identity(1, "w"), 1, CAREFUL, references=tmp_path, clock=clock)

    answer = labeler.work(labeling_task(uri, initial=initial, feedback=feedback), s3)

    assert answer.content is not None
    seg = answer.content["crowd-semantic-segmentation"]
    assert seg["initialValueModified"] is True
    classes = answer_classes(answer)
    assert labeled_iou(classes, reference) > 0.95
    far_from_the_fix = reference[:, :60] == PERSON  # left as it was (no pixel lost to repainting)
    assert np.count_nonzero(classes[:, :60][far_from_the_fix] == PERSON) == np.count_nonzero(far_from_the_fix)
    assert 25 <= answer.active_seconds <= 240


def test_rework_of_a_correct_mask_leaves_it_unmodified(s3: Any, bucket: str, tmp_path: Path) -> None:
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    initial = {"labelMappings": LABELS.label_mappings(), "src": put_mask(s3, bucket, "out/prev.png", reference)}
    labeler = ScriptedLabeler(*worker_identity(1, "w"), 1, CAREFUL, references=tmp_path)

    answer = labeler.work(labeling_task(uri, initial=initial, feedback={"verdict": "reject"}), s3)

    assert answer.content is not None
    assert answer.content["crowd-semantic-segmentation"]["initialValueModified"] is False


# ---------------------------------------------------------------- audits


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
    assert parse_audit_answer(auditor.worker_id, content).verdict == "approve"
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
    verdict = parse_audit_answer("w", content)
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


# ---------------------------------------------------------------- helpers


def test_label_components_uses_four_connectivity() -> None:
    mask = np.array(
        [
            [1, 1, 0, 0],
            [0, 1, 0, 1],
            [0, 0, 1, 1],
            [1, 0, 0, 0],
        ],
        dtype=bool,
    )
    labels, count = label_components(mask)
    assert count == 3
    assert labels[0, 0] == labels[1, 1] != labels[2, 2] == labels[1, 3]
    assert labels[3, 0] not in {0, labels[0, 0], labels[2, 2]}
    assert (labels == 0).tolist() == (~mask).tolist()
