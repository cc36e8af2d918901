"""The team server: people sign in with their link, work the team's queue, and the lead watches.

=====================  ======  ===========================================================
``/signin?t=<token>``  GET     opens a session (cookie), then replaces itself with ``/``
``/``                  GET     the person's home: name, role, "n of m left", Start/Next
``/state``             GET     JSON ``{version, task, available, left, of}`` (pages poll it)
``/task``              GET     the claimed task's page (the GT template, the image's name on top)
``/claim``             POST    claim the next task the person may take
``/submit?v=<claim>``  POST    the crowd form's answer (JSON)
``/release?v=<claim>`` POST    give the task back unanswered
``/heartbeat?v=<c>``   POST    the task's tab is still open
``/signout``           POST    end the session; a held task goes back to the queue
``/lead``              GET     the lead's page (role lead)
``/lead/report``       GET     the worker report's HTML, sandboxed (role lead)
``/lead/stop``         POST    stop the project (role lead)
``/s3/...``            GET     an object, only through a link this server signed for a page
``/_crowd/...``        GET     the local crowd elements
=====================  ======  ===========================================================

What a request meets, in order: :class:`~gtaudit_local.loopback.LoopbackHandler`'s checks (this
server's own ``Host`` and ``Origin``, JSON-only ``POST`` bodies, an ``Origin`` on every ``POST``);
then a session, which every route but ``/signin`` needs (:mod:`~gtaudit_local.team.sessions`);
then, on ``POST``, the session's CSRF token; then the role the route needs; then, for a task, that
the claim is the person's own. Object links are signed by this server (:mod:`gtaudit_local.signing`),
and the emulator's links in a task page are signed again by it (``browser.same_origin_links``).

The server listens on ``127.0.0.1`` unless told otherwise. On any other address it serves only
behind sign-in (:func:`check_bind`): ``open_as``, which signs every request in as one person
without a link (one person on their own machine), is refused there, so no page is ever served to
the network without a session. On a LAN, cookies and tokens cross the wire in clear unless the
server speaks TLS (``tls``); the session cookie is then ``Secure``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import mimetypes
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from gtaudit.consolidation import MAX_ANSWER_BYTES
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.s3uri import parse_s3_uri

from gtaudit_local.browser import same_origin_links
from gtaudit_local.crowd import ASSETS, asset, localize_page
from gtaudit_local.loopback import LOOPBACK_NAMES, WILDCARD_ADDRESSES, LoopbackHandler
from gtaudit_local.preview import PAGE_LINK_TTL_SECONDS, ObjectReader, float_or_none
from gtaudit_local.signing import LinkRefused, LinkSigner, object_path
from gtaudit_local.team.lead import JobProgress, attention, lead_page
from gtaudit_local.team.pages import home_page, message_page, signed_in_page, task_bar
from gtaudit_local.team.people import DEFAULT_TOKEN_TTL, Person, Roster, SignInRefused, require_role
from gtaudit_local.team.seats import ClaimGone, NotYourClaim, TeamQueue
from gtaudit_local.team.sessions import (
    CSRF_HEADER,
    Session,
    Sessions,
    cookie_name,
    csrf_ok,
    read_cookie,
    set_cookie,
)

log = logging.getLogger(__name__)


class BindRefused(ValueError):
    """The server may not listen there that way (the message says why)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine's loopback interface."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, names: Iterable[str] = (), *, sign_in_required: bool) -> None:
    """Refuse to serve pages without sign-in anywhere but the loopback interface.

    Raises
    ------
    BindRefused
        ``host`` is not loopback and sign-in is not required; or ``host`` is a wildcard address and
        no ``names`` say what the team types to reach it (every ``Host`` would be refused).
    """
    if not is_loopback(host) and not sign_in_required:
        raise BindRefused(f"serving on {host!r} needs sign-in: without it every page would be open to the network")
    if host in WILDCARD_ADDRESSES and not tuple(names):
        raise BindRefused(f"listening on {host!r} needs the host names people use to reach this machine")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A dropped connection or a failed TLS handshake is the client's business; anything else is a bug."""
        error = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(error, OSError) else logging.WARNING  # ssl.SSLError is an OSError
        log.log(level, "team server: a request from %s failed", client_address, exc_info=True)


class TeamServer:
    """The team's pages on one port.

    Parameters
    ----------
    roster
        The team (:class:`~gtaudit_local.team.people.Roster`).
    queue
        The seats' shared queue (:class:`~gtaudit_local.team.seats.TeamQueue`).
    read_object
        Reads the objects behind the links this server signed (``preview.s3_reader(s3)`` in the runtime).
    progress
        The project's jobs, for the lead (``lead.job_progress`` of the emulator's records).
    needs_attention
        The lines of the run's ``needs-attention.manifest``.
    report
        The worker report's HTML (``gtaudit.trace.write_report``'s ``report.html``), ``None`` while there is none.
    stop
        Stops the project cleanly; called once, in a thread of its own, when the lead presses Stop.
    host, port
        Where to listen (``port`` 0: a free port).
    names
        More host names the team reaches this server by (checked against ``Host`` and ``Origin``).
    tls
        Serve HTTPS with this context (the session cookie is then ``Secure``).
    open_as
        Sign every request without a session in as this person: for one person on their own
        machine; refused on any address but loopback.
    link_ttl
        Seconds the object links of a page work.
    """

    def __init__(
        self,
        roster: Roster,
        queue: TeamQueue,
        *,
        read_object: ObjectReader,
        progress: Callable[[], Sequence[JobProgress]] = list,
        needs_attention: Callable[[], Iterable[Mapping[str, Any]]] = list,
        report: Callable[[], str | None] = lambda: None,
        stop: Callable[[], None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        names: Sequence[str] = (),
        tls: ssl.SSLContext | None = None,
        open_as: str | None = None,
        link_ttl: float = PAGE_LINK_TTL_SECONDS,
    ) -> None:
        check_bind(host, names, sign_in_required=open_as is None)
        self.roster = roster
        self.queue = queue
        self.read_object = read_object
        self.progress = progress
        self.needs_attention = needs_attention
        self.report = report
        self.stop = stop
        self.link_ttl = link_ttl
        self.links = LinkSigner()
        self.sessions = Sessions()
        self.scheme = "https" if tls is not None else "http"
        self.stopping = False
        self._stop_lock = threading.Lock()
        self._httpd = _Server((host, port), _handler_for(self, frozenset(n.lower() for n in names)))
        if tls is not None:  # the handshake happens in the request's thread, not in the accepting one
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = int(self._httpd.server_address[1])
        self.cookie = cookie_name(self.port, secure=tls is not None)
        self._host = names[0] if names else ("127.0.0.1" if host in WILDCARD_ADDRESSES else host)
        self.open_session = self.sessions.open(roster.person(open_as), float("inf")) if open_as is not None else None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL (ends with ``/``)."""
        return f"{self.scheme}://{self._host}:{self.port}/"

    def sign_in_link(self, name: str, ttl: float = DEFAULT_TOKEN_TTL) -> str:
        """The link that signs ``name`` in (valid ``ttl`` seconds): hand it to that person only."""
        return f"{self.url}signin?t={quote(self.roster.sign_in_token(name, ttl))}"

    def sign(self, path: str, *, amp: str = "&") -> str:
        """``path`` (``/s3/<bucket>/<key>``) as a link this server streams for ``link_ttl`` seconds."""
        return self.links.sign(path, self.link_ttl, amp=amp)

    def link_for(self, uri: str) -> str | None:
        """The signed link to ``s3://bucket/key``, or ``None`` for a value that is no S3 URI."""
        try:
            loc = parse_s3_uri(uri)
        except InvalidS3UriError:
            return None
        return self.sign(object_path(loc.bucket, loc.key))

    def request_stop(self) -> bool:
        """Call ``stop`` once, in a thread of its own; return whether this call started it."""
        with self._stop_lock:
            if self.stopping or self.stop is None:
                return False
            self.stopping = True
        threading.Thread(target=self.stop, name="gtaudit-team-stop", daemon=True).start()
        return True

    def start(self) -> TeamServer:
        """Serve in a background thread (once, however often called); return self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="gtaudit-team", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> TeamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _claim_id(query: str) -> int | None:
    try:
        return int(parse_qs(query)["v"][0])
    except (KeyError, IndexError, ValueError):
        return None


def _handler_for(server: TeamServer, names: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        host_names = names
        scheme = server.scheme

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("team server: " + format, *args)

        def add_header(self, name: str, value: str) -> None:
            self.__dict__.setdefault("_extra_headers", []).append((name, value))

        def end_headers(self) -> None:
            for name, value in self.__dict__.pop("_extra_headers", []):
                self.send_header(name, value)
            self.send_header("Referrer-Policy", "no-referrer")  # a sign-in link must not leak onwards
            self.send_header("X-Frame-Options", "SAMEORIGIN")  # no other site frames a Stop button
            super().end_headers()

        def _html(self, status: int, page: str) -> None:
            self.send_body(status, page.encode("utf-8"), "text/html; charset=utf-8")

        def _json(self, status: int, data: Any) -> None:
            self.send_body(status, json.dumps(data).encode(), "application/json")

        def _refuse(self, status: int, title: str, text: str) -> None:
            if self.command == "POST":
                self._json(status, {"error": text})
            else:
                self._html(status, message_page(title, text))

        def _redirect(self, location: str) -> None:
            self.add_header("Location", location)
            self.send_body(HTTPStatus.SEE_OTHER, b"", "text/plain; charset=utf-8")

        def _who(self) -> tuple[Session, Person] | None:
            """The session the request carries and its person (still on the roster, in the same role)."""
            session = server.sessions.get(read_cookie(self.headers.get("Cookie"), server.cookie))
            session = session or server.open_session
            if session is None:
                return None
            try:
                person = server.roster.person(session.person)
            except SignInRefused:
                return None
            return (session, person) if person.role == session.role else None

        def _lead(self, person: Person) -> bool:
            try:
                require_role(person, ("lead",))
            except SignInRefused as exc:
                self._refuse(HTTPStatus.FORBIDDEN, "Not for your role", str(exc))
                return False
            return True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/signin":
                self._sign_in(parse_qs(parts.query).get("t", [""])[0])
                return
            who = self._who()
            if who is None:
                text = "You are not signed in. Open the sign-in link your lead gave you."
                self._refuse(HTTPStatus.FORBIDDEN, "Sign in", text)
                return
            session, person = who
            if parts.path == "/":
                count, claim = server.queue.counts(person), server.queue.current(person)
                page = home_page(person.name, person.role, count, claim, session.csrf, lead=person.role == "lead")
                self._html(HTTPStatus.OK, page)
            elif parts.path == "/state":
                claim = server.queue.current(person)
                count = server.queue.counts(person)
                state = {"version": claim.id if claim else 0, "task": claim is not None, "left": count.left}
                self._json(HTTPStatus.OK, {**state, "of": count.of, "available": server.queue.available(person)})
            elif parts.path == "/task":
                self._task(session, person)
            elif parts.path == "/lead":
                if self._lead(person):
                    self._lead_page(session, person)
            elif parts.path == "/lead/report":
                if self._lead(person):
                    self._report()
            elif parts.path.startswith("/_crowd/") and parts.path[len("/_crowd/") :] in ASSETS:
                name = parts.path[len("/_crowd/") :]
                ctype = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
                self.send_body(HTTPStatus.OK, asset(name), ctype)
            elif parts.path.startswith("/s3/"):
                self._object()
            else:
                self._refuse(HTTPStatus.NOT_FOUND, "Not found", "There is no such page.")

        def _sign_in(self, token: str) -> None:
            try:
                person, expires = server.roster.verify(token)
            except SignInRefused as exc:
                self._refuse(HTTPStatus.FORBIDDEN, "Cannot sign in", str(exc))
                return
            session = server.sessions.open(person, expires)
            max_age = int(expires - time.time())
            secure = server.scheme == "https"
            self.add_header("Set-Cookie", set_cookie(server.cookie, session.id, secure=secure, max_age=max_age))
            self._html(HTTPStatus.OK, signed_in_page())

        def _task(self, session: Session, person: Person) -> None:
            claim = server.queue.current(person)
            try:
                if claim is None:
                    raise ClaimGone("nothing claimed")
                server.queue.heartbeat(person, claim.id)  # opening the page is a sign of life too
            except ClaimGone:
                self._redirect("/")
                return
            task = claim.offer.task
            bar = task_bar(claim, server.queue.counts(person), session.csrf, server.queue.heartbeat_timeout / 6)
            page = localize_page(
                bar + same_origin_links(task.html, server.sign, task.grants),
                submit_url=f"/submit?v={claim.id}",
                mode="runtime",
                title=f"{claim.offer.image} · {task.kind}",
                extra={"version": claim.id},
            )
            self._html(HTTPStatus.OK, page)

        def _lead_page(self, session: Session, person: Person) -> None:
            queue = server.queue
            page = lead_page(
                person,
                session.csrf,
                jobs=server.progress(),
                people=[(p, queue.counts(p)) for p in server.roster.people],
                claims=queue.claims(),
                waiting=queue.waiting(),
                attention_items=[attention(line) for line in server.needs_attention()],
                link=server.link_for,
                has_report=server.report() is not None,
                stopping=server.stopping,
            )
            self._html(HTTPStatus.OK, page)

        def _report(self) -> None:
            report = server.report()
            if report is None:
                self._html(HTTPStatus.NOT_FOUND, message_page("No report yet", "The worker report comes later."))
            else:  # data about workers, never active content on this origin
                self.send_body(HTTPStatus.OK, report.encode("utf-8"), "text/html; charset=utf-8", sandbox=True)

        def _object(self) -> None:
            try:
                bucket, key = server.links.verify(self.path)
            except LinkRefused as exc:
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden", str(exc))
                return
            data = server.read_object(bucket, key)
            if data is None:
                self._refuse(HTTPStatus.NOT_FOUND, "Not found", "no such object")
            else:
                ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
                self.send_body(HTTPStatus.OK, data, ctype, sandbox=True)

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            who = self._who()
            if who is None:
                self._refuse(HTTPStatus.FORBIDDEN, "Sign in", "not signed in")
                return
            session, person = who
            if not csrf_ok(session, self.headers.get(CSRF_HEADER)):
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden", "missing or wrong CSRF token")
                return
            queue = server.queue
            claim_id = _claim_id(parts.query)
            try:
                if parts.path == "/claim":
                    self._json(HTTPStatus.OK, {"claimed": queue.claim_next(person) is not None})
                elif parts.path in {"/submit", "/release", "/heartbeat"} and claim_id is None:
                    self._refuse(HTTPStatus.BAD_REQUEST, "Bad request", "missing ?v=<claim>")
                elif parts.path == "/submit" and claim_id is not None:
                    self._submit(person, claim_id)
                elif parts.path == "/release" and claim_id is not None:
                    queue.give_back(person, claim_id, float_or_none(self.headers.get("X-Gtaudit-Active-Seconds")))
                    self._json(HTTPStatus.OK, {"ok": True})
                elif parts.path == "/heartbeat" and claim_id is not None:
                    queue.heartbeat(person, claim_id)
                    self._json(HTTPStatus.OK, {"ok": True})
                elif parts.path == "/signout":
                    self._sign_out(session, person)
                elif parts.path == "/lead/stop":
                    if self._lead(person):
                        self._json(HTTPStatus.ACCEPTED, {"stopping": True, "started": server.request_stop()})
                else:
                    self._refuse(HTTPStatus.NOT_FOUND, "Not found", "no such action")
            except NotYourClaim as exc:
                self._refuse(HTTPStatus.FORBIDDEN, "Forbidden", str(exc))
            except ClaimGone as exc:
                self._refuse(HTTPStatus.CONFLICT, "Gone", str(exc))

        def _submit(self, person: Person, claim_id: int) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length <= 0 or length > MAX_ANSWER_BYTES:
                self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Bad length", "bad length")
                return
            try:
                answer = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError):
                answer = None
            if not isinstance(answer, dict):
                self._refuse(HTTPStatus.BAD_REQUEST, "Bad request", "the answer must be a JSON object")
                return
            server.queue.submit(person, claim_id, answer, float_or_none(self.headers.get("X-Gtaudit-Active-Seconds")))
            self._json(HTTPStatus.OK, {"ok": True})

        def _sign_out(self, session: Session, person: Person) -> None:
            server.sessions.close(session.id)
            server.queue.leave(person)
            secure = server.scheme == "https"
            self.add_header("Set-Cookie", set_cookie(server.cookie, "", secure=secure, max_age=0))
            self._json(HTTPStatus.OK, {"ok": True})

    return Handler
