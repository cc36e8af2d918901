"""What every HTTP server of the local wing checks before it answers: who is asking, and from where.

The local servers (``gtaudit preview``, a browser worker's task pages, the Ground Truth
emulator's API and object links) listen on ``127.0.0.1`` only, but a port on the loopback
interface is not private: any web page the user opens can make the browser send requests to it,
and any other user of the machine can connect. Binding to loopback is therefore not enough, and
:class:`LoopbackHandler` refuses (403, before any handler runs):

- a ``Host`` that is not this server's own ``127.0.0.1:<port>`` or ``localhost:<port>``: a DNS
  rebinding page reaches the port under its own host name, and is refused here;
- an ``Origin``, when present, that is not this server's own origin: a browser names the page
  that sent a request, so a cross-site page is refused even for requests it need not read;
- a ``POST`` whose body is not JSON (``post_types``): a cross-site form or ``no-cors`` fetch can
  only send ``text/plain``, form or multipart bodies without a CORS preflight, which these servers
  never grant; and, where a browser is the only client (``post_needs_origin``), a ``POST``
  without an ``Origin``, which every browser sends on a ``POST``.

The emulator's JSON API keeps ``post_needs_origin`` off: its client is botocore, which sends
``Host`` and ``Content-Type: application/x-amz-json-1.1`` but no ``Origin``.

The team server (:mod:`gtaudit_local.team.server`) may also listen on a LAN address for a team,
and only behind sign-in. Its ``Host`` names are then the address it is bound to and the names the
team uses to reach it (``host_names``), its origin's scheme ``https`` when it speaks TLS
(``scheme``); the checks above are otherwise the same.

What these checks do not stop: another user of the same machine who connects directly (no browser,
any headers) can read a task page and post an answer. Objects are still served only through the
signed links a page carries. On a machine shared with people you do not trust, run the local
servers in your own network namespace or container.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

LOOPBACK_NAMES = ("127.0.0.1", "localhost")


WILDCARD_ADDRESSES = ("0.0.0.0", "")


def own_hosts(bound: str, port: int, names: Iterable[str] = (), *, default_port: int = 80) -> set[str]:
    """The ``Host`` values that name a server bound to ``bound:port`` (lower case).

    Parameters
    ----------
    bound, port
        The server's address (a wildcard address names nothing by itself).
    names
        More names the server answers to (the host name a team uses to reach it).
    default_port
        The port browsers leave out of ``Host`` (443 for HTTPS).
    """
    hosts = {*LOOPBACK_NAMES, *(n.lower() for n in names)}
    if bound not in WILDCARD_ADDRESSES:
        hosts.add(bound.lower())
    with_port = {f"{name}:{port}" for name in hosts}
    return with_port | hosts if port == default_port else with_port


def refusal(
    method: str,
    headers: Iterable[tuple[str, str]],
    hosts: set[str],
    *,
    post_types: frozenset[str],
    post_needs_origin: bool,
    scheme: str = "http",
) -> str | None:
    """Why a request must be refused, or ``None`` when it may be answered.

    Parameters
    ----------
    method
        The request method.
    headers
        The request headers (``(name, value)`` pairs, names in any case).
    hosts
        The server's own host names (:func:`own_hosts`).
    post_types
        Media types a ``POST`` body may have (lower case, without parameters).
    post_needs_origin
        Refuse a ``POST`` that carries no ``Origin``.
    scheme
        The scheme of the server's own origin (``https`` when it speaks TLS).
    """
    seen: dict[str, list[str]] = {}
    for name, value in headers:
        seen.setdefault(name.lower(), []).append(value.strip())
    host = seen.get("host", [])
    if len(host) != 1 or host[0].lower() not in hosts:
        return "unknown Host"
    origins = seen.get("origin", [])
    if len(origins) > 1 or (origins and origins[0].lower() not in {f"{scheme}://{h}" for h in hosts}):
        return "cross-origin request"
    if method != "POST":
        return None
    if post_needs_origin and not origins:
        return "a POST must come from this server's own page"
    declared = [value.split(";", 1)[0].strip().lower() for value in seen.get("content-type", [])]
    has_body = any(v not in {"", "0"} for v in seen.get("content-length", [])) or "transfer-encoding" in seen
    if (has_body or declared) and (len(declared) != 1 or declared[0] not in post_types):
        return "a POST body must be JSON"
    return None


class LoopbackHandler(BaseHTTPRequestHandler):
    """A request handler that applies :func:`refusal` to every request, whatever its method.

    Subclasses set ``post_types`` and ``post_needs_origin`` (and, for a server a team reaches by
    name or over TLS, ``host_names`` and ``scheme``) and answer with :meth:`send_body`.
    """

    post_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    post_needs_origin: ClassVar[bool] = True
    host_names: ClassVar[frozenset[str]] = frozenset()
    scheme: ClassVar[str] = "http"

    def parse_request(self) -> bool:
        """Parse as usual, then refuse a request :func:`refusal` names (the ``do_*`` method never runs)."""
        if not super().parse_request():
            return False
        address = self.server.server_address
        assert isinstance(address, tuple)  # an AF_INET server: (host, port)
        reason = refusal(
            self.command,
            self.headers.items(),
            own_hosts(
                str(address[0]), int(address[1]), self.host_names, default_port=443 if self.scheme == "https" else 80
            ),
            post_types=self.post_types,
            post_needs_origin=self.post_needs_origin,
            scheme=self.scheme,
        )
        if reason is None:
            return True
        self.close_connection = True  # the body, if any, is left unread
        self.send_body(HTTPStatus.FORBIDDEN, f"forbidden: {reason}".encode(), "text/plain; charset=utf-8")
        return False

    def send_body(self, status: int, body: bytes, content_type: str, *, sandbox: bool = False) -> None:
        """Answer with ``body``; never cached, never sniffed into another type.

        ``sandbox``: the body is data (an S3 object someone uploaded), never active content on this
        origin, even when its key says ``.html`` or ``.svg``: ``Content-Security-Policy: sandbox``.
        """
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if sandbox:
            self.send_header("Content-Security-Policy", "sandbox")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
