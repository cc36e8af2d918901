"""labeling_post against moto: every contract variant and every kind of bad input."""

from __future__ import annotations

import copy
import io
import json
import urllib.parse
from typing import Any

import numpy as np
import pytest
from gen_labeling_events import ANIMAL, ARN, GRID_ANIMAL, answer, inline
from gtaudit.exceptions import InvalidEventError
from gtaudit.names import unique_stems
from gtaudit.overlay.jobs import OverlaySettings, render_mask_overlays
from gtaudit.s3uri import parse_s3_uri
from PIL import Image
from support import EVENTS, load_event

MASK_DIR = "out/job-a/annotations/consolidated-annotation/output"
# Masks are named after their images: street 01 ☃.jpg (object 0 or 7), field-02.jpg (1), field-03.jpg (2).
STREET, FIELD = "street 01 ☃_2026-11-24T100000.png", "field-02_2026-11-24T100000.png"
EXPECTED_0 = [  # the vote of GRID_A, GRID_B and GRID_C (see gen_labeling_events.py)
    "............",
    ".pppp.......",
    ".pppp...aa..",
    ".pppp...aa..",
    ".pppp...aa..",
    "........aa..",
    "............",
    "............",
]
EXPECTED_ANIMAL = GRID_ANIMAL  # one worker: the vote is its mask
GRID_A = [
    "............",
    ".pppp.......",
    ".pppp..aaa..",
    ".pppp..aaa..",
    ".pppp..aaa..",
    ".......aaa..",
    "............",
    "............",
]


def seed(s3: Any, case: str) -> dict[str, Any]:
    """Put the case's request (and answer files) into moto; return its event."""
    objects = json.loads((EVENTS / "requests" / f"labeling_post-{case}.json").read_text(encoding="utf-8"))
    for uri, body in objects.items():
        u = parse_s3_uri(uri)
        s3.put_object(Bucket=u.bucket, Key=u.key, Body=json.dumps(body).encode())
    return load_event(f"labeling_post-{case}")


def invoke(event: dict[str, Any], ctx: Any) -> list[dict[str, Any]]:
    from labeling_post import app

    result: list[dict[str, Any]] = app.lambda_handler(event, ctx)
    return result


def by_id(result: list[dict[str, Any]], attr: str) -> dict[str, dict[str, Any]]:
    return {r["datasetObjectId"]: r["consolidatedAnnotation"]["content"][attr] for r in result}


def read_mask(s3: Any, uri: str) -> tuple[Image.Image, dict[str, str]]:
    u = parse_s3_uri(uri)
    obj = s3.get_object(Bucket=u.bucket, Key=u.key)
    return Image.open(io.BytesIO(obj["Body"].read())), obj["Metadata"]


def as_grid(img: Image.Image, color_map: dict[str, Any]) -> list[str]:
    """The mask as characters: '.' background, else the class name's first letter."""
    chars = {int(i): ("." if v["class-name"] == "BACKGROUND" else v["class-name"][0]) for i, v in color_map.items()}
    arr = np.asarray(img)
    return ["".join(chars[int(v)] for v in row) for row in arr]


def test_content_variant_votes_three_workers(s3: Any, bucket: str, lambda_context: Any) -> None:
    result = invoke(seed(s3, "content"), lambda_context)
    out = by_id(result, "label-r1")
    assert [r["datasetObjectId"] for r in result] == ["0", "1"]
    c0 = out["0"]
    assert c0["status"] == "consolidated"
    assert c0["mask-ref"] == f"s3://{bucket}/{MASK_DIR}/{STREET}"
    assert c0["image-size"] == {"width": 12, "height": 8}
    assert c0["workers"] == ["private.us-east-1.aaaa", "private.us-east-1.bbbb", "private.us-east-1.cccc"]
    assert c0["agreement"] == 0.25  # IoU(A,B)=24/32, IoU(A,C)=IoU(B,C)=0
    assert c0["excluded"] == []
    assert c0["internal-color-map"] == {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.25},
        "1": {"class-name": "person", "hex-color": "#2ca02c", "confidence": 0.25},
        "2": {"class-name": "animal", "hex-color": "#1f77b4", "confidence": 0.25},
    }
    img, meta = read_mask(s3, c0["mask-ref"])
    assert img.mode == "P"
    assert img.getpalette()[:9] == [255, 255, 255, 44, 160, 44, 31, 119, 180]
    assert as_grid(img, c0["internal-color-map"]) == EXPECTED_0
    assert meta["source-ref"] == urllib.parse.quote(f"s3://{bucket}/images/street 01 ☃.jpg", safe=":/")
    assert meta["dataset-object-id"] == "0"
    c1 = out["1"]
    assert c1["agreement"] == 1.0
    assert c1["mask-ref"] == f"s3://{bucket}/{MASK_DIR}/{FIELD}"
    img, _ = read_mask(s3, c1["mask-ref"])
    assert as_grid(img, c1["internal-color-map"]) == EXPECTED_ANIMAL


def test_rerun_writes_identical_keys_and_bytes(s3: Any, bucket: str, lambda_context: Any) -> None:
    event = seed(s3, "content")
    first = invoke(event, lambda_context)
    uri = by_id(first, "label-r1")["0"]["mask-ref"]
    u = parse_s3_uri(uri)
    bytes1 = s3.get_object(Bucket=u.bucket, Key=u.key)["Body"].read()
    second = invoke(event, lambda_context)
    assert second == first
    assert s3.get_object(Bucket=u.bucket, Key=u.key)["Body"].read() == bytes1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=MASK_DIR)["Contents"]]
    assert sorted(keys) == sorted(
        [
            f"{MASK_DIR}/{FIELD}",
            f"{MASK_DIR}/{STREET}",
            f"{MASK_DIR}/names/field-02.json",
            f"{MASK_DIR}/names/street 01 ☃.json",
        ]
    )


def test_worker_order_in_the_request_does_not_matter(s3: Any, bucket: str, lambda_context: Any) -> None:
    event = seed(s3, "content")
    first = invoke(event, lambda_context)
    u = parse_s3_uri(event["payload"]["s3Uri"])
    request = json.loads(s3.get_object(Bucket=u.bucket, Key=u.key)["Body"].read())
    for item in request:
        item["annotations"].reverse()
    s3.put_object(Bucket=u.bucket, Key=u.key, Body=json.dumps(request).encode())
    assert invoke(event, lambda_context) == first


def test_s3uri_variant_without_categories_or_output_config(s3: Any, bucket: str, lambda_context: Any) -> None:
    result = invoke(seed(s3, "s3uri"), lambda_context)
    c0 = by_id(result, "label-r1")["0"]
    assert c0["status"] == "consolidated"
    # No outputConfig: the annotations root is derived from the request's location.
    assert c0["mask-ref"] == f"s3://{bucket}/{MASK_DIR}/{STREET}"
    assert c0["workers"] == ["private.us-east-1.aaaa", "private.us-east-1.bbbb"]
    # No labelCategories: first-seen order over workers sorted by ID (aaaa maps person, animal).
    names = [c0["internal-color-map"][str(i)]["class-name"] for i in range(3)]
    assert names == ["BACKGROUND", "person", "animal"]
    assert c0["agreement"] == 0.75
    img, _ = read_mask(s3, c0["mask-ref"])
    # Two workers: where they disagree it is a 1-1 tie and the lower index wins (BACKGROUND, or
    # person over animal).
    assert as_grid(img, c0["internal-color-map"]) == EXPECTED_0


def test_console_event_with_null_categories_and_unknown_keys(s3: Any, bucket: str, lambda_context: Any) -> None:
    result = invoke(seed(s3, "no-categories"), lambda_context)
    c = by_id(result, "label-r2")["7"]
    assert c["status"] == "consolidated"
    assert c["agreement"] is None
    assert c["workers"] == ["private.us-east-1.aaaa"]
    cmap = c["internal-color-map"]
    assert [cmap[str(i)]["class-name"] for i in range(3)] == ["BACKGROUND", "animal", "person"]
    assert {v["confidence"] for v in cmap.values()} == {1.0}
    img, _ = read_mask(s3, c["mask-ref"])
    assert as_grid(img, cmap) == GRID_A  # one worker: its own mask, edge and near colours snapped


def test_bad_input_excludes_annotations_and_never_sinks_the_batch(
    s3: Any, bucket: str, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    result = invoke(seed(s3, "bad-input"), lambda_context)
    out = by_id(result, "label-r1")
    # The item without a datasetObjectId cannot be answered; every other object gets one entry.
    assert sorted(out) == ["0", "1", "2", "3"]
    c0 = out["0"]
    assert c0["status"] == "consolidated"
    assert c0["workers"] == ["private.us-east-1.aaaa", "private.us-east-1.bbbb"]
    reasons = {e["workerId"].rsplit(".", 1)[1]: e["reason"] for e in c0["excluded"]}
    assert set(reasons) == {
        "b-corrupt", "b-size", "b-unknown", "b-empty", "b-missing",
        "b-unreadable", "b-notjson", "b-notbase64", "b-notpng",
    }  # fmt: skip
    assert "not a readable PNG" in reasons["b-corrupt"]
    assert "not a readable PNG" in reasons["b-notpng"]
    assert "10x8" in reasons["b-size"] and "12x8" in reasons["b-size"]
    assert "match no label colour" in reasons["b-unknown"]
    assert reasons["b-empty"].startswith("empty answer")
    assert reasons["b-missing"].startswith("missing annotation")
    assert "unreadable (NoSuchKey)" in reasons["b-unreadable"]
    assert "not JSON" in reasons["b-notjson"]
    assert "not base64" in reasons["b-notbase64"]
    assert [e["workerId"] for e in c0["excluded"]] == sorted(e["workerId"] for e in c0["excluded"])
    img, _ = read_mask(s3, c0["mask-ref"])
    assert as_grid(img, c0["internal-color-map"])[1] == ".pppp......."

    c1 = out["1"]
    assert c1["status"] == "failed"
    assert c1["failure-reason"].startswith("no usable annotation: ")
    assert c1["workers"] == []
    assert len(c1["excluded"]) == 2
    assert "mask-ref" not in c1

    assert out["2"]["status"] == "consolidated" and out["2"]["agreement"] is None
    assert out["3"] == {
        "status": "failed",
        "failure-reason": "no usable annotation: no annotations",
        "workers": [],
        "excluded": [],
    }
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{MASK_DIR}/", Delimiter="/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in listed} == {STREET, "field-03_2026-11-24T100000.png"}


def test_malformed_event_raises_a_typed_error_without_the_event(s3: Any, bucket: str, lambda_context: Any) -> None:
    event = copy.deepcopy(load_event("labeling_post-content"))
    del event["payload"]
    event["labelingJobArn"] = "secret-looking-value-xyz"
    with pytest.raises(InvalidEventError) as err:
        invoke(event, lambda_context)
    assert "payload" in str(err.value)
    assert "secret-looking-value-xyz" not in str(err.value)


@pytest.mark.parametrize("uri", ["https://example.com/x.json", "s3://Bad_Bucket/x.json"])
def test_payload_uri_must_be_s3(s3: Any, bucket: str, lambda_context: Any, uri: str) -> None:
    event = copy.deepcopy(load_event("labeling_post-content"))
    event["payload"]["s3Uri"] = uri
    with pytest.raises(InvalidEventError):
        invoke(event, lambda_context)


@pytest.mark.parametrize("body", [b'{"datasetObjectId": "0"}', b"[{not json", b"\xff\xfe"])
def test_request_that_is_not_an_array_is_an_invalid_event(
    s3: Any, bucket: str, lambda_context: Any, body: bytes
) -> None:
    event = seed(s3, "content")
    u = parse_s3_uri(event["payload"]["s3Uri"])
    s3.put_object(Bucket=u.bucket, Key=u.key, Body=body)
    with pytest.raises(InvalidEventError):
        invoke(event, lambda_context)


def test_every_sample_event_fits_the_handler_model() -> None:
    from gtaudit.models import parse_event
    from gtaudit.models.groundtruth import PostAnnotationEvent

    files = sorted(EVENTS.glob("labeling_post-*.json"))
    assert len(files) >= 4
    for f in files:
        event = parse_event(PostAnnotationEvent, json.loads(f.read_text(encoding="utf-8")))
        assert (EVENTS / "requests" / f.name).is_file()
        assert event.payload.s3_uri in json.loads((EVENTS / "requests" / f.name).read_text(encoding="utf-8"))


def test_a_request_at_the_bucket_root_fails_each_object_with_the_reason_not_the_batch(
    s3: Any, bucket: str, lambda_context: Any
) -> None:
    """The documented event: payload at s3://bucket/annotations.json, no outputConfig."""
    event = seed(s3, "content")
    u = parse_s3_uri(event["payload"]["s3Uri"])
    body = s3.get_object(Bucket=u.bucket, Key=u.key)["Body"].read()
    s3.put_object(Bucket=bucket, Key="annotations.json", Body=body)
    event["payload"]["s3Uri"] = f"s3://{bucket}/annotations.json"
    event.pop("outputConfig", None)
    before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    out = invoke(event, lambda_context)
    assert out and all(
        e["consolidatedAnnotation"]["content"][event["labelAttributeName"]]["failure-reason"].startswith(
            "no known place for the consolidated masks"
        )
        for e in out
    )
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])} == before  # nothing written


def put_batch(s3: Any, bucket: str, stamp: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One consolidation request of job-a, named by its time as Ground Truth names them."""
    request = f"{MASK_DIR.rsplit('/', 1)[0]}/consolidation-request/iteration-1/{stamp}.json"
    s3.put_object(Bucket=bucket, Key=request, Body=json.dumps(items).encode())
    return {
        "version": "2018-10-16",
        "labelingJobArn": ARN,
        "labelAttributeName": "label-r1",
        "labelCategories": ["person", "animal"],
        "outputConfig": f"s3://{bucket}/out/job-a/annotations",
        "payload": {"s3Uri": f"s3://{bucket}/{request}"},
    }


def painted(oid: str, source: str) -> dict[str, Any]:
    """A data object one worker painted (12x8, as its image)."""
    return {
        "datasetObjectId": oid,
        "dataObject": {"s3Uri": source},
        "annotations": [inline("private.us-east-1.aaaa", answer(GRID_ANIMAL, {"animal": ANIMAL}))],
    }


def test_images_keep_their_names_and_equal_names_in_two_batches_stay_apart(
    s3: Any, bucket: str, lambda_context: Any
) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (12, 8), (90, 90, 90)).save(photo, "JPEG")
    sources = {k: f"s3://{bucket}/{k}" for k in ("a/cat.jpg", "b/cat.jpg", "images/猫 の 写真 (1).jpg")}
    for key in sources:
        s3.put_object(Bucket=bucket, Key=key, Body=photo.getvalue())
    first = put_batch(
        s3,
        bucket,
        "2026-11-24_10:00:00",
        [painted("0", sources["a/cat.jpg"]), painted("1", sources["images/猫 の 写真 (1).jpg"])],
    )
    second = put_batch(s3, bucket, "2026-11-24_11:00:00", [painted("2", sources["b/cat.jpg"])])
    refs = {**by_id(invoke(first, lambda_context), "label-r1"), **by_id(invoke(second, lambda_context), "label-r1")}
    masks = {oid: parse_s3_uri(r["mask-ref"]).name for oid, r in refs.items()}
    # b/cat.jpg finds "cat" taken by a/cat.jpg (another batch): it takes the name the run's start gave it.
    start_b = unique_stems([(sources["a/cat.jpg"], "cat.jpg"), (sources["b/cat.jpg"], "cat.jpg")])[1]
    assert masks == {
        "0": "cat_2026-11-24T100000.png",
        "1": "猫 の 写真 (1)_2026-11-24T100000.png",
        "2": f"{start_b}_2026-11-24T110000.png",
    }
    assert invoke(second, lambda_context) == invoke(second, lambda_context)  # a retried batch: same keys
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{MASK_DIR}/", Delimiter="/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == sorted(masks.values())  # no fourth mask
    claims = s3.list_objects_v2(Bucket=bucket, Prefix=f"{MASK_DIR}/names/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in claims) == sorted(
        ["cat.json", f"{start_b}.json", "猫 の 写真 (1).json"]
    )
    _, meta = read_mask(s3, refs["2"]["mask-ref"])
    assert meta == {"dataset-object-id": "2", "source-ref": sources["b/cat.jpg"]}

    report = render_mask_overlays(s3, [r["mask-ref"] for r in refs.values()], OverlaySettings(allowed=(bucket,)))
    assert report.count("written") == 3, report.as_dict()
    overlays = s3.list_objects_v2(Bucket=bucket, Prefix="out/job-a/overlays/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in overlays) == sorted(
        ["cat.jpg", f"{start_b}.jpg", "猫 の 写真 (1).jpg"]
    )
