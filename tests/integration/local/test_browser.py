"""A person as a worker: the emulator's links minted again for the page's own server, and a wait that ends.

A task can wait for a person forever; the process must still stop within seconds when asked
(Ctrl-C, ``kill``), and take the task's page down with it.
"""

from __future__ import annotations

import html
import io
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gtaudit_local.browser import BrowserWorker, same_origin_links
from gtaudit_local.groundtruth.server import SignedLinks
from gtaudit_local.preview import TaskPageServer, s3_reader
from gtaudit_local.workers.base import Task

ROOT = Path(__file__).resolve().parents[3]
EMULATOR_PAGE = (
    '<img src="http://127.0.0.1:4321/s3/bkt/images/a%20b.png?X-Amz-Expires=1&amp;X-Amz-Signature=9f">'
    '<crowd-semantic-segmentation initial-value="{&quot;src&quot;: &quot;'
    'http://localhost:4321/s3/bkt/masks/m.png?X-Amz-Expires=1&amp;X-Amz-Signature=ab&quot;}">'
)


def task(page: str = EMULATOR_PAGE) -> Task:
    return Task("job-a", "labeling", "0", {"source-ref": "s3://bkt/images/a b.png"}, {}, page, 1)


class Objects:
    """What a worker is handed as its S3 client: three objects of one bucket."""

    store: ClassVar[dict[tuple[str, str], bytes]] = {
        ("bkt", "images/a b.png"): b"photo",
        ("bkt", "masks/m.png"): b"mask",
        ("bkt", "x"): b"x",
    }

    class exceptions:  # the shape of a boto3 client's attribute
        NoSuchKey = KeyError

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data = self.store[(Bucket, Key)]
        return {"Body": io.BytesIO(data)}


def test_emulator_links_become_the_page_servers_own_signed_links() -> None:
    with TaskPageServer(s3_reader(Objects())) as server:
        page = same_origin_links(EMULATOR_PAGE, server.sign)
        assert "4321" not in page
        links = [html.unescape(x) for x in re.findall(r"/s3/[^\"&]+\?X-Amz-Expires=\d+&amp;X-Amz-Signature=\w+", page)]
        assert len(links) == 2
        got = [urllib.request.urlopen(server.url + link.lstrip("/"), timeout=5).read() for link in links]
        assert got == [b"photo", b"mask"]
        with pytest.raises(urllib.error.HTTPError) as err:  # in the bucket, but not on the page
            urllib.request.urlopen(server.url + "s3/bkt/x", timeout=5)
        assert err.value.code == 403


def test_only_links_the_emulator_granted_are_re_signed_never_text_that_looks_like_one() -> None:
    links = SignedLinks(s3=None)
    links.endpoint = "http://127.0.0.1:4321"
    granted = html.escape(links.url_for("s3://bkt/images/a b.png"))
    forged = "http://127.0.0.1:4321/s3/bkt/x?X-Amz-Expires=9999999999&amp;X-Amz-Signature=00ff"  # a comment
    with TaskPageServer(s3_reader(Objects())) as server:
        page = same_origin_links(f'<img src="{granted}"><p>{forged}</p>', server.sign, links.grants)
        assert "4321/s3/bkt/images" not in page and forged in page  # the grant moved; the text stayed text
        link = html.unescape(re.findall(r'<img src="[^"]*?(/s3/[^"]+)"', page)[0])
        assert urllib.request.urlopen(server.url + link.lstrip("/"), timeout=5).read() == b"photo"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "s3/bkt/x?X-Amz-Expires=9999999999&X-Amz-Signature=00ff", timeout=5)
        assert err.value.code == 403


def test_close_ends_a_waiting_task_and_abandons_the_next_ones() -> None:
    worker = BrowserWorker(announce=lambda line: None)
    answers: list[Any] = []
    runner = threading.Thread(target=lambda: answers.append(worker.work(task(), Objects())))
    runner.start()
    for _ in range(200):
        if worker.url:
            break
        time.sleep(0.05)
    url = worker.url
    assert url is not None
    assert urllib.request.urlopen(url, timeout=5).status == 200
    worker.close()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert answers[0].status == "abandoned"
    assert not _port_open(url)  # the page went down with it
    t0 = time.monotonic()
    assert worker.work(task(), Objects()).status == "abandoned"  # not shown, not waited for
    assert time.monotonic() - t0 < 5
    worker.close()


# As the emulator runs a worker (a job's thread pool) and as the runtime waits and stops: the main
# thread polls (Python runs a signal handler in the main thread only, so a main thread blocked for
# good on a lock would never see a SIGTERM the kernel handed to another thread); SIGTERM raises
# KeyboardInterrupt there, and the way out closes the worker.
WAITING_PROCESS = textwrap.dedent(
    """
    import signal, sys
    from concurrent.futures import ThreadPoolExecutor, wait
    from gtaudit_local.browser import BrowserWorker
    from gtaudit_local.workers.base import Task

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    worker = BrowserWorker()
    pool = ThreadPoolExecutor(max_workers=2)
    page = Task("job-a", "labeling", "0", {}, {}, "<p>paint</p>", 1)
    try:
        futures = [pool.submit(worker.work, page, None) for _ in range(2)]
        while wait(futures, timeout=0.05).not_done:
            pass
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
    finally:
        worker.close()
    """
)


def _port_open(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _waiting_url(proc: subprocess.Popen[str], lines: list[str]) -> str:
    """Read stderr in a thread until the worker announces its task; return the URL."""
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "task waiting for you at" in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(90), "".join(lines)
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", "".join(lines))
    assert match
    return match.group(1)


def _stops_on_sigterm(proc: subprocess.Popen[str], url: str, lines: list[str]) -> None:
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # a loaded machine; an idle one takes a second or two
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            pytest.fail("the process was still running 20 s after SIGTERM:\n" + "".join(lines))
    assert not _port_open(url)


def test_sigterm_stops_a_process_whose_worker_waits_for_a_person() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WAITING_PROCESS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    url = _waiting_url(proc, lines)
    assert _port_open(url)
    _stops_on_sigterm(proc, url, lines)
    assert "interrupted" in "".join(lines)


def test_sigterm_stops_a_browser_demo_waiting_for_its_first_answer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", "demo", "--workers", "browser", "--out", str(tmp_path / "o")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    url = _waiting_url(proc, lines)
    _stops_on_sigterm(proc, url, lines)
