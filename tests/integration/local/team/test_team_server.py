"""The team server over plain HTTP: who may ask, who is signed in, whose task is whose, and Stop.

Requests are written by hand (``http.client``) so that each header a browser would send, or an
attacker could, is the test's choice.
"""

from __future__ import annotations

import datetime as dt
import html
import http.client
import json
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.team.lead import JobProgress
from gtaudit_local.team.people import Roster
from gtaudit_local.team.seats import JobSize, TeamQueue
from gtaudit_local.team.server import BindRefused, TeamServer, check_bind
from team_support import Working, jobs, offer, roster, task

JOB = JobSize("proj-r1-labeling", "labeling", 2, 1)
EVIL = '<script>alert("x")</script>'
EMULATOR_IMG = (
    '<img id="photo" src="http://127.0.0.1:4321/s3/bkt/images/0.jpg?X-Amz-Expires=9999999999&amp;X-Amz-Signature=ab">'
)
OBJECTS = {("bkt", "images/0.jpg"): b"photo", ("bkt", "jobs/j/overlays/x.jpg"): b"overlay"}
ATTENTION = {
    "source-ref": "s3://bkt/images/x.jpg",
    "object-id": "x-1",
    "gtaudit": {
        "outcome": "needs-attention",
        "round": 3,
        "reason": "rejected in round 3, the last of 3",
        "mask": "s3://bkt/jobs/j/annotations/consolidated-annotation/output/x_2026-11-24T100000.png",
        "feedback": {"verdict": "reject", "reasons": ["loose-boundary"], "comment": EVIL,
                     "notes": [{"n": 1, "x": 0.5, "y": 0.5, "text": EVIL}], "auditors": ["private.us-east-1.aa"]},
    },
}  # fmt: skip


class Client:
    """One browser: its cookie, its CSRF token, and the headers a browser sends to the page's own server."""

    def __init__(self, server: TeamServer, *, tls: ssl.SSLContext | None = None) -> None:
        self.server = server
        self.tls = tls
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.origin = f"{server.scheme}://127.0.0.1:{server.port}"

    def request(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None, csrf: bool = True
    ) -> tuple[int, http.client.HTTPResponse, str]:
        if self.tls is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, timeout=10, context=self.tls
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        sent = {"Host": f"127.0.0.1:{self.server.port}"}
        if self.cookie:
            sent["Cookie"] = self.cookie
        data = None
        if method == "POST":
            sent["Origin"] = self.origin
            if csrf and self.csrf:
                sent["X-Gtaudit-Csrf"] = self.csrf
            if body is not None:
                data = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        return resp.status, resp, text

    def sign_in(self, name: str) -> http.client.HTTPResponse:
        token = self.server.roster.sign_in_token(name, 3600)
        status, resp, _ = self.request("GET", f"/signin?t={token}")
        assert status == 200
        self.cookie = resp.getheader("Set-Cookie", "").split(";")[0]
        _, _, home = self.request("GET", "/")
        self.csrf = json.loads(re.search(r"const CSRF = (\"[^\"]+\")", home).group(1))  # type: ignore[union-attr]
        return resp


@pytest.fixture
def team(tmp_path: Path) -> Roster:
    return roster(tmp_path)


@pytest.fixture
def queue(team: Roster) -> Iterator[TeamQueue]:
    q = TeamQueue(team, jobs(JOB), heartbeat_timeout=600)
    yield q
    q.close()


@pytest.fixture
def stopped() -> threading.Event:
    return threading.Event()


@pytest.fixture
def server(team: Roster, queue: TeamQueue, stopped: threading.Event) -> Iterator[TeamServer]:
    progress = [JobProgress(JOB.name, "labeling", 1, "InProgress", 0, 2), JobProgress(EVIL, "audit", 1, EVIL, 0, 1)]
    with TeamServer(
        team,
        queue,
        read_object=lambda bucket, key: OBJECTS.get((bucket, key)),
        progress=lambda: progress,
        needs_attention=lambda: [ATTENTION],
        report=lambda: f"<html><body><h1>worker report</h1>{EVIL}</body></html>",
        stop=stopped.set,
    ) as srv:
        yield srv


def posted(queue: TeamQueue, object_id: str = "0") -> Working:
    return offer(queue, task(JOB.name, "labeling", object_id, html=EMULATOR_IMG))


def test_a_foreign_host_or_origin_is_refused(server: TeamServer) -> None:
    browser = Client(server)
    browser.sign_in("Ana")
    assert browser.request("GET", "/")[0] == 200
    assert browser.request("GET", "/", headers={"Host": f"evil.example:{server.port}"})[0] == 403
    assert browser.request("GET", "/", headers={"Origin": "http://evil.example"})[0] == 403
    assert browser.request("POST", "/claim", {}, headers={"Origin": "http://evil.example"})[0] == 403
    assert browser.request("POST", "/claim", {}, headers={"Origin": ""})[0] == 403
    status, _, text = browser.request("POST", "/claim", headers={"Content-Type": "text/plain", "Content-Length": "0"})
    assert status == 403 and "JSON" in text


def test_without_a_session_only_signin_answers(server: TeamServer, queue: TeamQueue) -> None:
    working = posted(queue)
    stranger = Client(server)
    for path in ("/", "/state", "/task", "/lead", "/lead/report", "/_crowd/crowd-elements.js", "/nope"):
        status, _, text = stranger.request("GET", path)
        assert status == 403 and "sign-in link" in text, path
    for path in ("/claim", "/submit?v=1", "/release?v=1", "/heartbeat?v=1", "/signout", "/lead/stop"):
        assert stranger.request("POST", path, {})[0] == 403, path
    assert stranger.request("GET", "/signin?t=forged.token")[0] == 403
    stranger.cookie = f"{server.cookie}=not-a-session"
    assert stranger.request("GET", "/")[0] == 403
    assert queue.claims() == [] and working.waiting


def test_signing_in_sets_a_strict_httponly_cookie_and_drops_the_token(server: TeamServer) -> None:
    browser = Client(server)
    resp = browser.sign_in("Ana")
    cookie = resp.getheader("Set-Cookie", "")
    assert cookie.startswith(f"gtaudit-team-{server.port}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert resp.getheader("Referrer-Policy") == "no-referrer"
    status, _, home = browser.request("GET", "/")
    assert status == 200 and "Hello, Ana" in home and ">2</b>" in home and ">2</span> left" in home
    token = server.roster.sign_in_token("Ana", 3600)
    assert token not in browser.request("GET", f"/signin?t={token}")[2]  # the page replaces its own URL


def test_a_labeler_cannot_open_the_leads_page(server: TeamServer) -> None:
    ana, dana = Client(server), Client(server)
    ana.sign_in("Ana")
    dana.sign_in("Dana")
    assert ana.request("GET", "/lead")[0] == 403
    assert ana.request("GET", "/lead/report")[0] == 403
    assert ana.request("POST", "/lead/stop", {})[0] == 403
    assert dana.request("GET", "/lead")[0] == 200


def test_a_person_cannot_submit_to_a_task_another_person_claimed(server: TeamServer, queue: TeamQueue) -> None:
    working = posted(queue)
    ana, ben = Client(server), Client(server)
    ana.sign_in("Ana")
    ben.sign_in("Ben")
    assert ana.request("POST", "/claim", {})[2] == '{"claimed": true}'
    assert ben.request("POST", "/claim", {})[2] == '{"claimed": false}'
    claim = json.loads(ana.request("GET", "/state")[2])["version"]
    assert json.loads(ben.request("GET", "/state")[2])["version"] == 0
    assert ben.request("POST", f"/submit?v={claim}", {"x": 1})[0] == 403
    assert ben.request("POST", f"/release?v={claim}")[0] == 403
    assert ben.request("POST", f"/heartbeat?v={claim}")[0] == 403
    assert ana.request("POST", f"/submit?v={claim}", {"x": 1}, csrf=False)[0] == 403  # the CSRF token, too
    assert ana.request("POST", f"/submit?v={claim}", [1])[0] == 400
    status, _, _ = ana.request("POST", f"/submit?v={claim}", {"x": 1}, headers={"X-Gtaudit-Active-Seconds": "4"})
    assert status == 200
    answer = working.answer()
    assert (answer.content, answer.worker_id) == ({"x": 1}, server.roster.person("Ana").worker_id)
    assert ana.request("POST", f"/submit?v={claim}", {"x": 2})[0] == 409


def test_the_task_page_names_the_image_and_serves_objects_through_its_own_links(
    server: TeamServer, queue: TeamQueue
) -> None:
    working = posted(queue)
    ana = Client(server)
    ana.sign_in("Ana")
    status, resp, _ = ana.request("GET", "/task")
    assert status == 303 and resp.getheader("Location") == "/"  # nothing claimed yet
    ana.request("POST", "/claim", {})
    status, _, page = ana.request("GET", "/task")
    assert status == 200 and '<span class="image" id="gtaudit-image">0.jpg</span>' in page
    assert "1 of 2 left" not in page and "2 of 2 left" in page
    assert "4321" not in page
    link = html.unescape(re.search(r'id="photo" src="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert ana.request("GET", link)[2] == "photo"
    assert ana.request("GET", "/s3/bkt/images/0.jpg")[0] == 403  # unsigned
    assert Client(server).request("GET", link)[0] == 403  # signed, but no session
    ana.request("POST", "/signout", {})
    assert ana.request("GET", "/")[0] == 403
    assert queue.claims() == [] and working.waiting  # the task went back to the queue


def test_the_stop_button_needs_the_csrf_token(server: TeamServer, stopped: threading.Event) -> None:
    dana = Client(server)
    dana.sign_in("Dana")
    assert dana.request("POST", "/lead/stop", {}, csrf=False)[0] == 403
    assert dana.request("POST", "/lead/stop", {}, headers={"X-Gtaudit-Csrf": "guess"})[0] == 403
    other = Client(server)
    other.sign_in("Dana")  # the same person's other session has a token of its own
    assert dana.request("POST", "/lead/stop", {}, headers={"X-Gtaudit-Csrf": other.csrf or ""})[0] == 403
    assert not stopped.is_set()
    status, _, text = dana.request("POST", "/lead/stop", {})
    assert (status, json.loads(text)) == (202, {"stopping": True, "started": True})
    assert stopped.wait(10)
    assert json.loads(dana.request("POST", "/lead/stop", {})[2])["started"] is False
    assert "The project is stopping" in dana.request("GET", "/lead")[2]


def test_the_leads_page_escapes_what_workers_and_labels_wrote(server: TeamServer, queue: TeamQueue) -> None:
    working = posted(queue)
    ana, dana = Client(server), Client(server)
    ana.sign_in("Ana")
    ana.request("POST", "/claim", {})
    dana.sign_in("Dana")
    status, _, page = dana.request("GET", "/lead")
    assert status == 200
    assert EVIL not in page and html.escape(EVIL) in page
    assert "Loose boundary" in page and "rejected in round 3" in page and "x.jpg" in page
    assert re.search(r"<td>Ana</td><td>labeler</td>.*?0\.jpg", page)
    thumb = html.unescape(re.search(r'<img alt="x.jpg" src="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert thumb.startswith("/s3/bkt/jobs/j/overlays/x.jpg?")  # the overlay named after the mask
    assert dana.request("GET", thumb)[2] == "overlay"
    status, resp, report = dana.request("GET", "/lead/report")
    assert status == 200 and "worker report" in report
    assert resp.getheader("Content-Security-Policy") == "sandbox"  # its scripts never run on this origin
    queue.close()
    assert working.answer().status == "abandoned"


def test_a_lan_bind_without_sign_in_is_refused(team: Roster, queue: TeamQueue) -> None:
    with pytest.raises(BindRefused, match="needs sign-in"):
        TeamServer(team, queue, read_object=OBJECTS.get, host="192.168.1.20", open_as="Ana")  # type: ignore[arg-type]
    with pytest.raises(BindRefused, match="host names"):
        check_bind("0.0.0.0", (), sign_in_required=True)
    check_bind("192.168.1.20", sign_in_required=True)
    check_bind("127.0.0.1", sign_in_required=False)
    with TeamServer(team, queue, read_object=OBJECTS.get, open_as="Ana") as solo:  # type: ignore[arg-type]
        assert Client(solo).request("GET", "/")[0] == 200  # one person on their own machine


def test_the_configured_host_name_is_accepted_and_no_other(team: Roster, queue: TeamQueue) -> None:
    with TeamServer(team, queue, read_object=OBJECTS.get, host="0.0.0.0", names=["team.lan"]) as srv:  # type: ignore[arg-type]
        assert srv.url == f"http://team.lan:{srv.port}/"
        lan = Client(srv)
        lan.origin = f"http://team.lan:{srv.port}"
        status, resp, _ = lan.request("GET", srv.sign_in_link("Ana", 60).split(str(srv.port), 1)[1],
                                      headers={"Host": f"team.lan:{srv.port}"})  # fmt: skip
        assert status == 200
        lan.cookie = resp.getheader("Set-Cookie", "").split(";")[0]
        assert lan.request("GET", "/", headers={"Host": f"team.lan:{srv.port}"})[0] == 200
        assert lan.request("GET", "/", headers={"Host": f"0.0.0.0:{srv.port}"})[0] == 403
        assert lan.request("GET", "/", headers={"Host": f"other.lan:{srv.port}"})[0] == 403


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.load_verify_locations(tmp / "cert.pem")
    return server, client


def test_over_https_the_cookie_is_secure_and_the_origin_https(team: Roster, queue: TeamQueue, tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)
    with TeamServer(team, queue, read_object=OBJECTS.get, tls=server_tls) as srv:  # type: ignore[arg-type]
        browser = Client(srv, tls=client_tls)
        cookie = browser.sign_in("Ana").getheader("Set-Cookie", "")
        assert cookie.startswith(f"__Host-gtaudit-team-{srv.port}=") and cookie.endswith("; Secure")
        assert browser.request("POST", "/claim", {})[0] == 200
        assert browser.request("POST", "/claim", {}, headers={"Origin": f"http://127.0.0.1:{srv.port}"})[0] == 403
