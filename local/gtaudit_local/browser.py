"""A person as a worker of the local Ground Truth emulator: the task page in a browser tab.

``gtaudit demo --workers browser`` gives the emulator a :class:`BrowserWorker`. Each task's page
(the template GT would render, with the local crowd elements) is served on 127.0.0.1 at one stable
URL; the person answers it in a browser and the answer goes back to the emulator, which writes the
worker-response file and calls the consolidation Lambda exactly as for any worker. Between tasks
the tab shows a waiting page that opens the next task by itself.

The page's object links are the emulator's ``grant_read_access`` links, minted again by the
worker's own page server (:meth:`TaskPageServer.sign`): same origin, so the audit page may read
the mask's pixels on a canvas, and still only the objects the task's page references.

A person may never answer. :meth:`BrowserWorker.close` (from any thread: the process's shutdown
path) ends the wait at once, the task counts as abandoned, later tasks are abandoned without being
shown, and the page server stops.
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gtaudit_local.preview import TaskPageServer, s3_reader
from gtaudit_local.workers.base import Answer, Task

# The emulator's links as they stand in the rendered (HTML-escaped) page:
# http://127.0.0.1:<port>/s3/<bucket>/<key>?X-Amz-Expires=<t>&amp;X-Amz-Signature=<hex>
_EMULATOR_LINK = re.compile(
    r"https?://(?:127\.0\.0\.1|localhost):\d+"
    r"(?P<path>/s3/[A-Za-z0-9._~%/\-]+)"
    r"(?P<query>\?X-Amz-Expires=-?\d+(?P<amp>&amp;|&)X-Amz-Signature=[0-9A-Za-z]+)"
)


def same_origin_links(html: str, sign: Callable[..., str], grants: Callable[[str], bool] | None = None) -> str:
    """Point the emulator's object links at ``/s3/...`` on the page's own server, signed by ``sign``.

    Parameters
    ----------
    html
        The page as the emulator rendered it.
    sign
        The page server's :meth:`TaskPageServer.sign` (``sign(path, amp=...)``).
    grants
        Whether a path and query is a link the emulator granted (``Task.grants``). Only those are
        re-signed: a worker's comment or a manifest field that merely looks like a link stays text.
    """

    def resign(m: re.Match[str]) -> str:
        if grants is not None and not grants(m["path"] + m["query"].replace("&amp;", "&")):
            return m[0]
        return sign(m["path"], amp=m["amp"])

    return _EMULATOR_LINK.sub(resign, html)


class BrowserWorker:
    """Implements the emulator's ``Worker`` protocol with a person at a browser.

    Parameters
    ----------
    worker_id
        GT's ``workerId`` (default: ``private.us-east-1.`` + 16 random hex digits).
    sub
        The Cognito ``sub`` (default: a random UUID).
    port
        Port on 127.0.0.1 (0: a free port, chosen once; the URL stays the same for every task).
    timeout
        Seconds to wait for an answer before the task counts as abandoned (``None``: wait forever).
    announce
        Called with a line of text when a task is waiting (default: print to stderr).
    """

    def __init__(
        self,
        worker_id: str | None = None,
        sub: str | None = None,
        *,
        port: int = 0,
        timeout: float | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.worker_id = worker_id or f"private.us-east-1.{uuid.uuid4().hex[:16]}"
        self.sub = sub or str(uuid.uuid4())
        self.timeout = timeout
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self._port = port
        self._server: TaskPageServer | None = None
        self._s3: Any = None
        self._closed = threading.Event()
        self._server_lock = threading.Lock()  # close() may run while work() starts the server
        self._one_at_a_time = threading.Lock()  # a person does one task at a time, as in GT

    @property
    def url(self) -> str | None:
        """Where the person opens the tasks (once the first task came)."""
        server = self._server
        return server.url if server else None

    def _read(self, bucket: str, key: str) -> bytes | None:
        return s3_reader(self._s3)(bucket, key)

    def _page_server(self) -> TaskPageServer | None:
        """The page server, started on the first task; ``None`` once closed."""
        with self._server_lock:
            if self._closed.is_set():
                return None
            if self._server is None:
                self._server = TaskPageServer(self._read, mode="runtime", port=self._port).start()
            return self._server

    def work(self, task: Task, s3: Any) -> Answer:
        """Show ``task`` to the person and wait for the answer (or release, the timeout, or :meth:`close`)."""
        with self._one_at_a_time:
            accepted = datetime.now(UTC)
            self._s3 = s3
            server = self._page_server()
            if server is None:
                return Answer("abandoned", None, accepted, None, 0.0)
            title = f"{task.kind} · {task.job_name} · object {task.dataset_object_id}"
            server.show(same_origin_links(task.html, server.sign, task.grants), title=title)
            self.announce(f"task waiting for you at {server.url} ({title})")
            result = server.wait_submission(self.timeout)  # None at once when close() runs
            now = datetime.now(UTC)
            server.clear()
            wall = (now - accepted).total_seconds()
            if result is None:
                return Answer("abandoned", None, accepted, None, wall)
            active = wall if result.active_seconds is None else min(result.active_seconds, wall)
            if result.answer is None:
                return Answer("returned", None, accepted, None, active)
            return Answer("submitted", result.answer, accepted, now, active)

    def close(self) -> None:
        """Abandon the waiting task, refuse later ones, and stop serving; safe from any thread, twice."""
        with self._server_lock:
            self._closed.set()
            server, self._server = self._server, None
        if server is not None:
            server.close()

    def __enter__(self) -> BrowserWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
