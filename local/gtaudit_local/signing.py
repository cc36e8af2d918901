"""Signed, expiring links to S3 objects: the local form of Ground Truth's ``grant_read_access``.

GT's ``grant_read_access`` Liquid filter turns ``s3://bucket/key`` into a presigned HTTPS URL
that reads that one object for a short time. Every local server that streams objects to a page
(the emulator's HTTP side, ``gtaudit preview``, a browser worker's page server) does the same
with one :class:`LinkSigner` of its own::

    /s3/<bucket>/<key>?X-Amz-Expires=<unix time>&X-Amz-Signature=<hex HMAC-SHA256>

The HMAC covers the path exactly as sent (percent-encoded) and the expiry, under 32 random bytes
drawn when the signer is made; the secret never leaves the process. So a server streams only the
objects a rendered page was granted, until the link expires, and a link minted by one server is
refused by every other. Anything else on ``/s3/`` is refused (403), before any object is read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs, quote, unquote, urlsplit

OBJECT_PREFIX = "/s3/"
DEFAULT_TTL_SECONDS = 3600  # as short-lived as GT's own links; page servers choose longer


class LinkRefused(Exception):
    """The request is not a valid, unexpired link of this signer (the server answers 403)."""


def object_path(bucket: str, key: str) -> str:
    """``/s3/<bucket>/<key>``, percent-encoded: the path part of an object's link."""
    return f"{OBJECT_PREFIX}{quote(bucket, safe='')}/{quote(key, safe='/')}"


class LinkSigner:
    """Mints and checks the links of one server (one secret per signer, drawn at construction)."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def _mac(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, path: str, expires_in: float = DEFAULT_TTL_SECONDS, *, amp: str = "&") -> str:
        """``path`` with the query that makes it a link, valid for ``expires_in`` seconds.

        Parameters
        ----------
        path
            An :func:`object_path` (or one taken verbatim from another server's link).
        expires_in
            Seconds from now; a negative value mints an already expired link.
        amp
            The query separator as the link's context needs it (``"&amp;"`` inside escaped HTML).
        """
        expires = int(time.time() + expires_in)
        return f"{path}?X-Amz-Expires={expires}{amp}X-Amz-Signature={self._mac(path, expires)}"

    def verify(self, request_path: str) -> tuple[str, str]:
        """The ``(bucket, key)`` a request's path and query grant.

        Raises
        ------
        LinkRefused
            Not under ``/s3/``, unsigned, signed by another secret or for another path, or expired.
        """
        parts = urlsplit(request_path)
        bucket, _, key = parts.path.removeprefix(OBJECT_PREFIX).partition("/")
        if not parts.path.startswith(OBJECT_PREFIX) or not bucket or not key:
            raise LinkRefused("not an object link")
        query = parse_qs(parts.query)
        try:
            expires = int(query["X-Amz-Expires"][0])
            signature = query["X-Amz-Signature"][0]
        except (KeyError, IndexError, ValueError) as exc:
            raise LinkRefused("missing signature") from exc
        if not hmac.compare_digest(self._mac(parts.path, expires), signature):
            raise LinkRefused("signature invalid")
        if expires < time.time():
            raise LinkRefused("link expired")
        return unquote(bucket), unquote(key)
