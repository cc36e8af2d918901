"""The emulator's HTTP side: the JSON 1.1 API endpoint and the ``grant_read_access`` links, on one port.

One ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port) answers ``POST`` with
``X-Amz-Target: SageMaker.<Operation>`` (what a boto3 ``sagemaker`` client with
``AWS_ENDPOINT_URL_SAGEMAKER`` sends) and ``GET /s3/<bucket>/<key>`` for the links the worker
pages load their images from. Those links are what GT's ``grant_read_access`` Liquid filter gives:
short-lived, signed (:mod:`gtaudit_local.signing`, under a secret drawn at start-up) and streaming
the S3 object, so a page can only read what a template granted.

Every request passes :class:`~gtaudit_local.loopback.LoopbackHandler`'s checks first: the
server's own ``Host``, no foreign ``Origin``, and a JSON body on ``POST``. botocore sends no
``Origin``, so the API does not ask for one; a browser always sends it, so a web page that
tries the API from another site is refused.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from botocore.exceptions import ClientError
from gtaudit.s3uri import parse_s3_uri

from gtaudit_local.loopback import LoopbackHandler
from gtaudit_local.signing import DEFAULT_TTL_SECONDS, OBJECT_PREFIX, LinkRefused, LinkSigner, object_path

log = logging.getLogger(__name__)

ApiHandler = Callable[[str, bytes], tuple[int, dict[str, Any]]]  # (X-Amz-Target, body) -> (status, JSON)
GetHandler = Callable[[str], tuple[int, bytes, str]]  # path -> (status, body, Content-Type)

API_CONTENT_TYPES = frozenset({"application/x-amz-json-1.1", "application/x-amz-json-1.0", "application/json"})


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
        self._signer = LinkSigner()

    def url_for(self, uri: str, expires_in: int = DEFAULT_TTL_SECONDS) -> str:
        """A short-lived local URL streaming the S3 object ``uri`` (what ``grant_read_access`` gives)."""
        parsed = parse_s3_uri(uri)
        return self.endpoint + self._signer.sign(object_path(parsed.bucket, parsed.key), expires_in)

    def grants(self, path_and_query: str) -> bool:
        """Whether ``/s3/...?X-Amz-Expires=...&X-Amz-Signature=...`` is a live link minted here."""
        try:
            self._signer.verify(path_and_query)
        except LinkRefused:
            return False
        return True

    def serve(self, raw_path: str) -> tuple[int, bytes, str]:
        """Answer a GET of a :meth:`url_for` link: the object, or 403/404."""
        if not raw_path.startswith(OBJECT_PREFIX):
            return 404, b"not found", "text/plain"
        try:
            bucket, key = self._signer.verify(raw_path)
        except LinkRefused as exc:
            return 403, f"forbidden: {exc}".encode(), "text/plain"
        try:
            resp = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError:
            return 404, b"no such object", "text/plain"
        body: bytes = resp["Body"].read()
        return 200, body, str(resp.get("ContentType") or "application/octet-stream")


def start_server(api: ApiHandler, get: GetHandler) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``api`` (POST) and ``get`` (GET) on ``127.0.0.1`` on a free port, in a daemon thread."""

    class Handler(LoopbackHandler):
        protocol_version = "HTTP/1.1"
        post_types = API_CONTENT_TYPES
        post_needs_origin = False  # botocore sends none; a browser's POST carries one and must match

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("gt-emulator: " + format, *args)

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self.send_body(400, b'{"__type": "SerializationException"}', "application/x-amz-json-1.1")
                return
            raw = self.rfile.read(length) if length else b"{}"
            status, payload = api(self.headers.get("X-Amz-Target", ""), raw)
            body = json.dumps(payload, default=str).encode("utf-8")
            self.send_body(status, body, "application/x-amz-json-1.1")

        def do_GET(self) -> None:
            status, body, ctype = get(self.path)
            self.send_body(status, body, ctype, sandbox=True)  # objects and errors: data, never a page

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="gt-emulator", daemon=True)
    thread.start()
    return server, thread
