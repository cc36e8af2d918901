"""The people of one project: who is on the team, in which role, and how each of them signs in.

Two files of the project folder hold it::

    <project>/team.json       the roster: no secrets, safe to read, back up and edit by hand
    <project>/state/secret    32 random bytes, mode 0600, drawn once when the first person is added

``team.json``::

    {"version": 1, "leads_work": false,
     "people": [{"name": "Ana", "role": "labeler",
                 "worker_id": "private.us-east-1.3f9c0a1b2c3d4e5f",
                 "sub": "0c5e...-4...-...."}]}

Each person's Ground Truth identity (the ``workerId`` of the worker-response files and the Cognito
``sub`` of ``workerMetadata``, reference section 6) is derived from the secret and the name
(HMAC-SHA256, one purpose label per value), so a restart, or a roster rebuilt by hand, gives a
person the identity their earlier answers carry, and two projects never share one. ``team.json``
repeats them for people to read; a roster whose identities do not derive from the secret next to
it (a ``team.json`` copied from another project) is refused rather than silently renaming everyone.

A sign-in token is a link's credential: ``<payload>.<mac>``, both base64url, the payload the JSON
``{"p": name, "r": role, "e": expiry}`` and the mac its HMAC-SHA256 under a key derived from the
secret. :meth:`Roster.verify` checks, in this order, so that a forger learns nothing of the roster:
the shape and the mac (constant time), the expiry, that the person is still on the roster, and
that the token's role is still theirs. Each failure is its own :class:`SignInRefused` subclass.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from gtaudit_local.aws import REGION

Role = Literal["labeler", "auditor", "lead"]
ROLES: tuple[Role, ...] = get_args(Role)
SECRET_BYTES = 32
DEFAULT_TOKEN_TTL = 7 * 24 * 3600  # a sign-in link works for a week; hand out a new one after that
MAX_NAME_LENGTH = 64
ROSTER_FILE = "team.json"
SECRET_FILE = Path("state") / "secret"


class SignInRefused(Exception):
    """A sign-in token, or a session made from one, does not admit its bearer."""


class TokenInvalid(SignInRefused):
    """Not a token of this project: malformed, tampered with, or signed under another project's secret."""


class TokenExpired(SignInRefused):
    """A genuine token past its expiry: the person needs a new link."""


class UnknownPerson(SignInRefused):
    """A genuine token for a person no longer on the roster."""


class RoleNotAllowed(SignInRefused):
    """The role does not admit to this: the token's role is no longer the person's, or a page needs another."""


class RosterError(Exception):
    """``team.json`` or the project secret cannot be used as they are (the message says why)."""


@dataclass(frozen=True)
class Person:
    """One member of the team, with the Ground Truth identity their answers carry."""

    name: str
    role: Role
    worker_id: str  # private.us-east-1.<16 hex>
    sub: str  # Cognito-style sub (a UUID)


def project_secret(project_dir: Path) -> bytes:
    """The project's secret (``state/secret``), drawn and written once with mode 0600.

    The file appears whole or not at all: it is written under a temporary name and linked into
    place, so two processes starting at once agree on one secret and neither reads a half-written one.

    Raises
    ------
    RosterError
        The file exists but does not hold exactly ``SECRET_BYTES`` bytes.
    """
    path = project_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret-{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SECRET_BYTES))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its secret
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise RosterError(f"{path} holds {len(data)} bytes, not {SECRET_BYTES}: restore it from a backup")
    return data


def _key(name: str) -> str:
    """The form of a name that identities and uniqueness go by (NFC, case-folded)."""
    return unicodedata.normalize("NFC", name).casefold()


def _derive(secret: bytes, purpose: str, text: str = "") -> bytes:
    return hmac.new(secret, f"gtaudit-team/{purpose}\n{text}".encode(), hashlib.sha256).digest()


def identity(secret: bytes, name: str) -> tuple[str, str]:
    """``(worker_id, sub)`` of the person called ``name`` in the project whose secret is ``secret``."""
    worker = _derive(secret, "worker-id", _key(name)).hex()[:16]
    sub = uuid.UUID(bytes=_derive(secret, "sub", _key(name))[:16], version=4)
    return f"private.{REGION}.{worker}", str(sub)


def check_name(name: object) -> str:
    """``name`` stripped, if it can name a person: 1 to 64 characters, no control characters.

    Raises
    ------
    ValueError
        Naming the bad value.
    """
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ValueError(f"name must not hold control characters, got {name!r}")
    return name.strip()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: each save is a new file (a new inode), and mtime and size besides."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Roster:
    """The team of one project folder (``team.json`` plus the secret), safe to use from any thread.

    A change another process makes to ``team.json`` (the lead adding a person from the command
    line while the server runs) is read again at the next look-up.

    Parameters
    ----------
    project_dir
        The project folder.
    """

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.path = self.project_dir / ROSTER_FILE
        self._secret = project_secret(self.project_dir)
        self._token_key = _derive(self._secret, "sign-in-token")
        self._lock = threading.RLock()
        self._people: dict[str, Person] = {}
        self.leads_work = False
        self._stamp: tuple[int, int, int] | None = None
        self._reload()

    def _reload(self) -> None:
        """Read ``team.json`` again if it changed since it was read (or never was)."""
        with self._lock:
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return
            people: dict[str, Person] = {}
            leads_work = False
            if stamp is not None:
                people, leads_work = self._parse(self.path.read_text(encoding="utf-8"))
            self._people, self.leads_work, self._stamp = people, leads_work, stamp

    def _parse(self, text: str) -> tuple[dict[str, Person], bool]:
        try:
            data = json.loads(text)
            entries = data["people"]
            leads_work = data.get("leads_work", False)
            if not isinstance(entries, list) or not isinstance(leads_work, bool):
                raise TypeError("people must be a list and leads_work true or false")
            people: dict[str, Person] = {}
            for entry in entries:
                person = self._person(check_name(entry["name"]), entry["role"])
                if (entry.get("worker_id"), entry.get("sub")) != (person.worker_id, person.sub):
                    raise RosterError(
                        f"{self.path}: {person.name}'s identity does not derive from this project's secret"
                        " (a team.json from another project?)"
                    )
                if _key(person.name) in people:
                    raise ValueError(f"{person.name!r} is on the roster twice")
                people[_key(person.name)] = person
        except RosterError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RosterError(f"{self.path} is not a roster: {exc}") from exc
        return people, leads_work

    def _person(self, name: str, role: object) -> Person:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        worker_id, sub = identity(self._secret, name)
        return Person(name, cast(Role, role), worker_id, sub)

    def _save(self) -> None:
        data = {
            "version": 1,
            "leads_work": self.leads_work,
            "people": [asdict(p) for p in self._people.values()],
        }
        tmp = self.path.with_name(f".{ROSTER_FILE}-{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self.path)
        self._stamp = _stamp(self.path)

    @property
    def people(self) -> list[Person]:
        """Everyone on the roster, in the order they were added."""
        with self._lock:
            self._reload()
            return list(self._people.values())

    def add(self, name: str, role: str) -> Person:
        """Put a person on the roster (and write ``team.json``); return them.

        Raises
        ------
        ValueError
            A bad name or role, or a name already taken (names are unique ignoring case).
        """
        with self._lock:
            self._reload()
            person = self._person(check_name(name), role)
            if _key(person.name) in self._people:
                raise ValueError(f"{person.name!r} is already on the roster")
            self._people[_key(person.name)] = person
            self._save()
            return person

    def remove(self, name: str) -> None:
        """Take a person off the roster: their links and sessions stop working. Unknown names pass."""
        with self._lock:
            self._reload()
            if self._people.pop(_key(name), None) is not None:
                self._save()

    def set_leads_work(self, value: bool) -> None:
        """Whether leads may also take labeling and audit tasks (written to ``team.json``)."""
        with self._lock:
            self._reload()
            self.leads_work = bool(value)
            self._save()

    def person(self, name: str) -> Person:
        """The person called ``name``.

        Raises
        ------
        UnknownPerson
            Nobody of that name is on the roster.
        """
        with self._lock:
            self._reload()
            found = self._people.get(_key(name))
        if found is None:
            raise UnknownPerson(f"{name!r} is not on this project's team")
        return found

    def sign_in_token(self, name: str, ttl: float = DEFAULT_TOKEN_TTL, *, now: float | None = None) -> str:
        """A sign-in token for ``name`` in their current role, valid for ``ttl`` seconds from ``now``."""
        person = self.person(name)
        expires = int((time.time() if now is None else now) + ttl)
        payload = _b64(json.dumps({"p": person.name, "r": person.role, "e": expires}).encode())
        return f"{payload}.{self._mac(payload)}"

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._token_key, payload.encode("ascii"), hashlib.sha256).digest())

    def verify(self, token: str, *, roles: Iterable[str] = ROLES, now: float | None = None) -> tuple[Person, float]:
        """The person a token signs in, and when the token expires (Unix time).

        Parameters
        ----------
        token
            What :meth:`sign_in_token` gave.
        roles
            The roles admitted (all, by default).
        now
            The time to check the expiry against (default: now).

        Raises
        ------
        TokenInvalid, TokenExpired, UnknownPerson, RoleNotAllowed
            In the order checked (see the module docstring).
        """
        payload, dot, mac = token.partition(".") if isinstance(token, str) else ("", "", "")
        sent = mac.encode("utf-8", "replace")
        if not dot or not payload.isascii() or not hmac.compare_digest(self._mac(payload).encode(), sent):
            raise TokenInvalid("this sign-in link is not valid for this project")
        try:
            claims = json.loads(_unb64(payload))
            name, role, expires = str(claims["p"]), str(claims["r"]), float(claims["e"])
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TokenInvalid("this sign-in link is not valid for this project") from exc
        if expires <= (time.time() if now is None else now):
            raise TokenExpired("this sign-in link has expired: ask your lead for a new one")
        person = self.person(name)
        if person.role != role:
            raise RoleNotAllowed(f"this link was made for a {role}; {person.name} is now a {person.role}")
        require_role(person, roles)
        return person, expires


def require_role(person: Person, roles: Iterable[str]) -> None:
    """Raise :class:`RoleNotAllowed` unless ``person``'s role is one of ``roles``."""
    allowed = tuple(roles)
    if person.role not in allowed:
        raise RoleNotAllowed(f"this needs the role {' or '.join(allowed)}; {person.name} is a {person.role}")
