"""``upload_folder``: every image of a folder to S3, several at a time, in S3's key order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from gtaudit.pipeline.start import UPLOAD_THREADS, upload_folder
from gtaudit.s3uri import parse_s3_uri


def _folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        (folder / ("sub" if i % 3 == 0 else "") / f"img-{i:03d}.jpg").write_bytes(b"\xff\xd8" + bytes([i]) * 64)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_every_image_is_uploaded_with_its_type_and_listed_in_key_order(s3: Any, bucket: str, tmp_path: Path) -> None:
    n = 3 * UPLOAD_THREADS + 1
    uris = upload_folder(s3, _folder(tmp_path, n), parse_s3_uri(f"s3://{bucket}/inputs/r/images"))
    keys = [u.key for u in uris]
    assert len(keys) == n and keys == sorted(keys)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == keys  # nothing else (notes.txt) was uploaded
    head = s3.head_object(Bucket=bucket, Key="inputs/r/images/sub/img-003.jpg")
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == 66


def test_a_failed_upload_is_raised_after_the_others(
    s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = s3.upload_file

    def flaky(path: str, b: str, key: str, **kwargs: Any) -> None:
        if key.endswith("sub/img-009.jpg"):  # the last in order: every other upload was under way
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
        real(path, b, key, **kwargs)

    monkeypatch.setattr(s3, "upload_file", flaky)
    with pytest.raises(ClientError, match="SlowDown"):
        upload_folder(s3, _folder(tmp_path, 12), parse_s3_uri(f"s3://{bucket}/in"))
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 11
