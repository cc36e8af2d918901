"""Gold objects through a run on moto with a fake Ground Truth: the start mixes them in and writes
them, the orchestrator scores, routes and drops them, the sample policy and the flag use accuracy.

The labels Ground Truth's output carries here are labeling_post's (``scores``, ``gold``), written by
hand as the consolidation would write them, so these tests pin the orchestrator's side of the contract.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit import layout
from gtaudit.audit.pre import audit_task_input
from gtaudit.gold import GoldObject, index_uri, load_index
from gtaudit.labeling.pre import PreConfig, labeling_task_input
from gtaudit.labels import BACKGROUND_COLOR, DEFAULT_LABELS, LabelSet, hex_to_rgb
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.gold_start import positions
from gtaudit.pipeline.start import start_run
from integration.pipeline.test_chain import Harness
from PIL import Image
from pipeline_fakes import COLOR_MAP

RUN = "20261124t100000-ab12"
LABELS = LabelSet.from_names(DEFAULT_LABELS)  # the stack's default: person = 1, animal = 2, ...


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, format="PNG")
    return buf.getvalue()


def rotated_jpeg(width: int, height: int) -> bytes:
    """A JPEG stored ``width`` x ``height`` whose EXIF orientation (6) shows it ``height`` x ``width``."""
    im = Image.new("RGB", (width, height), (10, 20, 30))
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def truth(height: int = 6, width: int = 8) -> np.ndarray:
    t = np.zeros((height, width), dtype=np.uint8)
    t[1:3, 1:4] = 1  # a person
    t[3:5, 5:7] = 3  # a vehicle
    return t


def gold(n: int) -> list[GoldObject]:
    return [GoldObject(f"pic{i}.png", png(8, 6), truth()) for i in range(n)]


def score(inter: int, union: int) -> dict[str, Any]:
    return {"iou": round(inter / union, 4), "classes": {"person": {"inter": inter, "union": union}}, "confusion": []}


def keys(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in found}


def complete_labeling(h: Harness, name: str, label: Any) -> None:
    """Write the job's output as labeling_post would: ``label(i, line, entry)`` -> (workers, agreement,
    consensus scores, gold scores) or a failure string; ``entry`` is the line's gold index entry or None."""
    job = h.sm.jobs[name]
    attr = job["LabelAttributeName"]
    root = layout.job_root(job["OutputConfig"]["S3OutputPath"], name)
    index = load_index(h.s3, h.bucket, RUN)
    by_source = index.by_source() if index else {}
    out = []
    for i, line in enumerate(h.input_lines(name)):
        meta = {"type": "groundtruth/custom", "job-name": name, "human-annotated": "yes"}
        entry = by_source.get(line["source-ref"])
        res = label(i, line, entry)
        if isinstance(res, str):
            content = {"status": "failed", "failure-reason": res, "workers": [], "excluded": []}
            out.append({**line, attr: content, f"{attr}-metadata": meta})
            continue
        workers, agreement, consensus, truth_scores = res
        mask = layout.consolidated_mask(root.join("annotations"), line["object-id"], "2026-11-24T100000")
        h.s3.put_object(Bucket=mask.bucket, Key=mask.key, Body=b"png")
        overlay = layout.overlay(root, line["object-id"])
        h.s3.put_object(Bucket=overlay.bucket, Key=overlay.key, Body=b"jpg")
        content = {
            "status": "consolidated",
            "mask-ref": str(mask),
            "internal-color-map": COLOR_MAP,
            "image-size": {"width": 8, "height": 6},
            "workers": workers,
            "agreement": agreement,
            "excluded": [],
            "scores": consensus,
        }
        if entry is not None:
            content["gold"] = {"scores": truth_scores, "seeded": entry.defect}
        out.append({**line, attr: content, f"{attr}-metadata": meta})
    h.write_output(name, out)


def both_good(i: int, line: dict[str, Any], entry: Any) -> tuple[Any, ...]:
    scores = {"w1": score(9, 10), "w2": score(9, 10)}
    return ["w1", "w2"], 0.9, scores, scores


@pytest.fixture
def h(s3: Any, bucket: str) -> Harness:
    return Harness(s3, bucket)


# ---------------------------------------------------------------- the start
def test_start_mixes_gold_into_the_labeling_job_and_keeps_it_out_of_the_run(h: Harness) -> None:
    bad = [
        GoldObject("scan.tif", png(8, 6), truth()),
        GoldObject("small.png", png(8, 6), truth(4, 4)),
        GoldObject("phone.jpg", rotated_jpeg(8, 6), truth(6, 8)),
        GoldObject("broken.png", b"not an image", truth()),
        GoldObject("alien.png", png(8, 6), np.full((6, 8), 9, dtype=np.uint8)),
    ]
    started = h.start(10, gold=[*gold(4), *bad], gold_share=0.2, seed_share=0.1)
    # 0.2 / 0.8 of 10 objects: 2.5, rounded to 2 gold lines; 0.1 / 0.9 of 10 audited: 1 seeded
    assert (started.objects, started.gold, started.seeded) == (10, 2, 1)
    reasons = {r["name"]: r["reason"] for r in started.gold_refused}
    assert reasons["scan.tif"].startswith("image type '.tif'")
    assert reasons["small.png"] == "size: the mask is 4x4, the image is displayed as 8x6"
    assert reasons["phone.jpg"].startswith("orientation: the mask is 8x6, the image's stored size")
    assert reasons["broken.png"].startswith("image cannot be read")
    assert reasons["alien.png"] == "mask: class index 9, but the run has 7 labels"
    assert started.as_dict()["gold_refused"] == started.gold_refused

    lines = h.input_lines(started.job_name)
    assert len(lines) == 12 and h.ctx().state.get_job(RUN, started.job_name).objects == 12  # type: ignore[union-attr]
    assert all(set(line) == {"source-ref", "object-id"} for line in lines)  # a gold line is like any other
    index = load_index(h.s3, h.bucket, RUN)
    assert index is not None and index.labels == list(DEFAULT_LABELS)
    gold_ids = [e.object_id for e in index.entries]
    at = [i for i, line in enumerate(lines) if line["object-id"] in gold_ids]
    own_before = sorted(positions(RUN, gold_ids, 10))
    assert at == [p + n for n, p in enumerate(own_before)]  # before the run's own line at the drawn position
    assert at != [10, 11]  # mixed in, not appended
    assert h.ctx().state.get_run(RUN)["objects_in"] == 10  # type: ignore[index]

    (seeded,) = [e for e in index.entries if e.role == "seeded"]
    assert seeded.defect == "missing-object" and seeded.shown_ref
    for entry in index.entries:
        assert entry.source_ref.startswith(f"s3://{h.bucket}/inputs/{RUN}/images/pic")
        assert entry.truth_ref == f"s3://{h.bucket}/runs/{RUN}/gold/truth/{entry.object_id}.png"
        with Image.open(io.BytesIO(keys(h.s3, h.bucket, entry.truth_ref.split("/", 3)[3]).popitem()[1])) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im), truth())
            palette = im.getpalette()[:6]  # type: ignore[index]
            assert palette == [*hex_to_rgb(BACKGROUND_COLOR), *hex_to_rgb(LABELS.labels[0].color)]
    with Image.open(io.BytesIO(keys(h.s3, h.bucket, seeded.shown_ref.split("/", 3)[3]).popitem()[1])) as im:  # type: ignore[union-attr]
        shown = np.asarray(im)
    assert ((shown != truth()) <= (truth() > 0)).all() and (shown != truth()).any()  # an object removed


def test_a_retried_start_writes_the_same_keys_with_the_same_bytes(h: Harness) -> None:
    h.start(6, gold=gold(3), gold_share=0.3, seed_share=0.3)
    first = {**keys(h.s3, h.bucket, f"runs/{RUN}/"), **keys(h.s3, h.bucket, f"inputs/{RUN}/")}
    again = h.start(6, gold=gold(3), gold_share=0.3, seed_share=0.3)
    assert again.gold == 3 and again.seeded == 3  # 0.3 / 0.7 of 6: 2.6, rounded to 3
    assert {**keys(h.s3, h.bucket, f"runs/{RUN}/"), **keys(h.s3, h.bucket, f"inputs/{RUN}/")} == first
    assert len(h.sm.created) == 1


def test_gold_images_go_beside_uploaded_images_under_names_of_their_own(h: Harness, tmp_path: Path) -> None:
    for name in ("pic0.png", "street.png"):
        (tmp_path / name).write_bytes(png(4, 4))
    started = start_run(
        s3=h.s3,
        sagemaker=h.sm,
        table=h.table,
        config=h.config,
        images=str(tmp_path),
        run_id=RUN,
        gold=gold(1),
        gold_share=0.5,
        seed_share=0.0,
    )
    assert (started.objects, started.uploaded, started.gold, started.seeded) == (2, 2, 1, 0)
    stored = keys(h.s3, h.bucket, f"inputs/{RUN}/images/")
    assert stored[f"inputs/{RUN}/images/pic0.png"] == png(4, 4)  # the run's own image is not overwritten
    (gold_key,) = set(stored) - {f"inputs/{RUN}/images/pic0.png", f"inputs/{RUN}/images/street.png"}
    assert gold_key.startswith(f"inputs/{RUN}/images/pic0-") and gold_key.endswith(".png")
    ids = {line["object-id"] for line in h.input_lines(started.job_name)}
    assert ids == {"pic0", "street", Path(gold_key).stem}  # one stem rule for the run's images and gold


def test_an_audit_only_share_takes_no_gold_and_a_bad_share_is_refused(h: Harness) -> None:
    assert h.start(3, gold=gold(2), gold_share=0.0).gold == 0
    assert h.s3.list_objects_v2(Bucket=h.bucket, Prefix=f"runs/{RUN}/gold/").get("KeyCount") == 0
    with pytest.raises(ValueError, match="gold share must be in"):
        h.start(3, gold=gold(2), gold_share=1.0)


# ---------------------------------------------------------------- the orchestrator
def test_gold_is_scored_then_dropped_and_seeded_objects_go_to_the_audit_only(h: Harness) -> None:
    started = h.start(6, gold=gold(3), gold_share=0.3, seed_share=0.1)
    assert (started.gold, started.seeded) == (3, 1)
    index = load_index(h.s3, h.bucket, RUN)
    assert index is not None
    gold_ids = {e.object_id for e in index.entries}
    seeded = next(e for e in index.entries if e.role == "seeded")
    label_only = sorted(gold_ids - {seeded.object_id})

    def labeled(i: int, line: dict[str, Any], entry: Any) -> Any:
        if line["object-id"] == label_only[0]:
            return "no usable annotation: all masks empty"  # a gold object whose labeling failed
        return both_good(i, line, entry)

    complete_labeling(h, started.job_name, labeled)
    r = h.handle(started.job_name)
    assert (r["lines"], r["consolidated"], r["audit"], r["failed"]) == (9, 6, 6, 0)
    assert (r["gold"], r["seeded"], r["gold-failed"]) == (2, 1, 1)
    audit_lines = h.input_lines(r["next"])
    assert h.sm.jobs[r["next"]]["InputConfig"] and len(audit_lines) == 7
    (marked,) = [x for x in audit_lines if x["object-id"] in gold_ids]
    assert marked["object-id"] == seeded.object_id
    assert marked["gtaudit"]["seeded"] == "missing-object"
    assert marked["gtaudit"]["labelers"] == ["w1", "w2"]  # the task page looks like any other
    assert not [x for x in audit_lines if x["object-id"] != seeded.object_id and "seeded" in x["gtaudit"]]

    h.complete_audit(r["next"], lambda i, line: "reject" if line["object-id"] == seeded.object_id else "approve")
    r = h.handle(r["next"])
    assert r["action"] == "finished"
    assert (r["approved"], r["rejected"], r["rework"], r["seeded"]) == (6, 0, 0, 1)
    s = h.summary()
    assert (s["objects-in"], s["approved"], s["failed"], s["needs-attention"], s["balanced"]) == (6, 6, 0, 0, True)
    for outcome in mf.OUTCOMES:
        ids = {x["object-id"] for x in h.lines(mf.cumulative(h.bucket, RUN, outcome))}
        assert not ids & gold_ids, outcome
    audit_job = h.ctx().state.get_job(RUN, r["job"])
    assert audit_job is not None and audit_job.labeler_counts == {
        "w1": {"audited": 6, "rejected": 0},
        "w2": {"audited": 6, "rejected": 0},
    }


def test_a_failed_job_lists_the_runs_objects_only(h: Harness) -> None:
    started = h.start(4, gold=gold(2), gold_share=0.3)
    h.sm.jobs[started.job_name].update(LabelingJobStatus="Failed", FailureReason="workteam deleted")
    assert h.handle(started.job_name, status="Failed")["action"] == "failed"
    failed = h.lines(mf.cumulative(h.bucket, RUN, "failed"))
    assert sorted(x["object-id"] for x in failed) == [f"img{i}" for i in range(4)]
    s = h.summary()
    assert (s["objects-in"], s["failed"], s["balanced"]) == (4, 4, True)


def test_the_sample_policy_audits_an_inaccurate_labeler_and_flags_them_once(s3: Any, bucket: str) -> None:
    h = Harness(s3, bucket, audit_policy="sample", sample_rate=0.0, agreement_threshold=0.5, gold_threshold=0.8)
    started = h.start(8, gold=gold(2), gold_share=0.2, seed_share=0.0)

    def labeled(i: int, line: dict[str, Any], entry: Any) -> Any:
        if entry is not None:  # both label the gold objects: "sloppy" at IoU 0.5, "careful" at 0.95
            truth_scores = {"careful": score(19, 20), "sloppy": score(10, 20)}
            return ["careful", "sloppy"], 0.6, None, truth_scores
        return (["careful"] if i % 2 else ["sloppy"]), 0.99, None, None

    complete_labeling(h, started.job_name, labeled)
    h.sm.fail_next_create = True  # the step crashes after the flag, before the audit job exists
    with pytest.raises(RuntimeError, match="crash"):
        h.handle(started.job_name, owner="req-1")
    r = h.handle(started.job_name, owner="req-1")  # the retry finishes it
    audited = {x["object-id"] for x in h.input_lines(r["next"])}
    lines = h.input_lines(started.job_name)
    by_labeler = {
        x["object-id"]: ("careful" if i % 2 else "sloppy")
        for i, x in enumerate(lines)
        if "/inputs/" not in x["source-ref"]
    }
    # sloppy's gold IoU 0.5 is 1.5 times the tolerated error below 0.8: audited on everything
    assert audited == {oid for oid, w in by_labeler.items() if w == "sloppy"}
    assert (r["audit"], r["not-audited"]) == (len(audited), 8 - len(audited))
    flags = [m for m in h.sns.messages if "below gold accuracy" in m["subject"]]
    assert [(m["labeler"], m["gold-iou"], m["threshold"], m["gold-objects"]) for m in flags] == [
        ("sloppy", 0.5, 0.8, 2)
    ]
    job = h.ctx().state.get_job(RUN, started.job_name)
    assert job is not None and job.flagged == ["sloppy"]
    assert job.labeler_scores["sloppy"]["gold"] == {"inter": 20, "union": 40, "objects": 2}
    assert job.labeler_scores["careful"]["gold"] == {"inter": 38, "union": 40, "objects": 2}


# ---------------------------------------------------------------- what a worker can read
def test_nothing_of_gold_reaches_a_labeling_or_an_audit_task_input(h: Harness) -> None:
    started = h.start(5, gold=gold(2), gold_share=0.3, seed_share=0.3)
    index = load_index(h.s3, h.bucket, RUN)
    assert index is not None
    entries = index.by_object()
    pre = PreConfig(LABELS, "en", (h.bucket,))
    for line in h.input_lines(started.job_name):
        task = json.dumps(labeling_task_input(line, pre).dump(), ensure_ascii=False)
        assert "gold" not in task and "/runs/" not in task and "truth" not in task, task
        assert line["object-id"] not in entries or entries[line["object-id"]].truth_ref not in task

    complete_labeling(h, started.job_name, both_good)
    audit_lines = h.input_lines(h.handle(started.job_name)["next"])
    seeded = [x for x in audit_lines if "seeded" in x["gtaudit"]]
    assert len(seeded) == 2
    for line in seeded:
        task = audit_task_input(line, language="en", allowed=[h.bucket]).dump()
        clean = {**line, "gtaudit": {k: v for k, v in line["gtaudit"].items() if k != "seeded"}}
        assert task == audit_task_input(clean, language="en", allowed=[h.bucket]).dump()
        assert "seeded" not in json.dumps(task) and str(index_uri(h.bucket, RUN)) not in json.dumps(task)
