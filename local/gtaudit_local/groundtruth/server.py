"""The emulator's HTTP side: the JSON 1.1 API endpoint and the ``grant_read_access`` links, on one port.

One ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port) answers ``POST`` with
``X-Amz-Target: SageMaker.<Operation>`` (what a boto3 ``sagemaker`` client with
``AWS_ENDPOINT_URL_SAGEMAKER`` sends) and ``GET /s3/<bucket>/<key>`` for the links the worker
pages load their images from. Those links are what GT's ``grant_read_access`` Liquid filter gives:
short-lived, signed (HMAC-SHA256 of path and expiry under a secret drawn at start-up) and streaming
the S3 object, so a page can only read what a template granted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from botocore.exceptions import ClientError
from gtaudit.s3uri import parse_s3_uri

log = logging.getLogger(__name__)

ApiHandler = Callable[[str, bytes], tuple[int, dict[str, Any]]]  # (X-Amz-Target, body) -> (status, JSON)
GetHandler = Callable[[str], tuple[int, bytes, str]]  # path -> (status, body, Content-Type)


class SignedLinks:
    """HMAC-signed, expiring ``http://127.0.0.1:<port>/s3/<bucket>/<key>`` links to S3 objects.

    Parameters
    ----------
    s3
        The boto3 S3 client the links read through.
    """

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.endpoint = ""  # set once the server listens
        self._secret = secrets.token_bytes(32)

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url_for(self, uri: str, expires_in: int = 3600) -> str:
        """A short-lived local URL streaming the S3 object ``uri`` (what ``grant_read_access`` gives)."""
        parsed = parse_s3_uri(uri)
        expires = int(time.time()) + expires_in
        path = f"/s3/{parsed.bucket}/{quote(parsed.key)}"
        return f"{self.endpoint}{path}?X-Amz-Expires={expires}&X-Amz-Signature={self._sign(path, expires)}"

    def serve(self, raw_path: str) -> tuple[int, bytes, str]:
        """Answer a GET of a :meth:`url_for` link: the object, or 403/404."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if not parts.path.startswith("/s3/"):
            return 404, b"not found", "text/plain"
        try:
            expires = int(query["X-Amz-Expires"][0])
            sig = query["X-Amz-Signature"][0]
        except (KeyError, ValueError, IndexError):
            return 403, b"missing signature", "text/plain"
        if not hmac.compare_digest(self._sign(parts.path, expires), sig) or expires < time.time():
            return 403, b"signature invalid or expired", "text/plain"
        bucket, _, key = parts.path[4:].partition("/")
        try:
            resp = self.s3.get_object(Bucket=bucket, Key=unquote(key))
        except ClientError:
            return 404, b"no such object", "text/plain"
        body: bytes = resp["Body"].read()
        return 200, body, str(resp.get("ContentType") or "application/octet-stream")


def start_server(api: ApiHandler, get: GetHandler) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``api`` (POST) and ``get`` (GET) on ``127.0.0.1`` on a free port, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("gt-emulator: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            status, payload = api(self.headers.get("X-Amz-Target", ""), raw)
            body = json.dumps(payload, default=str).encode("utf-8")
            self._send(status, body, "application/x-amz-json-1.1")

        def do_GET(self) -> None:
            status, body, ctype = get(self.path)
            self._send(status, body, ctype)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="gt-emulator", daemon=True)
    thread.start()
    return server, thread
