"""Serve rendered worker task pages on 127.0.0.1 with the local crowd elements.

Used by ``gtaudit preview`` (a template with a task input, objects read from a folder given on
the command line) and by the local runtime's browser worker (objects read from the embedded S3).
The page's ``grant_read_access`` URLs point back at this server (same origin, so the audit page
can read the mask's pixels); the crowd form POSTs its answer to ``/submit?v=<page>``.

The server guards what it serves, because a loopback port is reachable by every web page the
user opens and by every user of the machine. Each request passes
:class:`~gtaudit_local.loopback.LoopbackHandler`'s checks (own ``Host``, own ``Origin``, JSON
POSTs from the page itself). ``/s3/<bucket>/<key>`` streams an object only through a link this
server signed (:mod:`gtaudit_local.signing`) while rendering a page that references the object,
and only until the link expires; everything else there is 403, so no other object of the bucket
or folder can be read, whatever its name.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gtaudit.audit.pre import pre_audit
from gtaudit.consolidation import MAX_ANSWER_BYTES
from gtaudit.exceptions import InvalidS3UriError, InvalidTaskInputError
from gtaudit.labeling.pre import config_from_env, pre_labeling
from gtaudit.s3uri import parse_s3_uri, split_allowed

from gtaudit_local.crowd import ASSETS, asset, localize_page
from gtaudit_local.liquid import render_task
from gtaudit_local.loopback import LoopbackHandler
from gtaudit_local.signing import LinkRefused, LinkSigner, object_path

ObjectReader = Callable[[str, str], bytes | None]
"""``(bucket, key) -> bytes`` of the object, or ``None`` when it does not exist."""

PAGE_LINK_TTL_SECONDS = 12 * 3600
"""How long a page's object links work: a working day with one tab open (reload after that)."""


def url_for(uri: str, sign: Callable[[str], str] | None = None) -> str:
    """``s3://bucket/key`` -> ``/s3/bucket/key``, signed by ``sign``: the page's link to the object.

    A server renders its pages with its own ``sign`` (:meth:`TaskPageServer.link_for`); without
    one, the bare path (no server streams it) serves checks of the rendered text. A malformed URI
    is returned unchanged (the template escapes it), so one bad value in a task input shows as a
    broken image instead of failing the whole page.
    """
    try:
        loc = parse_s3_uri(uri)
    except InvalidS3UriError:
        return uri
    path = object_path(loc.bucket, loc.key)
    return sign(path) if sign is not None else path


def load_task_input(data: Any, *, stage: str = "labeling") -> dict[str, Any]:
    """The ``taskInput`` a JSON document stands for.

    Parameters
    ----------
    data
        A task input itself; a pre-annotation Lambda's response (``{"taskInput": ...}``); or a
        pre-annotation *event* (``events/labeling_pre-*.json``, ``events/audit_pre-*.json``), turned
        into a task input by the same domain function the stage's pre-annotation Lambda calls
        (``LABEL_SET``, ``TASK_LANGUAGE`` and ``ALLOWED_BUCKETS`` from the environment, as there).
    stage
        ``"labeling"`` or ``"audit"``: which pre-annotation function reads an event.

    Raises
    ------
    InvalidTaskInputError
        Not an object, a consolidation event, or an event whose object is not workable.
    """
    if not isinstance(data, dict):
        raise InvalidTaskInputError("the input must be a JSON object (a taskInput, a pre-annotation response or event)")
    if isinstance(data.get("dataObject"), dict):
        data = _pre_annotation(data["dataObject"], stage)
    if isinstance(data.get("taskInput"), dict):
        if data.get("isHumanAnnotationRequired") is False:
            reason = data["taskInput"].get("skipReason", "no reason given")
            raise InvalidTaskInputError(f"the pre-annotation step skips this object: {reason}")
        return dict(data["taskInput"])
    if "payload" in data:
        raise InvalidTaskInputError("this is a consolidation event; pass a task input or a pre-annotation event")
    return dict(data)


def _pre_annotation(data_object: dict[str, Any], stage: str) -> dict[str, Any]:
    """Run the stage's pre-annotation domain function on a manifest line.

    Without ``ALLOWED_BUCKETS`` in the environment, the buckets the line itself names are allowed:
    a preview shows a page, it guards nothing.
    """
    allowed = os.environ.get("ALLOWED_BUCKETS") or ",".join(
        sorted(set(re.findall(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/", json.dumps(data_object))))
    )
    language = os.environ.get("TASK_LANGUAGE", "en")
    if stage == "audit":
        return pre_audit(data_object, language=language, allowed=split_allowed(allowed)).dump()
    env = {"LABEL_SET": os.environ.get("LABEL_SET", ""), "TASK_LANGUAGE": language, "ALLOWED_BUCKETS": allowed}
    return pre_labeling(data_object, config_from_env(env)).dump()


def folder_reader(root: Path) -> ObjectReader:
    """Read ``s3://bucket/key`` from ``root/bucket/key``, else ``root/key``, never outside ``root``.

    A key that climbs out (``..``), an absolute key, or a symlink that points out of ``root``
    resolves outside it and reads as absent.
    """
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


@dataclass(frozen=True)
class Submission:
    """What the page sent: the answer (``None`` when the worker released the task) and its active time."""

    answer: dict[str, Any] | None
    active_seconds: float | None


class TaskPageServer:
    """Worker task pages on ``http://127.0.0.1:<port>/``, one at a time, at a stable URL.

    ``show`` puts a rendered page up (a new *version*); the page POSTs its answer to
    ``/submit?v=<version>`` and ``wait`` returns it. Between tasks ``/`` shows a waiting page that
    reloads itself when the next task is shown, so a person keeps one tab open all day.

    Parameters
    ----------
    read_object
        Reads the objects behind ``/s3/<bucket>/<key>`` links this server signed (:meth:`link_for`).
    mode
        ``"preview"`` (the page shows the answer JSON) or ``"runtime"`` (a thank-you note, then the next task).
    port
        0 picks a free port.
    on_submit
        Called with each answer (answerContent dict) as it arrives.
    link_ttl
        Seconds a page's object links work after the page is rendered.
    """

    def __init__(
        self,
        read_object: ObjectReader,
        *,
        mode: str = "preview",
        port: int = 0,
        on_submit: Callable[[dict[str, Any]], None] | None = None,
        link_ttl: float = PAGE_LINK_TTL_SECONDS,
    ) -> None:
        self.read_object = read_object
        self.mode = mode
        self.on_submit = on_submit
        self.link_ttl = link_ttl
        self.links = LinkSigner()
        self.answers: list[dict[str, Any]] = []
        self.submitted = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # an answer arrived, or the server closed
        self._closed = False
        self._version = 0
        self._page: bytes | None = None
        self._result: Submission | None = None
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @classmethod
    def from_template(
        cls, template_text: str, task_input: Mapping[str, Any], read_object: ObjectReader, **kwargs: Any
    ) -> TaskPageServer:
        """A server showing ``template_text`` rendered with ``task_input`` (GT's Liquid, :meth:`link_for`)."""
        title = kwargs.pop("title", "gtaudit task")
        server = cls(read_object, **kwargs)
        server.show(render_task(template_text, task_input, server.link_for), title=title)
        return server

    @property
    def url(self) -> str:
        """The page's URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def version(self) -> int:
        """The number of pages shown so far (the current page's version)."""
        return self._version

    def sign(self, path: str, *, amp: str = "&") -> str:
        """``path`` (``/s3/<bucket>/<key>``) as a link this server streams for ``link_ttl`` seconds."""
        return self.links.sign(path, self.link_ttl, amp=amp)

    def link_for(self, uri: str) -> str:
        """``grant_read_access`` for this server's pages: the signed link to ``s3://bucket/key``."""
        return url_for(uri, self.sign)

    def show(self, rendered_html: str, *, title: str = "gtaudit task") -> int:
        """Put up a rendered task page (it replaces the current one); return its version."""
        with self._lock:
            self._version += 1
            v = self._version
            page = localize_page(
                rendered_html, submit_url=f"/submit?v={v}", mode=self.mode, title=title, extra={"version": v}
            )
            self._page = page.encode("utf-8")
            self._result = None
            self.submitted.clear()
        return v

    def clear(self) -> None:
        """Show the waiting page (no task)."""
        with self._lock:
            self._page = None
            self._version += 1
            self.submitted.clear()

    def start(self) -> TaskPageServer:
        """Serve in a background thread (once, however often called); return self."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gtaudit-task-page", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the current page's answer arrives (or ``timeout`` passes); return it or ``None``."""
        result = self.wait_submission(timeout)
        return result.answer if result else None

    def wait_submission(self, timeout: float | None = None) -> Submission | None:
        """Like ``wait``, with the active time the page measured; ``answer`` is ``None`` if released.

        Returns ``None`` at once when the server is closed, from any thread: closing is how the
        process interrupts a task nobody will answer.
        """
        with self._changed:
            self._changed.wait_for(lambda: self.submitted.is_set() or self._closed, timeout)
            return self._result if self.submitted.is_set() else None

    def close(self) -> None:
        """Stop serving, release the port and wake every :meth:`wait`; safe to call twice."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:  # shutdown() waits for serve_forever, so only once it ran
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> TaskPageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _current(self) -> tuple[int, bytes | None]:
        with self._lock:
            return self._version, self._page

    def _accept(self, version: int, answer: dict[str, Any] | None, active: float | None) -> bool:
        with self._lock:
            if version != self._version or self._result is not None or self._page is None:
                return False
            self._result = Submission(answer, active)
        if answer is not None:
            self.answers.append(answer)
            if self.on_submit is not None:
                self.on_submit(answer)
        return True

    def _announce(self) -> None:
        """Wake the waiters for an accepted answer: only once the browser has its reply (a waiter
        may exit the process as soon as it wakes, which would cut the reply off)."""
        with self._changed:
            self.submitted.set()
            self._changed.notify_all()


_WAITING_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Waiting for a task</title>
<style>body{font:16px system-ui,sans-serif;display:flex;align-items:center;justify-content:center;
height:90vh;color:#444}</style>
</head><body><p>No task right now. This page opens the next one as soon as it is ready.</p>
<script>
var v = %d;
setInterval(function () {
  fetch("/state").then(function (r) { return r.json(); })
    .then(function (s) { if (s.version !== v && s.task) location.reload(); });
}, 1000);
</script></body></html>"""


def _handler_for(server: TaskPageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the CLI prints what matters."""

        def _text(self, status: int, text: str) -> None:
            self.send_body(status, text.encode(), "text/plain; charset=utf-8")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            version, page = server._current()
            if path in {"/", "/index.html"}:
                body = page if page is not None else (_WAITING_PAGE % version).encode()
                self.send_body(HTTPStatus.OK, body, "text/html; charset=utf-8")
            elif path == "/state":
                state = {"version": version, "task": page is not None}
                self.send_body(HTTPStatus.OK, json.dumps(state).encode(), "application/json")
            elif path.startswith("/_crowd/") and path[len("/_crowd/") :] in ASSETS:
                name = path[len("/_crowd/") :]
                ctype = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
                self.send_body(HTTPStatus.OK, asset(name), ctype)
            elif path.startswith("/s3/"):
                self._object()
            else:
                self._text(HTTPStatus.NOT_FOUND, "not found")

        def _object(self) -> None:
            try:
                bucket, key = server.links.verify(self.path)
            except LinkRefused as exc:
                self._text(HTTPStatus.FORBIDDEN, f"forbidden: {exc}")
                return
            data = server.read_object(bucket, key)
            if data is None:
                self._text(HTTPStatus.NOT_FOUND, "no such object")
            else:
                ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
                self.send_body(HTTPStatus.OK, data, ctype, sandbox=True)

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path not in {"/submit", "/release"}:
                self._text(HTTPStatus.NOT_FOUND, "not found")
                return
            try:
                version = int(parse_qs(parts.query)["v"][0])
            except (KeyError, ValueError, IndexError):
                self._text(HTTPStatus.BAD_REQUEST, "missing ?v=<page version>")
                return
            active = float_or_none(self.headers.get("X-Gtaudit-Active-Seconds"))
            answer: dict[str, Any] | None = None
            if parts.path == "/submit":
                length = _int_or_zero(self.headers.get("Content-Length"))
                if length <= 0 or length > MAX_ANSWER_BYTES:
                    self._text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "bad length")
                    return
                try:
                    answer = json.loads(self.rfile.read(length))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self._text(HTTPStatus.BAD_REQUEST, "not JSON")
                    return
                if not isinstance(answer, dict):
                    self._text(HTTPStatus.BAD_REQUEST, "the answer must be a JSON object")
                    return
            if not server._accept(version, answer, active):
                self._text(HTTPStatus.CONFLICT, "this task is no longer open")
                return
            try:
                self.send_body(HTTPStatus.OK, b'{"ok": true}', "application/json")
                self.wfile.flush()
            finally:
                server._announce()

    return Handler


def float_or_none(text: str | None) -> float | None:
    try:
        return None if text is None else max(0.0, float(text))
    except ValueError:
        return None


def _int_or_zero(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
