"""Worker templates reaching S3 (custom resource + on demand) and the overlay fan-out, on moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit import layout
from gtaudit.exceptions import StepPendingError
from gtaudit.pipeline import templates
from gtaudit.pipeline.overlays import OverlayEnsurer
from gtaudit.s3uri import S3Uri, parse_s3_uri


def test_templates_are_uploaded_once_under_their_version(s3: Any, bucket: str) -> None:
    first = templates.ensure_templates(s3, bucket)
    assert first["version"] == templates.version()
    assert first["labeling"] == f"s3://{bucket}/templates/{first['version']}/segmentation.liquid.html"
    assert first["audit"].endswith("/audit.liquid.html")
    body = s3.get_object(Bucket=bucket, Key=first["audit"].split("/", 3)[3])["Body"].read()
    assert body == templates.packaged()["audit.liquid.html"]
    etag = s3.head_object(Bucket=bucket, Key=first["audit"].split("/", 3)[3])["ETag"]
    assert templates.ensure_templates(s3, bucket) == first  # the second call uploads nothing new
    assert s3.head_object(Bucket=bucket, Key=first["audit"].split("/", 3)[3])["ETag"] == etag
    assert templates.deployed_templates(s3, bucket) is None


def test_version_changes_with_any_template_byte() -> None:
    files = dict(templates.packaged())
    before = templates.version(files)
    files["audit.liquid.html"] = files["audit.liquid.html"] + b" "
    assert templates.version(files) != before


def test_custom_resource_uploads_and_points_current_json(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    import worker_templates.app as app

    monkeypatch.setattr(app, "s3", s3)
    monkeypatch.setattr(app, "send_cfn_response", lambda event, status, data, reason="": sent.append((status, data)))
    event = json.loads((Path(__file__).resolve().parents[3] / "events" / "worker_templates-create.json").read_text())
    assert event["ResourceProperties"]["Bucket"] == bucket
    app.lambda_handler(event, lambda_context)
    status, data = sent[-1]
    assert status == "SUCCESS"
    assert data["AuditTemplateUri"].endswith("/audit.liquid.html")
    assert templates.deployed_templates(s3, bucket)["version"] == data["Version"]  # type: ignore[index]
    app.lambda_handler({**event, "RequestType": "Delete"}, lambda_context)
    assert sent[-1] == ("SUCCESS", {})
    app.lambda_handler({**event, "ResourceProperties": {}}, lambda_context)
    assert sent[-1][0] == "FAILED"  # CloudFormation always gets an answer


class FakeLambda:
    """Records asynchronous invocations; optionally 'renders' the chunk's overlays at once."""

    def __init__(self, s3: Any, render: bool) -> None:
        self.s3, self.render = s3, render
        self.calls: list[tuple[str, str, int]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        masks = json.loads(kwargs["Payload"])["masks"]
        self.calls.append((kwargs["FunctionName"], kwargs["InvocationType"], len(masks)))
        if self.render:
            for m in masks:
                uri = parse_s3_uri(m)
                root = S3Uri(uri.bucket, uri.key.split("/annotations/")[0])
                out = layout.overlay(root, layout.mask_name(uri))
                self.s3.put_object(Bucket=out.bucket, Key=out.key, Body=b"jpg")
        return {"StatusCode": 202}


def _name(i: int) -> str:
    """Object names as the run's start gives them: the images' own, "_" and Unicode included."""
    return f"IMG_{i:04d} 猫"


def _masks(bucket: str, n: int) -> tuple[S3Uri, list[S3Uri]]:
    root = S3Uri(bucket, "jobs/gtaudit-labeling-r1-20261124t100000-ab12")
    return root, [layout.consolidated_mask(root.join("annotations"), _name(i), "2026-11-24T100000") for i in range(n)]


def test_many_missing_overlays_fan_out_to_the_overlay_function(s3: Any, bucket: str) -> None:
    root, masks = _masks(bucket, 60)
    for i in range(0, 60, 3):  # a third already rendered by the S3 trigger
        ov = layout.overlay(root, _name(i))
        s3.put_object(Bucket=bucket, Key=ov.key, Body=b"jpg")
    lam = FakeLambda(s3, render=True)
    ensurer = OverlayEnsurer(
        s3,
        lam,
        root,
        function="overlay-fn",
        inline_limit=20,
        chunk=25,
        render_inline=lambda m: pytest.fail("must not render 40 inline"),
    )
    overlays = [ensurer.overlay_for(m) for m in masks]
    assert overlays[7] == S3Uri(bucket, f"{root.key}/overlays/IMG_0007 猫.jpg")
    assert ensurer.finish() == {"checked": 60, "missing": 40, "failed": 0}
    assert lam.calls == [("overlay-fn", "Event", 25), ("overlay-fn", "Event", 15)]


def test_overlays_still_missing_raise_step_pending_for_the_retry(s3: Any, bucket: str) -> None:
    root, masks = _masks(bucket, 30)
    lam = FakeLambda(s3, render=False)
    ensurer = OverlayEnsurer(s3, lam, root, function="overlay-fn", time_left=lambda: 10.0)
    for m in masks:
        ensurer.overlay_for(m)
    with pytest.raises(StepPendingError, match="30 of 30"):
        ensurer.finish()


def test_few_missing_overlays_render_inline(s3: Any, bucket: str) -> None:
    root, masks = _masks(bucket, 3)
    rendered: list[str] = []

    def render(ms: list[str]) -> None:
        rendered.extend(ms)
        for m in ms:
            out = layout.overlay(root, layout.mask_name(parse_s3_uri(m)))
            s3.put_object(Bucket=bucket, Key=out.key, Body=b"jpg")

    ensurer = OverlayEnsurer(s3, FakeLambda(s3, render=False), root, function="overlay-fn", render_inline=render)
    for m in masks:
        ensurer.overlay_for(m)
    assert ensurer.finish()["missing"] == 3
    assert rendered == [str(m) for m in masks]
