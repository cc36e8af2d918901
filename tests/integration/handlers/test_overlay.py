"""The overlay Lambda against moto: S3 events, chunks, failures, idempotence, the template's rule."""

from __future__ import annotations

import importlib
import io
import json
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from gtaudit.exceptions import InvalidEventError, RetryableError
from gtaudit.models.overlay import MAX_CHUNK
from gtaudit.overlay.fanout import fan_out, masks_missing_overlays
from gtaudit.overlay.render import render_overlay
from gtaudit.s3uri import S3Uri
from gtaudit_local.template import load_template
from PIL import Image, ImageOps
from support import REGION, ROOT, LambdaContext, load_event

JOB = "jobs/demo-labeling-r1"
OUTPUT = f"{JOB}/annotations/consolidated-annotation/output"
IMAGE = ROOT / "samples" / "images" / "chelsea-exif6.jpg"  # stored 300x451, EXIF Orientation=6
MASK = ROOT / "samples" / "reference" / "chelsea-exif6.png"  # P mode, displayed size 451x300
ORIGINAL_KEY = "images/猫 chelsea+1.jpg"  # needs percent-encoding in metadata


def put_mask(s3: Any, bucket: str, key: str, data: bytes, *, source: str | None, object_id: str | None) -> None:
    meta = {}
    if source is not None:
        meta["source-ref"] = quote(source, safe=":/")
    if object_id is not None:
        meta["dataset-object-id"] = object_id
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/png", Metadata=meta)


@pytest.fixture
def job(s3: Any, bucket: str) -> dict[str, Any]:
    """An original and its consolidated mask in moto, as labeling_post leaves them."""
    s3.put_object(Bucket=bucket, Key=ORIGINAL_KEY, Body=IMAGE.read_bytes())
    mask_key = f"{OUTPUT}/0_2026-11-24T100000.png"
    put_mask(s3, bucket, mask_key, MASK.read_bytes(), source=f"s3://{bucket}/{ORIGINAL_KEY}", object_id="0")
    return {"mask_key": mask_key, "overlay_key": f"{JOB}/overlays/0.jpg"}


@pytest.fixture
def app(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler module, imported inside moto with the template's environment."""
    monkeypatch.setenv("ALLOWED_BUCKETS", bucket)
    monkeypatch.setenv("OVERLAY_OPACITY", "0.5")
    import overlay.app as module

    return importlib.reload(module)


def get(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_event_file_renders_the_overlay(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    result = app.lambda_handler(load_event("overlay-mask-created"), LambdaContext())
    assert result["written"] == 1 and result["failed"] == 0
    assert result["results"][0]["overlay"] == f"s3://{bucket}/{job['overlay_key']}"
    head = s3.head_object(Bucket=bucket, Key=job["overlay_key"])
    assert head["ContentType"] == "image/jpeg"
    body = get(s3, bucket, job["overlay_key"])
    assert body == render_overlay(IMAGE.read_bytes(), MASK.read_bytes(), opacity=0.5)
    overlay = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=int)
    original = np.asarray(ImageOps.exif_transpose(Image.open(IMAGE)).convert("RGB"), dtype=int)
    assert overlay.shape == original.shape == (300, 451, 3)  # displayed orientation
    mask = np.asarray(Image.open(MASK))
    background, labelled = mask == 0, mask > 0
    assert background.any() and labelled.any()
    # JPEG re-encoding: background stays the photo, labelled pixels move towards the label colour.
    assert np.abs(overlay[background] - original[background]).mean() < 3
    palette = np.array(Image.open(MASK).getpalette()[:768]).reshape(-1, 3)
    expected = (original[labelled] + palette[mask[labelled]]) / 2
    assert np.abs(overlay[labelled] - expected).mean() < 3


def test_rerun_writes_identical_bytes(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    event = load_event("overlay-mask-created")
    app.lambda_handler(event, LambdaContext())
    first = get(s3, bucket, job["overlay_key"])
    app.lambda_handler(event, LambdaContext())
    assert get(s3, bucket, job["overlay_key"]) == first


def test_keys_that_are_not_masks_are_ignored(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    result = app.lambda_handler(load_event("overlay-not-a-mask"), LambdaContext())
    assert (result["written"], result["ignored"], result["results"]) == (0, 1, [])
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"{JOB}/overlays/")


def test_one_bad_mask_never_sinks_a_chunk(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    source = f"s3://{bucket}/{ORIGINAL_KEY}"
    mask = MASK.read_bytes()
    put_mask(s3, bucket, f"{OUTPUT}/1_t.png", mask, source=None, object_id="1")  # no source-ref
    small = io.BytesIO()
    Image.new("P", (10, 10)).save(small, "PNG")
    put_mask(s3, bucket, f"{OUTPUT}/2_t.png", small.getvalue(), source=source, object_id="2")  # size
    put_mask(s3, bucket, f"{OUTPUT}/4_t.png", mask, source="s3://someone-elses-bucket/x.jpg", object_id="4")
    put_mask(s3, bucket, f"{OUTPUT}/5_t.png", mask, source="https://example.com/x.jpg", object_id="5")
    uris = [f"s3://{bucket}/{k}" for k in (job["mask_key"], *(f"{OUTPUT}/{n}_t.png" for n in (1, 2, 3, 4, 5)))]
    uris.append(f"s3://{bucket}/{JOB}/manifests/output/output.manifest")
    result = app.lambda_handler({"masks": uris}, LambdaContext())
    assert (result["written"], result["failed"], result["ignored"]) == (1, 5, 1)
    errors = {r["mask"].rsplit("/", 1)[-1]: r.get("error") for r in result["results"]}
    assert errors == {
        "0_2026-11-24T100000.png": None,
        "1_t.png": "InvalidMaskError",
        "2_t.png": "SizeMismatchError",
        "3_t.png": "NoSuchKey",
        "4_t.png": "ForbiddenLocationError",
        "5_t.png": "InvalidS3UriError",
    }
    by_name = {r["mask"].rsplit("/", 1)[-1]: r for r in result["results"]}
    assert "10x10" in by_name["2_t.png"]["message"] and "451x300" in by_name["2_t.png"]["message"]
    assert "retryable" not in by_name["3_t.png"]  # a missing object will not appear by retrying
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{JOB}/overlays/")["Contents"])
    # Each mask that can never be rendered leaves its reason for the orchestrator, under its name.
    assert keys == sorted([job["overlay_key"], *(f"{JOB}/overlays/{n}.failed.json" for n in (1, 2, 3, 4, 5))])
    marker = json.loads(s3.get_object(Bucket=bucket, Key=f"{JOB}/overlays/2.failed.json")["Body"].read())
    assert marker["mask"].endswith("/2_t.png") and "10x10" in marker["reason"]


def throttle(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_down(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject")

    monkeypatch.setattr(app.s3, "get_object", slow_down)


def test_transient_failure_of_an_event_raises_for_lambda_to_retry(
    app: ModuleType, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle(app, monkeypatch)
    with pytest.raises(RetryableError):
        app.lambda_handler(load_event("overlay-mask-created"), LambdaContext())


def test_transient_failure_in_a_chunk_is_reported_retryable(
    app: ModuleType, bucket: str, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle(app, monkeypatch)
    result = app.lambda_handler(load_event("overlay-chunk"), LambdaContext())
    assert result["failed"] == 2
    assert all(r["retryable"] and r["message"].startswith("SlowDown") for r in result["results"])


def test_masks_are_deferred_when_time_runs_out(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    class Late(LambdaContext):
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 10_000

    result = app.lambda_handler(load_event("overlay-chunk"), Late())
    assert (result["deferred"], result["written"]) == (2, 0)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"{JOB}/overlays/")


@pytest.mark.parametrize(
    "event",
    [
        {"masks": "s3://gtaudit-test-data/x.png"},
        {"masks": ["https://example.com/x.png"]},
        {"masks": [f"s3://gtaudit-test-data/{i}.png" for i in range(MAX_CHUNK + 1)]},
        {"detail-type": "Object Created", "source": "aws.s3"},
        {
            "detail-type": "Object Deleted",
            "source": "aws.s3",
            "detail": {"bucket": {"name": "b-b"}, "object": {"key": f"{OUTPUT}/0_t.png"}},
        },
        [],
    ],
)
def test_malformed_events_are_rejected(app: ModuleType, event: Any) -> None:
    with pytest.raises(InvalidEventError):
        app.lambda_handler(event, LambdaContext())


@pytest.mark.parametrize(
    ("mask_file", "object_id", "overlay_file"),
    [
        ("12_2026-11-24T100000.png", None, "12.jpg"),  # the built-in type's <index>_<timestamp>.png
        ("猫 の 写真 (1)_2026-11-24T100000.png", "3", "猫 の 写真 (1).jpg"),  # labeling_post's <name>_<ts>.png
        ("IMG_0042_2026-11-24T100000.png", "4", "IMG_0042.jpg"),
        ("dog_t.png", "../5", "dog.jpg"),  # the key names the overlay, never the metadata
    ],
)
def test_the_overlay_is_named_after_the_mask(
    app: ModuleType, s3: Any, bucket: str, job: dict[str, Any], mask_file: str, object_id: str | None, overlay_file: str
) -> None:
    key = f"{OUTPUT}/{mask_file}"
    put_mask(s3, bucket, key, MASK.read_bytes(), source=f"s3://{bucket}/{ORIGINAL_KEY}", object_id=object_id)
    result = app.lambda_handler({"masks": [f"s3://{bucket}/{key}"]}, LambdaContext())
    assert result["results"][0]["overlay"] == f"s3://{bucket}/{JOB}/overlays/{overlay_file}"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{JOB}/overlays/")["Contents"]]
    assert keys == [f"{JOB}/overlays/{overlay_file}"]


@pytest.mark.parametrize(
    ("mask_file", "original", "written"),
    [
        ("7_2026 11.png", ORIGINAL_KEY, "7.jpg"),
        # The original is gone: the failure marker is named after the mask as stored, not as encoded.
        ("猫 の 写真 (1)_2026-11-24T100000.png", "images/gone.jpg", "猫 の 写真 (1).failed.json"),
    ],
)
def test_a_url_encoded_event_key_is_read_as_the_stored_mask(
    app: ModuleType, s3: Any, bucket: str, job: dict[str, Any], mask_file: str, original: str, written: str
) -> None:
    key = f"{OUTPUT}/{mask_file}"
    put_mask(s3, bucket, key, MASK.read_bytes(), source=f"s3://{bucket}/{original}", object_id="7")
    event = load_event("overlay-mask-created")
    event["detail"]["object"]["key"] = quote_plus(key, safe="/")  # as S3's notifications spell keys
    app.lambda_handler(event, LambdaContext())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{JOB}/overlays/")["Contents"]]
    assert keys == [f"{JOB}/overlays/{written}"]


def test_template_rule_routes_only_masks_on_moto_eventbridge(
    app: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule exactly as template.yaml declares it, on moto's EventBridge, into the handler."""
    stack = load_template(ROOT / "template.yaml")
    rule = next(r for r in stack.rules if r.function == "OverlayFunction")
    data_bucket = stack.physical["DataBucket"]
    monkeypatch.setattr(app, "SETTINGS", app.settings_from_env({"ALLOWED_BUCKETS": data_bucket}))
    s3.create_bucket(Bucket=data_bucket)
    s3.put_bucket_notification_configuration(
        Bucket=data_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="overlay-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="overlay-mask-written", EventPattern=json.dumps(rule.pattern))
    events.put_targets(Rule="overlay-mask-written", Targets=[{"Id": "q", "Arn": arn}])

    s3.put_object(Bucket=data_bucket, Key=ORIGINAL_KEY, Body=IMAGE.read_bytes())
    mask_key = f"{OUTPUT}/3_2026-11-24T100000.png"
    source = f"s3://{data_bucket}/{ORIGINAL_KEY}"
    put_mask(s3, data_bucket, mask_key, MASK.read_bytes(), source=source, object_id="3")
    s3.put_object(Bucket=data_bucket, Key=f"{JOB}/annotations/worker-response/iteration-1/3/t.json", Body=b"{}")
    s3.put_object(Bucket=data_bucket, Key=f"{OUTPUT}/notes.txt", Body=b"not a mask")

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    delivered = [json.loads(m["Body"]) for m in messages]
    assert [e["detail"]["object"]["key"] for e in delivered] == [mask_key]
    result = app.lambda_handler(delivered[0], LambdaContext())
    assert result["written"] == 1
    # The overlay's own write is not a mask, so it triggers nothing further.
    assert sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []) == []
    s3.head_object(Bucket=data_bucket, Key=f"{JOB}/overlays/3.jpg")


def test_missing_overlays_fan_out_in_chunks(app: ModuleType, s3: Any, bucket: str, job: dict[str, Any]) -> None:
    root = S3Uri(bucket, JOB)
    mask = MASK.read_bytes()
    source = f"s3://{bucket}/{ORIGINAL_KEY}"
    # An earlier consolidation of IMG_2, written first: only the newest mask of a name is rendered.
    put_mask(s3, bucket, f"{OUTPUT}/IMG_2_2026-11-23T090000.png", mask, source=source, object_id="2")
    for i in range(1, 5):  # names with "_" of their own: each is its own object
        put_mask(s3, bucket, f"{OUTPUT}/IMG_{i}_2026-11-24T100000.png", mask, source=source, object_id=str(i))
        s3.put_object(Bucket=bucket, Key=f"{OUTPUT}/names/img_{i}.json", Body=b"{}")  # labeling_post's claims
    app.lambda_handler({"masks": [f"s3://{bucket}/{OUTPUT}/IMG_1_2026-11-24T100000.png"]}, LambdaContext())
    missing = masks_missing_overlays(s3, root)
    assert [m.rsplit("/", 1)[-1] for m in missing] == [
        "0_2026-11-24T100000.png",
        *(f"IMG_{i}_2026-11-24T100000.png" for i in (2, 3, 4)),
    ]

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            return {"StatusCode": 202}

    lam = Recorder()
    assert fan_out(lam, "gtaudit-OverlayFunction", missing, chunk_size=3) == 2
    assert all(c["InvocationType"] == "Event" for c in lam.calls)
    chunks = [json.loads(c["Payload"])["masks"] for c in lam.calls]
    assert chunks == [missing[:3], missing[3:]]
    for chunk in chunks:  # what Lambda would run
        assert app.lambda_handler({"masks": chunk}, LambdaContext())["written"] == len(chunk)
    assert masks_missing_overlays(s3, root) == []
