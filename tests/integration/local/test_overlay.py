"""End to end on the embedded runtime: a mask written to S3 reaches the overlay Lambda through the
template's own EventBridge rule, and the overlay appears, byte for byte what render_overlay gives."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from gtaudit.overlay.render import render_overlay
from gtaudit_local.runtime import LocalRuntime
from support import ROOT

pytestmark = pytest.mark.slow

IMAGE = ROOT / "samples" / "images" / "chelsea-exif6.jpg"
MASK = ROOT / "samples" / "reference" / "chelsea-exif6.png"


def test_mask_written_to_s3_gets_its_overlay(tmp_path: Path) -> None:
    with LocalRuntime(ROOT, work_dir=tmp_path) as rt:
        s3, bucket = rt.client("s3"), rt.bucket
        s3.put_object(Bucket=bucket, Key="images/猫.jpg", Body=IMAGE.read_bytes())
        output = "jobs/local-r1/annotations/consolidated-annotation/output"
        meta = {"source-ref": quote(f"s3://{bucket}/images/猫.jpg", safe=":/"), "dataset-object-id": "0"}
        s3.put_object(Bucket=bucket, Key=f"{output}/猫_2026-11-24T100000.png", Body=MASK.read_bytes(), Metadata=meta)
        s3.put_object(Bucket=bucket, Key=f"{output}/readme.txt", Body=b"not a mask")
        assert rt.wait_idle(120)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="jobs/local-r1/overlays/")["Contents"]]
        assert keys == ["jobs/local-r1/overlays/猫.jpg"]  # the mask's name, the image's own
        body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
        assert body == render_overlay(IMAGE.read_bytes(), MASK.read_bytes(), opacity=0.5)
