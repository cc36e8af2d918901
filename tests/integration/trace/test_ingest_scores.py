"""Scores end to end on moto: labeling_post scores a real batch (gold objects too), worktime records the files.

One labeling batch of four objects: an ordinary one (three workers), a gold one, a gold one whose
truth is missing, and a seeded one. Then the worktime handler records each scores file from its
``Object Created`` event, twice, and the score items are read back per object and worker. A
seeded audit is recorded as the auditor's outcome and judges no labeler.
"""

from __future__ import annotations

import copy
import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
from gen_labeling_events import GRID_A, GRID_B, GRID_C, answer, inline
from gtaudit.trace import lineage
from gtaudit.trace.ingest import ManifestIndex, record_file
from PIL import Image
from support import REGION, load_event

RUN = "20261124t101500-3f9c"
JOB = f"gtaudit-labeling-r1-{RUN}"
AUDIT_JOB = f"gtaudit-audit-r1-{RUN}"
ARN = f"arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{JOB}"
A, B, C = "private.us-east-1.aaaa", "private.us-east-1.bbbb", "private.us-east-1.cccc"
AUD = "private.us-east-1.auditor"
COLORS = {"person": "#2ca02c", "animal": "#1f77b4"}
REQUEST = f"jobs/{JOB}/annotations/consolidated-annotation/consolidation-request/iteration-1/2026-11-24_10:00:00.json"
SCORES = f"jobs/{JOB}/annotations/consolidated-annotation/scores"
# (image, object-id, annotations) in manifest order: datasetObjectId is the index.
OBJECTS = [
    ("plain.jpg", "plain-1", [(A, GRID_A), (B, GRID_B), (C, GRID_C)]),
    ("g1.jpg", "g1-1", [(A, GRID_A), (B, GRID_B)]),  # gold: the truth is A's mask
    ("g2.jpg", "g2-1", [(A, GRID_A), (B, GRID_B)]),  # gold: the truth is missing
    ("g3.jpg", "g3-1", [(A, GRID_A), (B, GRID_B)]),  # seeded: the truth without its animal
]


def classes(grid: list[str]) -> np.ndarray:
    """A worker grid as the classes labeling_post reads (person 1, animal 2; 'e' and 'n' snap to person)."""
    return np.array([[{"p": 1, "e": 1, "n": 1, "a": 2}.get(c, 0) for c in row] for row in grid], dtype=np.uint8)


def indexed_png(arr: np.ndarray) -> bytes:
    img = Image.fromarray(arr)
    img.putpalette([v for c in ("#ffffff", *COLORS.values()) for v in bytes.fromhex(c[1:])])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class FakeSageMaker:
    """DescribeLabelingJob: each job's input manifest under runs/<run>/manifests/ (moto has no GT)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        kind = "audit" if LabelingJobName == AUDIT_JOB else "labeling"
        uri = f"s3://{self.bucket}/runs/{RUN}/manifests/r1/{kind}.manifest"
        return {"InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": uri}}}}


def put(s3: Any, bucket: str, key: str, body: bytes | str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)


def seed_run(s3: Any, bucket: str) -> None:
    """The run's labeling manifest, its gold (index, truths, one shown mask) and the batch."""
    lines = [{"source-ref": f"s3://{bucket}/inputs/{RUN}/images/{img}", "object-id": oid} for img, oid, _ in OBJECTS]
    put(s3, bucket, f"runs/{RUN}/manifests/r1/labeling.manifest", "".join(json.dumps(x) + "\n" for x in lines))
    truth = classes(GRID_A)
    shown = np.where(truth == 2, 0, truth).astype(np.uint8)
    gold = f"s3://{bucket}/runs/{RUN}/gold"
    for oid in ("g1-1", "g3-1"):
        put(s3, bucket, f"runs/{RUN}/gold/truth/{oid}.png", indexed_png(truth))
    put(s3, bucket, f"runs/{RUN}/gold/shown/g3-1.png", indexed_png(shown))
    entries = [
        {"source-ref": lines[i]["source-ref"], "object-id": lines[i]["object-id"],
         "truth-ref": f"{gold}/truth/{lines[i]['object-id']}.png"}
        for i in (1, 2, 3)
    ]  # fmt: skip
    entries[2].update({"role": "seeded", "defect": "missing-object", "shown-ref": f"{gold}/shown/g3-1.png"})
    put(
        s3,
        bucket,
        f"runs/{RUN}/gold/index.json",
        json.dumps({"version": 1, "labels": list(COLORS), "entries": entries}),
    )
    request = [
        {
            "datasetObjectId": str(i),
            "dataObject": {"s3Uri": lines[i]["source-ref"]},
            "annotations": [inline(w, answer(grid, COLORS)) for w, grid in annotations],
        }
        for i, (_, _, annotations) in enumerate(OBJECTS)
    ]
    put(s3, bucket, REQUEST, json.dumps(request))


def consolidate(bucket: str, lambda_context: Any, log: io.StringIO) -> dict[str, dict[str, Any]]:
    """Run labeling_post on the batch, its log lines into ``log``; each object's label by object ID."""
    from labeling_post import app

    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = handler.setStream(log)
    event = {
        "version": "2018-10-16",
        "labelingJobArn": ARN,
        "labelAttributeName": "label-r1",
        "labelCategories": list(COLORS),
        "outputConfig": f"s3://{bucket}/jobs/{JOB}/annotations",
        "payload": {"s3Uri": f"s3://{bucket}/{REQUEST}"},
    }
    try:
        result = app.lambda_handler(event, lambda_context)
    finally:
        handler.setStream(stream)
    return {OBJECTS[int(r["datasetObjectId"])][1]: r["consolidatedAnnotation"]["content"]["label-r1"] for r in result}


@pytest.fixture
def worktime(s3: Any, bucket: str, trace_table: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The worktime handler on moto, its manifests looked up through the fake DescribeLabelingJob."""
    from worktime import app

    monkeypatch.setattr(app, "TABLE", trace_table)
    monkeypatch.setattr(app, "s3", s3)
    monkeypatch.setattr(app, "ddb", boto3.client("dynamodb", region_name=REGION))
    monkeypatch.setattr(app, "manifests", ManifestIndex(s3, FakeSageMaker(bucket)))
    return app


def object_created(bucket: str, key: str) -> dict[str, Any]:
    """The sample ``Object Created`` event of a scores file, for another key."""
    event = copy.deepcopy(load_event("worktime-scores"))
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return event


def count(trace_table: str) -> int:
    return int(boto3.client("dynamodb", region_name=REGION).scan(TableName=trace_table, Select="COUNT")["Count"])


def test_labeling_post_scores_reach_the_trace_table_per_worker(
    s3: Any, bucket: str, trace_table: str, worktime: Any, lambda_context: Any
) -> None:
    seed_run(s3, bucket)
    log = io.StringIO()
    labels = consolidate(bucket, lambda_context, log)
    assert "batch consolidated" in log.getvalue() and "gold" not in log.getvalue().lower()  # nothing of gold logged

    assert all(label["status"] == "consolidated" for label in labels.values())
    assert "gold" not in labels["plain-1"] and list(labels["plain-1"]["scores"]) == [A, B, C]
    assert labels["g1-1"]["gold"]["scores"][A]["iou"] == 1.0 and labels["g1-1"]["gold"]["scores"][B]["iou"] < 1.0
    assert labels["g2-1"]["gold"]["scores"] == {} and "truth unusable" in labels["g2-1"]["gold"]["failure-reason"]
    assert labels["g3-1"]["gold"]["seeded"] == "missing-object"
    mask = s3.get_object(Bucket=bucket, Key=labels["g3-1"]["mask-ref"].split("/", 3)[3])["Body"].read()
    assert mask == s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/gold/shown/g3-1.png")["Body"].read()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=SCORES)["Contents"])
    assert keys == [f"{SCORES}/{name}.json" for name in ("g1", "g2", "g3", "plain")]

    workers = {"plain": 3, "g1": 2, "g2": 2, "g3": 2}
    for key in keys:
        out = worktime.lambda_handler(object_created(bucket, key), lambda_context)
        n = workers[key.rsplit("/", 1)[1].removesuffix(".json")]
        assert (out["scores"], out["written"], out["missing"]) == (n, n, [])
    items = count(trace_table)

    ddb = boto3.client("dynamodb", region_name=REGION)
    for oid, label in labels.items():
        scores = {it["worker_id"]: it for it in lineage(ddb, trace_table, oid) if it["kind"] == "score"}
        assert sorted(scores) == sorted(label["scores"]), oid
        for worker, item in scores.items():
            assert (item["job"], item["stage"], item["round"], item["object_id"]) == (JOB, "labeling", 1, oid)
            assert item["iou"] == label["scores"][worker]["iou"]
            assert item["class_iou"] == {
                n: [c["inter"], c["union"]] for n, c in label["scores"][worker]["classes"].items()
            }
            assert item["gold"] is ("gold" in label)
            truth = label.get("gold", {}).get("scores", {}).get(worker)
            assert item.get("gold_iou") == (truth["iou"] if truth else None)
            assert item.get("seeded") == label.get("gold", {}).get("seeded")
    assert lineage(ddb, trace_table, "g3-1")[0]["seeded"] == "missing-object"

    # The same events again (EventBridge delivers at least once): nothing changes.
    for key in keys:
        out = worktime.lambda_handler(object_created(bucket, key), lambda_context)
        assert out["written"] == 0 and out["unchanged"] == out["scores"] > 0
    assert count(trace_table) == items


def test_a_seeded_audit_records_the_auditors_outcome_and_no_verdict_on_the_labelers(
    s3: Any, bucket: str, trace_table: str
) -> None:
    hand_over = {"stage": "audit", "round": 1, "labelers": [A, B], "labeling-job": JOB}
    lines = [
        {"source-ref": f"s3://{bucket}/jobs/{JOB}/overlays/g3.jpg", "object-id": "g3-1",
         "gtaudit": {**hand_over, "seeded": "missing-object"}},
        {"source-ref": f"s3://{bucket}/jobs/{JOB}/overlays/plain.jpg", "object-id": "plain-1", "gtaudit": hand_over},
    ]  # fmt: skip
    put(s3, bucket, f"runs/{RUN}/manifests/r1/audit.manifest", "".join(json.dumps(x) + "\n" for x in lines))
    ddb = boto3.client("dynamodb", region_name=REGION)
    manifests = ManifestIndex(s3, FakeSageMaker(bucket))
    rejects = {"approve": {"on": False}, "reject": {"on": True}, "reason-missing-object": {"on": True}}
    for index, content in enumerate([rejects, rejects]):
        key = f"jobs/{AUDIT_JOB}/annotations/worker-response/iteration-1/{index}/2026-11-24_11:00:0{index}.json"
        doc = {
            "answers": [{"workerId": AUD, "submissionTime": f"2026-11-24T11:00:0{index}Z", "answerContent": content}]
        }
        put(s3, bucket, key, json.dumps(doc))
        record_file(s3=s3, ddb=ddb, table=trace_table, manifests=manifests, bucket=bucket, key=key,
                    now=datetime(2026, 11, 24, 12, tzinfo=UTC))  # fmt: skip

    [seeded] = lineage(ddb, trace_table, "g3-1")  # the audit task only: no verdict on A or B
    assert (seeded["kind"], seeded["seeded"], seeded["seeded_outcome"]) == ("task", "missing-object", "caught")
    assert "judged" not in seeded
    plain = lineage(ddb, trace_table, "plain-1")
    assert sorted(it["labeler"] for it in plain if it["kind"] == "verdict") == [A, B]
    assert not any("seeded" in it for it in plain)
