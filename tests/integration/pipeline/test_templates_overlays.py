"""Worker templates reaching S3 (custom resource + on demand) and the overlay fan-out, on moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit import layout
from gtaudit.exceptions import StepPendingError
from gtaudit.overlay.fanout import overlay_names
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


def test_overlay_names_reads_every_page_and_leaves_other_listings_whole(s3: Any, bucket: str) -> None:
    root = S3Uri(bucket, "jobs/gtaudit-labeling-r1-20261124t100000-ab12")
    odd = ["a+b", "50% & <more>", "IMG_0001 猫", 'it\'s "x"']  # form-encoded by S3: none may be mangled
    names = [f"{i:05d}" for i in range(1100)] + odd  # more than one page of 1,000
    for name in names:
        s3.put_object(Bucket=bucket, Key=layout.overlay(root, name).key, Body=b"jpg")
    s3.put_object(Bucket=bucket, Key=layout.overlay_failure(root, "gone").key, Body=b"{}")
    rendered, failed = overlay_names(s3, root)
    assert rendered == {layout.safe_stem(name) for name in names}  # as the overlay keys spell them
    assert failed == {"gone"}
    # The client is shared (the Lambda's module-level one): its own listings keep every field.
    page = s3.list_objects_v2(Bucket=bucket, Prefix=f"{root.key}/overlays/", MaxKeys=2)
    assert [obj["Key"] for obj in page["Contents"]] == [layout.overlay(root, n).key for n in ("00000", "00001")]
    assert all({"ETag", "LastModified", "Size"} <= set(obj) for obj in page["Contents"])


def test_waiting_for_few_overlays_asks_for_each_instead_of_listing(s3: Any, bucket: str) -> None:
    root, masks = _masks(bucket, 1500)
    for i in range(3, 1500):  # all but three rendered by the S3 trigger
        s3.put_object(Bucket=bucket, Key=layout.overlay(root, _name(i)).key, Body=b"jpg")
    listings: list[str] = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **kw: listings.append("list"))

    class Renders:
        """The overlay function, late: one overlay and one failure marker appear on the first poll."""

        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            return {"StatusCode": 202}

    sleeps: list[float] = []

    def poll(seconds: float) -> None:
        sleeps.append(seconds)
        s3.put_object(Bucket=bucket, Key=layout.overlay(root, _name(0)).key, Body=b"jpg")
        s3.put_object(Bucket=bucket, Key=layout.overlay_failure(root, _name(1)).key, Body=b'{"reason": "gone"}')
        s3.put_object(Bucket=bucket, Key=layout.overlay(root, _name(2)).key, Body=b"jpg")

    ensurer = OverlayEnsurer(s3, Renders(), root, function="overlay-fn", inline_limit=0, time_left=lambda: 1e6)
    assert len(listings) == 2  # 1,497 names: two pages, once
    for m in masks:
        ensurer.overlay_for(m)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("gtaudit.pipeline.overlays.time.sleep", poll)
        assert ensurer.finish() == {"checked": 1500, "missing": 3, "failed": 1}
    assert len(sleeps) == 1
    assert len(listings) == 2  # the re-checks were HEADs of the three awaited names
    assert ensurer.failures == {str(masks[1]): "overlay cannot be rendered: gone"}
