"""S3 URIs: parse, build and check them against the locations a stack may touch."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from gtaudit.exceptions import ForbiddenLocationError, InvalidS3UriError

# S3's own bucket rules: 3-63 chars of lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
MAX_URI_LENGTH = 1024  # CreateLabelingJob's limit for every S3 URI.


@dataclass(frozen=True, slots=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` URI."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        """Append path parts to the key with single slashes."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Uri(self.bucket, key)

    @property
    def name(self) -> str:
        """The last path segment of the key."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]


def parse_s3_uri(uri: object) -> S3Uri:
    """Parse an S3 URI.

    Parameters
    ----------
    uri
        ``s3://bucket/key``. Anything else raises.

    Returns
    -------
    S3Uri

    Raises
    ------
    InvalidS3UriError
        Not a string, not the ``s3`` scheme, a bad bucket name, or an empty key.
    """
    if not isinstance(uri, str):
        raise InvalidS3UriError(f"expected an s3:// URI string, got {type(uri).__name__}")
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidS3UriError(f"S3 URI is {len(uri)} characters, the limit is {MAX_URI_LENGTH}")
    if not uri.startswith("s3://"):
        # Never echo the value: a presigned URL's query string is a credential, and a field fed
        # the wrong value may hold a worker identity. Name the scheme only.
        scheme = uri.partition("://")[0] if "://" in uri else ""
        shown = f" (scheme {scheme[:16]!r})" if scheme.isalnum() else ""
        raise InvalidS3UriError(f"not an s3:// URI{shown}")
    bucket, _, key = uri[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidS3UriError(f"invalid bucket name {bucket!r} in S3 URI")
    if not key:
        raise InvalidS3UriError(f"S3 URI has no key (bucket {bucket!r})")
    if any(seg in {".", ".."} for seg in unquote(key).split("/")):
        raise InvalidS3UriError("S3 URI key contains '.' or '..' path segments")
    return S3Uri(bucket, key)


def check_allowed(uri: S3Uri, allowed: Iterable[str]) -> S3Uri:
    """Return ``uri`` if it lies under one of ``allowed`` (bucket names or ``s3://bucket/prefix``).

    An empty ``allowed`` allows nothing.

    Raises
    ------
    ForbiddenLocationError
        ``uri`` is outside every allowed location.
    """
    for location in allowed:
        location = location.strip()
        if not location:
            continue
        if location.startswith("s3://"):
            bucket, _, prefix = location[5:].partition("/")
        else:
            bucket, prefix = location, ""
        if uri.bucket == bucket and uri.key.startswith(prefix):
            return uri
    raise ForbiddenLocationError(f"s3://{uri.bucket}/... is outside the allowed locations")


def split_allowed(value: str | None) -> list[str]:
    """Split a comma-separated ``ALLOWED_BUCKETS``-style setting into its entries."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]
