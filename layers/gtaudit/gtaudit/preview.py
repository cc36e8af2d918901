"""Serve one rendered worker task page on 127.0.0.1 with the local crowd elements.

Used by ``gtaudit preview`` (a template with a task input, objects read from a local folder) and
by the local runtime's browser worker (objects read from the embedded S3). The page's
``grant_read_access`` URLs point back at this server (``/s3/<bucket>/<key>``); the crowd form
POSTs its answer to ``/submit``.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from gtaudit.exceptions import InvalidTaskInputError
from gtaudit.local.crowd import ASSETS, asset, localize_page
from gtaudit.local.liquid import render_task
from gtaudit.s3uri import parse_s3_uri

ObjectReader = Callable[[str, str], bytes | None]
"""``(bucket, key) -> bytes`` of the object, or ``None`` when it does not exist."""

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a 12 MP RGBA PNG in base64 stays well below this


def url_for(uri: str) -> str:
    """``s3://bucket/key`` -> ``/s3/bucket/key``: the URL this server answers for the object."""
    loc = parse_s3_uri(uri)
    return f"/s3/{quote(loc.bucket, safe='')}/{quote(loc.key, safe='/')}"


def load_task_input(data: Any) -> dict[str, Any]:
    """The ``taskInput`` in a JSON document: a task input itself, or a pre-annotation Lambda's response.

    Raises
    ------
    InvalidTaskInputError
        ``data`` is a Lambda *event* (it has ``dataObject`` or ``payload``) or not an object.
    """
    if not isinstance(data, dict):
        raise InvalidTaskInputError("the input must be a JSON object (a taskInput or a pre-annotation response)")
    if isinstance(data.get("taskInput"), dict):
        return dict(data["taskInput"])
    if "dataObject" in data or "payload" in data:
        raise InvalidTaskInputError(
            "this is a Lambda event, not a task input: pass the taskInput that labeling_pre or audit_pre "
            "returns for it (or their whole response)"
        )
    return dict(data)


def folder_reader(root: Path) -> ObjectReader:
    """Read ``s3://bucket/key`` from ``root/bucket/key``, else ``root/key`` (never outside ``root``)."""
    base = root.resolve()

    def read(bucket: str, key: str) -> bytes | None:
        for candidate in (base / bucket / key, base / key):
            path = candidate.resolve()
            if path.is_relative_to(base) and path.is_file():
                return path.read_bytes()
        return None

    return read


def s3_reader(s3: Any) -> ObjectReader:
    """Read objects through an S3 client (the embedded moto S3 in the local runtime)."""

    def read(bucket: str, key: str) -> bytes | None:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # botocore ClientError for a missing bucket or access
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in {"NoSuchBucket", "404", "NoSuchKey"}:
                return None
            raise
        return body

    return read


class TaskPageServer:
    """One task page on ``http://127.0.0.1:<port>/``; collects the answers POSTed to ``/submit``.

    Parameters
    ----------
    template_text
        The Liquid template.
    task_input
        Its ``task.input``.
    read_object
        Serves ``/s3/<bucket>/<key>`` (the URLs ``grant_read_access`` produced).
    mode
        ``"preview"`` (the page shows the answer) or ``"runtime"``.
    port
        0 picks a free port.
    on_submit
        Called with each answer (answerContent dict) as it arrives.
    """

    def __init__(
        self,
        template_text: str,
        task_input: Mapping[str, Any],
        read_object: ObjectReader,
        *,
        mode: str = "preview",
        port: int = 0,
        title: str = "gtaudit task",
        on_submit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        rendered = render_task(template_text, task_input, url_for)
        self.page = localize_page(rendered, submit_url="/submit", mode=mode, title=title).encode("utf-8")
        self.read_object = read_object
        self.on_submit = on_submit
        self.answers: list[dict[str, Any]] = []
        self.submitted = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> TaskPageServer:
        """Serve in a background thread; return self."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gtaudit-task-page", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the first answer arrives (or ``timeout`` seconds pass); return it or ``None``."""
        if not self.submitted.wait(timeout):
            return None
        return self.answers[0]

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TaskPageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self, answer: dict[str, Any]) -> None:
        self.answers.append(answer)
        if self.on_submit is not None:
            self.on_submit(answer)
        self.submitted.set()


def _handler_for(server: TaskPageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the CLI prints what matters."""

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path in {"/", "/index.html"}:
                self._send(HTTPStatus.OK, server.page, "text/html; charset=utf-8")
                return
            if path.startswith("/_crowd/") and path[len("/_crowd/") :] in ASSETS:
                name = path[len("/_crowd/") :]
                ctype = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
                self._send(HTTPStatus.OK, asset(name), ctype)
                return
            if path.startswith("/s3/"):
                bucket, _, key = path[len("/s3/") :].partition("/")
                data = server.read_object(unquote(bucket), unquote(key)) if bucket and key else None
                if data is not None:
                    ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
                    self._send(HTTPStatus.OK, data, ctype)
                    return
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/submit":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_ANSWER_BYTES:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"bad length", "text/plain; charset=utf-8")
                return
            try:
                answer = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._send(HTTPStatus.BAD_REQUEST, b"not JSON", "text/plain; charset=utf-8")
                return
            if not isinstance(answer, dict):
                self._send(HTTPStatus.BAD_REQUEST, b"answer must be an object", "text/plain; charset=utf-8")
                return
            server._accept(answer)
            self._send(HTTPStatus.OK, b'{"ok": true}', "application/json")

    return Handler
