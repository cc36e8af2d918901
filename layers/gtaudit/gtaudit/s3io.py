"""Small S3 helpers over a boto3 client passed in by the caller, and the one reader of botocore errors.

Every other module asks ``error_code`` (or one of the predicates below) what an AWS error was, so the
shape of ``ClientError.response`` is known in this module only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.exceptions import S3ObjectUnavailableError
from gtaudit.s3uri import S3Uri

# Error codes that no retry can fix: the object or bucket is not there, or not ours to read.
PERMANENT_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403", "InvalidObjectState"})
# What S3 answers for an object that is not there (GET says NoSuchKey, HEAD only has the status).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_BY_CODE: dict[str, type[S3ObjectUnavailableError]] = {
    code: type(code if code.isidentifier() else f"S3Error{code}", (S3ObjectUnavailableError,), {})
    for code in PERMANENT_CODES
}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchKey``, ...); ``""`` for any other exception."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """The AWS error message of a botocore ``ClientError``; ``""`` otherwise."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    """Whether an S3 error says the object (not the bucket) is not there."""
    return error_code(exc) in NOT_FOUND_CODES


def is_conditional_check_failed(exc: BaseException) -> bool:
    """Whether a conditional write was refused because its condition does not hold (DynamoDB's
    ``ConditionalCheckFailedException``, S3's ``PreconditionFailed``: the key already exists)."""
    return error_code(exc) in {"ConditionalCheckFailedException", "PreconditionFailed"}


def exists(s3: Any, uri: S3Uri) -> bool:
    """Whether an object exists (a HEAD request); other errors than "not found" propagate."""
    try:
        s3.head_object(Bucket=uri.bucket, Key=uri.key)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


@contextmanager
def typed_s3_errors() -> Iterator[None]:
    """Re-raise a permanent S3 ``ClientError`` as an ``S3ObjectUnavailableError`` (still a ``ClientError``)."""
    try:
        yield
    except S3ObjectUnavailableError:
        raise
    except ClientError as exc:
        cls = _BY_CODE.get(error_code(exc))
        if cls is None:
            raise  # throttling, 5xx: the caller's retry may help
        raise cls(exc.response, exc.operation_name) from exc


def get_bytes(s3: Any, uri: S3Uri, *, max_bytes: int | None = None) -> bytes:
    """Read an object whole; with ``max_bytes``, refuse a larger one before downloading it."""
    return get_bytes_and_metadata(s3, uri, max_bytes=max_bytes)[0]


def get_bytes_and_metadata(s3: Any, uri: S3Uri, *, max_bytes: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Like ``get_bytes``, also returning the object's S3 user metadata (keys in lower case)."""
    with typed_s3_errors():
        resp = s3.get_object(Bucket=uri.bucket, Key=uri.key)
    size = resp.get("ContentLength")
    if max_bytes is not None and size is not None and size > max_bytes:
        resp["Body"].close()
        raise ValueError(f"s3://{uri.bucket}/{uri.key} is {size} bytes, the limit is {max_bytes}")
    with typed_s3_errors():
        body: bytes = resp["Body"].read()
    return body, {str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()}


def get_metadata(s3: Any, uri: S3Uri) -> dict[str, str]:
    """An object's S3 user metadata (keys in lower case), from a HEAD request."""
    with typed_s3_errors():
        resp = s3.head_object(Bucket=uri.bucket, Key=uri.key)
    return {str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()}


def get_json(s3: Any, uri: S3Uri) -> Any:
    """Read and parse a JSON object."""
    return json.loads(get_bytes(s3, uri))


def open_stream(s3: Any, uri: S3Uri) -> Any:
    """An object's body as a readable stream (``read(n)``, ``close()``); typed errors as ``get_bytes``."""
    with typed_s3_errors():
        return s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]


def iter_lines(s3: Any, uri: S3Uri) -> Iterator[bytes]:
    """Stream an object's lines without holding it in memory."""
    with typed_s3_errors():
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    try:
        yield from body.iter_lines(keepends=False)
    finally:
        body.close()


def put_bytes(
    s3: Any,
    uri: S3Uri,
    data: bytes,
    content_type: str,
    *,
    metadata: dict[str, str] | None = None,
    if_absent: bool = False,
) -> bool:
    """Write an object (encryption comes from the bucket's default); ``metadata`` is S3 user metadata.

    With ``if_absent``, S3's conditional write (``If-None-Match: *``): nothing is written and the
    answer is ``False`` when the key already exists. Two such writes racing for one key may get
    ``ConditionalRequestConflict`` (409), which is raised: the caller's retry settles it.
    Returns ``True`` when the object was written.
    """
    extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
    if if_absent:
        extra["IfNoneMatch"] = "*"
    try:
        with typed_s3_errors():
            s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=data, ContentType=content_type, **extra)
    except ClientError as exc:
        if if_absent and is_conditional_check_failed(exc):
            return False
        raise
    return True


def put_json(
    s3: Any, uri: S3Uri, data: Any, *, metadata: dict[str, str] | None = None, if_absent: bool = False
) -> bool:
    """Write JSON, UTF-8, readable; ``metadata`` and ``if_absent`` as for ``put_bytes``."""
    body = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    return put_bytes(s3, uri, body, "application/json", metadata=metadata, if_absent=if_absent)
