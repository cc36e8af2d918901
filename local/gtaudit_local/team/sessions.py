"""Who is signed in to the team server: sessions, their cookie, and the CSRF token of each.

A sign-in link opens a session (``/signin?t=<token>``); from then on the browser proves who it is
with a session cookie, never with the token, so the token leaves the URL bar and the history at once.

- The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (a request another site
  starts carries no cookie, so no other site acts as the person), ``Path=/``, and ``Secure`` when the
  server speaks HTTPS. Its name carries the port: cookies are shared by every port of one host, and
  two projects served side by side must not sign each other out.
- Each session has a CSRF token of its own, which every ``POST`` must echo in ``X-Gtaudit-Csrf``
  (compared in constant time). With the Origin check and ``SameSite=Strict`` this is a third lock on
  the same door; it is the one that does not depend on the browser.
- A session lasts until the person signs out or the token it was opened with expires, and lives
  in memory: after a restart each person opens their link again (links outlive restarts).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gtaudit_local.team.people import Person

CSRF_HEADER = "X-Gtaudit-Csrf"


@dataclass(frozen=True)
class Session:
    """One signed-in browser: the person (by name and role at sign-in) and the session's CSRF token."""

    id: str
    person: str
    role: str
    csrf: str
    expires: float


class Sessions:
    """The open sessions of one server (thread-safe).

    Parameters
    ----------
    clock
        Unix time (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}

    def open(self, person: Person, expires: float) -> Session:
        """A new session for ``person`` that ends at ``expires`` (the sign-in token's expiry)."""
        session = Session(secrets.token_urlsafe(32), person.name, person.role, secrets.token_urlsafe(32), expires)
        with self._lock:
            self._open[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, or ``None`` (unknown, signed out, or expired)."""
        if not session_id:
            return None
        with self._lock:
            session = self._open.get(session_id)
            if session is not None and session.expires <= self.clock():
                del self._open[session_id]
                return None
            return session

    def close(self, session_id: str) -> Session | None:
        """End a session (sign-out); return it, or ``None`` if it was not open."""
        with self._lock:
            return self._open.pop(session_id, None)


def cookie_name(port: int, *, secure: bool) -> str:
    """The session cookie's name on this port (``__Host-`` when secure: the browser then pins it to this host)."""
    return f"__Host-gtaudit-team-{port}" if secure else f"gtaudit-team-{port}"


def set_cookie(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value for the session cookie (``max_age`` 0 deletes it)."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max(0, max_age)}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def read_cookie(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or ``None`` (absent, or there twice)."""
    found = [
        value.strip()
        for name_part, sep, value in (pair.strip().partition("=") for pair in (header or "").split(";"))
        if sep and name_part == name
    ]
    return found[0] if len(found) == 1 else None


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether ``sent`` (the ``X-Gtaudit-Csrf`` header) is this session's CSRF token."""
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "replace"))
