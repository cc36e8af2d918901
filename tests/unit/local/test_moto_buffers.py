"""S3 bodies on disk: what moto reads back is what was written, and nothing is held open or left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from gtaudit_local.moto_buffers import DiskBuffer, install, uninstall
from moto import mock_aws


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    folder = tmp_path / "bodies"
    install(folder, small=1024)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="bodies")
            client.put_bucket_versioning(Bucket="bodies", VersioningConfiguration={"Status": "Enabled"})
            yield client, folder
    finally:
        uninstall()


def _open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def test_bodies_read_back_whole_and_by_range_small_in_memory_large_on_disk(s3: tuple[object, Path]) -> None:
    client, folder = s3
    small, large = b"x" * 100, os.urandom(300_000)
    client.put_object(Bucket="bodies", Key="small", Body=small)  # type: ignore[attr-defined]
    client.put_object(Bucket="bodies", Key="large", Body=large)  # type: ignore[attr-defined]
    assert client.get_object(Bucket="bodies", Key="small")["Body"].read() == small  # type: ignore[attr-defined]
    got = client.get_object(Bucket="bodies", Key="large")  # type: ignore[attr-defined]
    assert got["Body"].read() == large
    part = client.get_object(Bucket="bodies", Key="large", Range="bytes=1000-1999")["Body"].read()  # type: ignore[attr-defined]
    assert part == large[1000:2000]
    assert len(list(folder.iterdir())) == 1  # only the large body has a file


def test_versions_keep_their_own_bytes_and_no_file_stays_open(s3: tuple[object, Path]) -> None:
    client, _ = s3
    before = _open_fds()
    versions = []
    for i in range(50):
        body = bytes([i]) * 5000
        versions.append((client.put_object(Bucket="bodies", Key="k", Body=body)["VersionId"], body))  # type: ignore[attr-defined]
    assert _open_fds() <= before + 2  # the client's connection, not one descriptor per version
    for vid, body in versions[::7]:
        assert client.get_object(Bucket="bodies", Key="k", VersionId=vid)["Body"].read() == body  # type: ignore[attr-defined]
    head = client.head_object(Bucket="bodies", Key="k")  # type: ignore[attr-defined]
    assert head["ContentLength"] == 5000


def test_a_multipart_upload_assembles_from_disk_parts(s3: tuple[object, Path]) -> None:
    client, _ = s3
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    up = client.create_multipart_upload(Bucket="bodies", Key="mp")  # type: ignore[attr-defined]
    done = []
    for n, data in enumerate(parts, start=1):
        r = client.upload_part(Bucket="bodies", Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=data)  # type: ignore[attr-defined]
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    client.complete_multipart_upload(  # type: ignore[attr-defined]
        Bucket="bodies", Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    assert client.get_object(Bucket="bodies", Key="mp")["Body"].read() == b"".join(parts)  # type: ignore[attr-defined]


def test_a_closed_buffer_removes_its_file(tmp_path: Path) -> None:
    install(tmp_path, small=10)
    try:
        buf = DiskBuffer()
        buf.write(b"y" * 100)
        assert len(list(tmp_path.iterdir())) == 1
        buf.seek(0)
        assert buf.read(10) == b"y" * 10 and buf.read() == b"y" * 90 and buf.read() == b""
        buf.seek(0)
        buf.truncate()
        assert list(tmp_path.iterdir()) == [] and buf.read() == b""
        buf.write(b"z" * 100)
        buf.close()
        assert list(tmp_path.iterdir()) == []
    finally:
        uninstall()


def test_keys_share_one_canned_acl_and_a_key_given_its_own_keeps_it(s3: tuple[object, Path]) -> None:
    from moto.s3.models import s3_backends

    client, _ = s3
    for name in ("a", "b"):
        client.put_object(Bucket="bodies", Key=name, Body=b"x")  # type: ignore[attr-defined]
    keys = s3_backends["123456789012"]["aws"].buckets["bodies"].keys
    assert keys["a"].acl is keys["b"].acl  # one canned "private" ACL, not one per key
    client.put_object_acl(Bucket="bodies", Key="b", ACL="public-read")  # type: ignore[attr-defined]
    grants = client.get_object_acl(Bucket="bodies", Key="b")["Grants"]  # type: ignore[attr-defined]
    assert any(g["Permission"] == "READ" for g in grants)
    assert not any(g["Permission"] == "READ" for g in client.get_object_acl(Bucket="bodies", Key="a")["Grants"])  # type: ignore[attr-defined]


def test_keys_leave_their_none_attributes_to_the_class_and_still_take_them(s3: tuple[object, Path]) -> None:
    from moto.s3.models import s3_backends

    client, _ = s3
    client.put_object(Bucket="bodies", Key="plain", Body=b"x" * 2000)  # type: ignore[attr-defined]
    client.put_object(Bucket="bodies", Key="sealed", Body=b"y", ServerSideEncryption="AES256")  # type: ignore[attr-defined]
    keys = s3_backends["123456789012"]["aws"].buckets["bodies"].keys
    plain = keys["plain"]
    assert "encryption" not in plain.__dict__ and plain.encryption is None and plain.multipart is None
    assert len(plain.__dict__) <= 25  # of 38
    assert keys["sealed"].encryption == "AES256"
    assert client.head_object(Bucket="bodies", Key="sealed")["ServerSideEncryption"] == "AES256"  # type: ignore[attr-defined]
    assert "ServerSideEncryption" not in client.head_object(Bucket="bodies", Key="plain")  # type: ignore[attr-defined]
