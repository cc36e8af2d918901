"""The scripted labeler: answer shapes, determinism, skill profiles, giving up and rework."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.labeling.masks import decode_mask
from gtaudit_local.workers.base import Answer
from gtaudit_local.workers.labeler import AVERAGE, CAREFUL, SLOPPY, ScriptedLabeler
from gtaudit_local.workers.simulation import worker_identity
from PIL import Image
from worker_scenes import (
    COLORS,
    LABELS,
    OBJECT,
    PALETTE,
    PERSON,
    SAMPLES,
    T0,
    answer_classes,
    audit_task,
    clock,
    labeled_iou,
    labeling_task,
    put_image,
    put_mask,
    reference_scene,
    save_reference,
)


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


@pytest.mark.parametrize(
    ("profile", "over", "short"), [(AVERAGE, True, False), (SLOPPY, False, True), (CAREFUL, True, True)]
)
def test_each_labeler_errs_along_the_outline_in_its_own_direction(
    s3: Any, bucket: str, tmp_path: Path, profile: Any, over: bool, short: bool
) -> None:
    """Average paints over the edge onto the background, sloppy falls short of it, careful strays
    either way: two of them seldom err alike at one pixel, so the majority vote outvotes each."""
    reference = reference_scene()
    save_reference(tmp_path, "scene", reference)
    uri = put_image(s3, bucket, "images/scene.jpg", (160, 120))
    outline_only = replace(
        profile, p_miss=0.0, p_wrong_class=0.0, p_extra=0.0, p_return=0.0, p_abandon=0.0, antialias=0.0
    )
    painted_over = left_short = into_other_class = 0
    for seed in range(8):
        labeler = ScriptedLabeler(*worker_identity(seed, "o"), seed, outline_only, references=tmp_path, clock=clock)
        classes = answer_classes(labeler.work(labeling_task(uri, object_id=f"scene-{seed}"), s3))
        wrong = classes != reference
        painted_over += int(np.count_nonzero(wrong & (reference == 0)))
        left_short += int(np.count_nonzero(wrong & (classes == 0)))
        into_other_class += int(np.count_nonzero(wrong & (reference != 0) & (classes != 0)))
    assert (painted_over > 0, left_short > 0) == (over, short), (painted_over, left_short)
    if profile is not CAREFUL:
        assert into_other_class == 0
