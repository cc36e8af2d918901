"""Who has already answered or returned which object: the team queue's memory across restarts.

A restarted project asks again for the answers an object still lacks (a second labeler, an audit
that was open). Without a memory, the person who gave the first answer could be offered the same
object again. ``<project>/state/team.sqlite`` keeps one row per person, object and outcome::

    answers(job TEXT, object TEXT, worker_id TEXT, outcome TEXT, at REAL,
            PRIMARY KEY (job, object, worker_id, outcome))

``outcome`` is ``submitted`` or ``returned``. A row is committed before the answer goes back to
the emulator, so a ``kill -9`` right after a submit never forgets who gave it (the answer itself
is the emulator's to keep). SQLite, in the standard library, is the whole of it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

LEDGER_FILE = Path("state") / "team.sqlite"


class Ledger:
    """The ``answers`` table of ``state/team.sqlite`` (thread-safe; one connection, one lock).

    Parameters
    ----------
    path
        The SQLite file (created with its folder if absent).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (job TEXT NOT NULL, object TEXT NOT NULL, worker_id TEXT NOT NULL,"
            " outcome TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (job, object, worker_id, outcome))"
        )

    def add(self, job: str, object_id: str, worker_id: str, outcome: str) -> None:
        """Record that ``worker_id`` gave ``outcome`` on the object (once; a repeat is ignored)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?)",
                (job, object_id, worker_id, outcome, time.time()),
            )

    def rows(self) -> Iterator[tuple[str, str, str, str]]:
        """Every ``(job, object, worker_id, outcome)`` recorded, oldest first."""
        with self._lock:
            found = self._db.execute("SELECT job, object, worker_id, outcome FROM answers ORDER BY at").fetchall()
        yield from found

    def close(self) -> None:
        """Close the database (safe twice)."""
        with self._lock:
            self._db.close()
