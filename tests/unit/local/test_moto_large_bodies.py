"""Large S3 bodies never sit whole in moto's memory: multipart uploads assemble on disk, GETs stream.

Each path answers exactly as moto's own does (bytes, ETag, checksums, errors, headers); the
measured reason for them is in ``gtaudit_local.moto_buffers``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from gtaudit_local import moto_buffers
from gtaudit_local.aws import MotoServer
from moto import mock_aws

MB = 1 << 20


def _upload(client: Any, key: str, parts: list[bytes], **create: Any) -> None:
    up = client.create_multipart_upload(Bucket="bodies", Key=key, **create)["UploadId"]
    algorithm = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
    done = []
    for n, data in enumerate(parts, start=1):
        r = client.upload_part(Bucket="bodies", Key=key, UploadId=up, PartNumber=n, Body=data, **algorithm)
        done.append({"PartNumber": n, "ETag": r["ETag"], **{k: v for k, v in r.items() if k.startswith("Checksum")}})
    client.complete_multipart_upload(Bucket="bodies", Key=key, UploadId=up, MultipartUpload={"Parts": done})


CHECKSUMS: list[dict[str, str]] = [
    {},  # S3's default for multipart: a full-object CRC64NVME (moto: CRC32 without awscrt)
    {"ChecksumAlgorithm": "CRC32"},  # composite: a checksum of the parts' checksums
    {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"},
    {"ChecksumAlgorithm": "SHA256"},
]


def _completed(parts: list[bytes], folder: Path | None = None) -> tuple[list[Any], list[int]]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bodies")
        seen = []
        for n, create in enumerate(CHECKSUMS):
            _upload(client, f"k{n}", parts, **create)
            got = client.get_object(Bucket="bodies", Key=f"k{n}", ChecksumMode="ENABLED")
            body = got["Body"].read()
            seen.append((body == b"".join(parts), got["ETag"], got["ContentLength"],
                         {k: v for k, v in got.items() if k.startswith("Checksum")}))  # fmt: skip
        with pytest.raises(ClientError, match="InvalidPart"):
            up = client.create_multipart_upload(Bucket="bodies", Key="bad")["UploadId"]
            client.upload_part(Bucket="bodies", Key="bad", UploadId=up, PartNumber=1, Body=b"x")
            bad = [{"PartNumber": 1, "ETag": '"0123"'}]
            client.complete_multipart_upload(Bucket="bodies", Key="bad", UploadId=up, MultipartUpload={"Parts": bad})
        with pytest.raises(ClientError, match="EntityTooSmall"):
            _upload(client, "small", [b"a" * 1000, b"b" * 1000])
        return seen, sorted(p.stat().st_size for p in folder.iterdir()) if folder else []


def test_a_multipart_upload_completes_on_disk_as_moto_completes_it_in_memory(tmp_path: Path) -> None:
    parts = [os.urandom(5 * MB), os.urandom(5 * MB), os.urandom(1000)]
    theirs, _ = _completed(parts)
    moto_buffers.install(tmp_path / "bodies")
    try:
        ours, files = _completed(parts, tmp_path / "bodies")
    finally:
        moto_buffers.uninstall()
    assert ours == theirs
    assert all(seen[0] for seen in ours) and {len(seen[3]) for seen in ours[1:]} == {2}  # a checksum and its type
    assert files == [1000, 1000] + [len(b"".join(parts))] * len(CHECKSUMS)  # the bodies, the refused upload's parts


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    monkeypatch.setattr(moto_buffers, "STREAM_MIN", 64 * 1024)
    moto_buffers.install(tmp_path / "bodies")
    try:
        with MotoServer() as moto:
            client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                                  aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
            client.create_bucket(Bucket="bodies")
            yield client, tmp_path / "bodies"
    finally:
        moto_buffers.uninstall()


def test_a_large_get_streams_from_the_file_and_answers_as_moto_does(
    server: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = server
    body = os.urandom(6 * MB)
    _upload(client, "mp", [body[: 5 * MB], body[5 * MB :]], ChecksumAlgorithm="CRC32")
    client.put_object(Bucket="bodies", Key="one", Body=body, ContentType="application/json", Metadata={"a": "b"})
    streamed = 0
    chunks = moto_buffers._FileChunks.__iter__

    def counting(self: Any) -> Iterator[bytes]:
        nonlocal streamed
        streamed += 1
        yield from chunks(self)

    monkeypatch.setattr(moto_buffers._FileChunks, "__iter__", counting)

    def answers() -> list[Any]:
        got = []
        for key in ("mp", "one"):
            r = client.get_object(Bucket="bodies", Key=key, ChecksumMode="ENABLED")
            headers = {k: v for k, v in r["ResponseMetadata"]["HTTPHeaders"].items()
                       if k not in ("date", "x-amzn-requestid", "x-amz-request-id")}  # fmt: skip
            got.append((r["Body"].read() == body, headers))
            etag = r["ETag"]
            with pytest.raises(ClientError, match="304"):
                client.get_object(Bucket="bodies", Key=key, IfNoneMatch=etag)
            ranged = client.get_object(Bucket="bodies", Key=key, Range="bytes=10-19")["Body"].read()
            got.append(ranged == body[10:20])
        return got

    ours = answers()
    assert streamed == 2  # the two whole GETs; the 304s and the ranges were moto's own
    monkeypatch.setattr(moto_buffers, "STREAM_MIN", 1 << 40)
    assert ours == answers()  # moto's own GETs
    assert streamed == 2
    assert ours[0][1]["x-amz-checksum-type"] == "COMPOSITE" and ours[0][1]["x-amz-checksum-crc32"].endswith("-2")


def test_moto_keeps_no_request_alive_after_answering_it(server: tuple[Any, Path]) -> None:
    client, _ = server
    gc.collect()
    gc.disable()
    try:
        for n in range(3):
            client.put_object(Bucket="bodies", Key=f"k{n}", Body=os.urandom(MB))
            client.get_object(Bucket="bodies", Key=f"k{n}")["Body"].read()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert "BackendRequest" not in cyclic  # Flask's debug mode tied each request (and its body) in a cycle


def test_gets_that_moto_answers_otherwise_than_a_head_are_moto_s_own(
    server: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = server
    body = os.urandom(MB)
    etag = client.put_object(Bucket="bodies", Key="k", Body=body)["ETag"]
    streamed = []
    monkeypatch.setattr(moto_buffers, "_FileChunks", lambda f: streamed.append(f) or [f.read()])
    with pytest.raises(ClientError, match="304"):  # a GET takes the ETag unquoted, a HEAD would not
        client.get_object(Bucket="bodies", Key="k", IfNoneMatch=etag.strip('"'))
    assert client.get_object(Bucket="bodies", Key="k", IfMatch=etag)["Body"].read() == body
    assert streamed == []
    assert client.get_object(Bucket="bodies", Key="k")["Body"].read() == body
    assert len(streamed) == 1


def test_a_part_that_changed_while_it_was_copied_fails_the_completion_and_leaves_no_file(
    server: tuple[Any, Path],
) -> None:
    from moto.s3.models import s3_backends

    client, folder = server
    up = client.create_multipart_upload(Bucket="bodies", Key="mp")["UploadId"]
    done = []
    for n in (1, 2):
        r = client.upload_part(Bucket="bodies", Key="mp", UploadId=up, PartNumber=n, Body=os.urandom(5 * MB))
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    part = s3_backends["123456789012"]["aws"].buckets["bodies"].multiparts[up].parts[2]
    part.contentsize += 1  # as if a new UploadPart replaced it while it was being copied
    before = sorted(folder.iterdir())
    with pytest.raises(ClientError, match="InvalidPart"):
        client.complete_multipart_upload(Bucket="bodies", Key="mp", UploadId=up, MultipartUpload={"Parts": done})
    assert sorted(folder.iterdir()) == before  # the parts, and no half-assembled body
