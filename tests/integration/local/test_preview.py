"""The preview/page server over real HTTP on 127.0.0.1: page, assets, objects, versioned submits.

And what it refuses, since a loopback port is open to every web page the user visits and every
user of the machine: another Host (DNS rebinding), another Origin, a POST that is not the page's
own JSON, an object link it did not sign (or signed for another object, or that expired), and any
file outside the folder it was given, which ``gtaudit preview`` never defaults to.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from gtaudit_local.preview import TaskPageServer, folder_reader

ROOT = Path(__file__).resolve().parents[3]
AUDIT = (ROOT / "ui" / "audit.liquid.html").read_text(encoding="utf-8")
ANSWER = json.dumps({"approve": {"on": True}}).encode()


def request(
    url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, bytes]:
    """``(status, body)`` of one request to the server at ``url``, with exactly these headers (Host too)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def own(url: str, **more: str) -> dict[str, str]:
    """The headers the server's own page sends on a POST."""
    origin = url.rstrip("/")
    return {"Origin": origin, "Content-Type": "application/json", **more}


def page_links(page: str) -> list[str]:
    """The ``/s3/...`` links of a rendered page, as a browser reads them."""
    return [html.unescape(m) for m in re.findall(r'(?:src|data-src)="(/s3/[^"]+)"', page)]


@contextmanager
def audit_server(root: Path = ROOT, **task: str) -> Iterator[TaskPageServer]:
    example = json.loads((ROOT / "ui" / "examples" / "audit-input.json").read_text(encoding="utf-8"))
    with TaskPageServer.from_template(AUDIT, {**example, **task}, folder_reader(root)) as server:
        yield server


def test_preview_server_serves_the_page_and_takes_one_answer() -> None:
    with audit_server() as server:
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "/_crowd/crowd-elements.js" in page
        original = page_links(page)[0]
        assert original.startswith("/s3/gtaudit-examples/samples/images/astronaut.jpg?X-Amz-Expires=")
        img = urllib.request.urlopen(server.url + original.lstrip("/"), timeout=5)
        assert img.headers["Content-Type"] == "image/jpeg"
        assert img.read() == (ROOT / "samples" / "images" / "astronaut.jpg").read_bytes()
        status, _ = request(server.url, "/submit?v=99", method="POST", headers=own(server.url), body=ANSWER)
        assert status == 409
        headers = own(server.url, **{"X-Gtaudit-Active-Seconds": "12"})
        status, _ = request(server.url, "/submit?v=1", method="POST", headers=headers, body=ANSWER)
        assert status == 200
        result = server.wait_submission(timeout=5)
    assert result is not None
    assert result.answer == {"approve": {"on": True}}
    assert result.active_seconds == 12.0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Content-Type": "text/plain"},  # a cross-site form or no-cors fetch
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Content-Type": "text/plain"},  # no Origin: not a browser on the server's own page
        {"Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},  # a sandboxed frame or a file:// page
    ],
)
def test_a_post_from_anywhere_but_the_page_itself_is_refused(headers: dict[str, str]) -> None:
    with audit_server() as server:
        host = urlsplit(server.url).netloc
        status, _ = request(server.url, "/submit?v=1", method="POST", headers={"Host": host, **headers}, body=ANSWER)
        assert status == 403
        assert server.wait_submission(timeout=0.2) is None
    assert server.answers == []


def test_the_pages_own_post_with_a_text_body_is_refused() -> None:
    with audit_server() as server:
        headers = {"Origin": server.url.rstrip("/"), "Content-Type": "text/plain;charset=UTF-8"}
        status, _ = request(server.url, "/submit?v=1", method="POST", headers=headers, body=ANSWER)
        assert status == 403
        status, _ = request(server.url, "/release?v=1", method="POST", headers={"Origin": server.url.rstrip("/")})
        assert status == 200  # the release button's POST: no body, no type


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "attacker.127.0.0.1.nip.io"])
def test_another_host_name_is_refused_on_every_path(host: str) -> None:
    with audit_server() as server:
        port = str(urlsplit(server.url).port)
        link = page_links(urllib.request.urlopen(server.url, timeout=5).read().decode())[0]
        for path in ("/", "/state", "/_crowd/crowd-elements.js", link):
            status, body = request(server.url, path, headers={"Host": host.format(port=port)})
            assert status == 403, path
            assert b"<html" not in body.lower()


def test_localhost_and_the_bound_address_are_the_servers_own_names() -> None:
    with audit_server() as server:
        port = urlsplit(server.url).port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            assert request(server.url, "/", headers={"Host": host})[0] == 200
        same_origin_fetch = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        assert request(server.url, "/state", headers=same_origin_fetch)[0] == 200
        cross_origin = {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}
        assert request(server.url, "/state", headers=cross_origin)[0] == 403


def test_objects_are_served_only_through_the_links_of_the_page() -> None:
    with audit_server() as server:
        links = page_links(urllib.request.urlopen(server.url, timeout=5).read().decode())
        original, mask = links[0], next(x for x in links if "/reference/" in x)
        path, _, query = original.partition("?")
        other = "/s3/gtaudit-examples/samples/reference/astronaut.png"  # exists, but as the mask's link
        signature = query.rsplit("=", 1)[1]
        tampered = original[:-1] + ("0" if original[-1] != "0" else "1")
        refused = {
            "unsigned": path,
            "tampered": tampered,
            "another object, this signature": f"{other}?{query}",
            "a later expiry": re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=9999999999", original),
            "signature only": f"{path}?X-Amz-Signature={signature}",
            "a manifest": f"/s3/gtaudit-examples/manifests/input.manifest?{query}",
        }
        for name, link in refused.items():
            status, _ = request(server.url, link, headers={"Host": urlsplit(server.url).netloc})
            assert status == 403, name
        assert urllib.request.urlopen(server.url + mask.lstrip("/"), timeout=5).status == 200


def test_an_expired_link_is_refused() -> None:
    example = json.loads((ROOT / "ui" / "examples" / "audit-input.json").read_text(encoding="utf-8"))
    server = TaskPageServer.from_template(AUDIT, example, folder_reader(ROOT), link_ttl=-1)
    with server:
        link = page_links(urllib.request.urlopen(server.url, timeout=5).read().decode())[0]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + link.lstrip("/"), timeout=5)
        assert err.value.code == 403


def test_a_signed_link_never_reads_outside_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "s3"
    (root / "bkt").mkdir(parents=True)
    (root / "bkt" / "ok.jpg").write_bytes(b"inside")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "bkt" / "link.jpg").symlink_to(tmp_path / "secret.txt")
    with TaskPageServer(folder_reader(root)) as server:
        # Even a link the server signed itself (as if a task input referenced these) reads nothing outside.
        for uri in ("s3://bkt/../secret.txt", "s3://bkt/../../secret.txt", "s3://bkt/link.jpg"):
            status, body = request(server.url, server.link_for(uri), headers={"Host": urlsplit(server.url).netloc})
            assert status == 404, uri
            assert b"outside" not in body
        for path in ("/s3/bkt/%2e%2e/%2e%2e/secret.txt", "/s3/bkt/%2F" + str(tmp_path / "secret.txt")):
            status, body = request(server.url, server.sign(path), headers={"Host": urlsplit(server.url).netloc})
            assert status == 404, path
            assert b"outside" not in body
        status, body = request(server.url, server.link_for("s3://bkt/ok.jpg"), headers={"Host": "127.0.0.1:1"})
        assert status == 403
        ok = urllib.request.urlopen(server.url + server.link_for("s3://bkt/ok.jpg").lstrip("/"), timeout=5)
        assert ok.read() == b"inside"


def test_closing_the_server_ends_a_wait_at_once() -> None:
    server = TaskPageServer(folder_reader(ROOT)).start()
    server.show("<p>task</p>")
    timer = threading.Timer(0.3, server.close)
    timer.start()
    t0 = time.monotonic()
    assert server.wait_submission(timeout=30) is None
    assert time.monotonic() - t0 < 10
    server.close()  # twice is fine


def _preview(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", "preview", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _served_at(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    assert match, line
    return match.group(1)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_cli_preview_prints_the_submitted_answer_and_exits_with_once() -> None:
    proc = _preview("ui/audit.liquid.html", "--input", "events/audit_pre-task.json", "--once")
    try:
        url = _served_at(proc)
        page = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "street-1a2b3c4d" in page  # audit_pre turned the event into the task input
        body = json.dumps({"approve": {"on": True}, "reject": {"on": False}}).encode()
        assert request(url, "/submit?v=1", method="POST", headers=own(url), body=body)[0] == 200
        out, _ = proc.communicate(timeout=10)
    finally:
        _stop(proc)
    assert proc.returncode == 0
    assert json.loads(out) == {"approve": {"on": True}, "reject": {"on": False}}


def test_cli_preview_serves_no_file_of_the_working_directory_by_default() -> None:
    proc = _preview("ui/audit.liquid.html", "--input", "ui/examples/audit-input.json")
    try:
        url = _served_at(proc)
        host = {"Host": urlsplit(url).netloc}
        for path in ("/s3/x/.git/config", "/s3/x/pyproject.toml", "/s3/gtaudit-examples/samples/images/astronaut.jpg"):
            assert request(url, path, headers=host)[0] == 403, path
        # Not even the page's own images: no folder was given.
        link = page_links(urllib.request.urlopen(url, timeout=5).read().decode())[0]
        assert request(url, link, headers=host)[0] == 404
    finally:
        _stop(proc)


def test_cli_preview_with_an_s3_root_serves_only_what_the_page_references() -> None:
    proc = _preview("ui/audit.liquid.html", "--input", "ui/examples/audit-input.json", "--s3-root", ".")
    try:
        url = _served_at(proc)
        host = {"Host": urlsplit(url).netloc}
        link = page_links(urllib.request.urlopen(url, timeout=5).read().decode())[0]
        assert request(url, link, headers=host)[0] == 200
        query = link.partition("?")[2]
        for path in ("/s3/x/.git/config", f"/s3/x/.git/config?{query}", f"/s3/gtaudit-examples/.git/config?{query}"):
            assert request(url, path, headers=host)[0] == 403, path
    finally:
        _stop(proc)
