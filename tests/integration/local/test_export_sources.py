"""Where ``gtaudit export`` reads objects: one :class:`Source` per kind, the same answers from both.

A manifest names objects by ``s3://`` URI, perhaps URL-quoted; the local mirror and S3 must find
the same object for it, say "missing" the same way (the export then skips that image), and fail
the export outright when an object exists but cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from gtaudit.s3uri import S3Uri
from gtaudit_local.export.sources import ExportError, MirrorSource, ObjectMissing, S3Source, Source

BUCKET = "gtaudit-databucket"
FILES = {"images/a b.png": b"decoded", "images/a%20b.png": b"as written", "images/only%20quoted.png": b"quoted"}


@pytest.fixture(params=["mirror", "s3"])
def source(request: pytest.FixtureRequest, tmp_path: Path, aws: None) -> Source:
    """The same objects, and a manifest, as a mirror folder or as a bucket."""
    if request.param == "mirror":
        for key, data in {**FILES, "runs/r/accepted.manifest": b""}.items():
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(data)
        return MirrorSource(tmp_path / "runs/r/accepted.manifest")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key, data in FILES.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return S3Source(s3, S3Uri(BUCKET, "runs/r/accepted.manifest"))


def test_a_quoted_key_means_the_decoded_object_first(source: Source) -> None:
    assert source.read(f"s3://{BUCKET}/images/a%20b.png") == b"decoded"
    assert source.read(f"s3://{BUCKET}/images/only%2520quoted.png") == b"quoted"  # one level of quoting undone
    assert source.read(f"s3://{BUCKET}/images/a b.png") == b"decoded"


def test_a_missing_object_is_object_missing_naming_the_uri(source: Source) -> None:
    with pytest.raises(ObjectMissing, match=f"^not found: s3://{BUCKET}/images/gone.png"):
        source.read(f"s3://{BUCKET}/images/gone.png")


def test_a_malformed_uri_is_an_export_error_not_a_missing_object(source: Source) -> None:
    with pytest.raises(ExportError) as info:
        source.read("https://example.com/x.png")
    assert not isinstance(info.value, ObjectMissing)


def test_a_key_with_a_leading_slash_stays_under_the_mirror(tmp_path: Path) -> None:
    (tmp_path / "mirror/runs/r").mkdir(parents=True)
    (tmp_path / "mirror/runs/r/accepted.manifest").write_bytes(b"")
    (tmp_path / "mirror/etc").mkdir()
    (tmp_path / "mirror/etc/x.png").write_bytes(b"inside")
    source = MirrorSource(tmp_path / "mirror/runs/r/accepted.manifest")
    assert source.read(f"s3://{BUCKET}//etc/x.png") == b"inside"
    with pytest.raises(ObjectMissing, match="no file"):
        source.read(f"s3://{BUCKET}//etc/passwd")  # not /etc/passwd of this machine


def test_an_object_s3_refuses_fails_the_export(aws: None) -> None:
    s3 = boto3.client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ExportError, match=r"images/x.png cannot be read \(AccessDenied\)") as info:
            S3Source(s3, S3Uri(BUCKET, "m")).read(f"s3://{BUCKET}/images/x.png")
    assert not isinstance(info.value, ObjectMissing)


class _Unreachable:
    """A client whose every call fails before S3 answers (no endpoint, no network)."""

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

        return call


def test_an_unreachable_s3_is_an_export_error() -> None:
    with pytest.raises(ExportError, match="Could not connect to the endpoint URL"):
        S3Source.find(_Unreachable(), f"s3://{BUCKET}/runs/r/")
    with pytest.raises(ExportError, match="Could not connect"):
        S3Source(_Unreachable(), S3Uri(BUCKET, "m")).read(f"s3://{BUCKET}/images/x.png")
