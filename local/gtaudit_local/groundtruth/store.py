"""The emulator's own records in SQLite (``state/groundtruth.sqlite``), so that jobs outlive the process.

What is kept where:

===========================  ==============================================================
``jobs`` (one row per job)   the ``CreateLabelingJob`` request, ARN, creation and last
                             modification times, status, failure reason, counters, phase,
                             the stop flag (``StopLabelingJob``), the output manifest's URI
                             and the consolidation request's stamp
``objects`` (one row per     the outcome of a data object whose work ended: why it failed
finished data object)        (``NULL``: it has its answers) and how often it was re-offered
the bucket                   each object's answers, in its worker-response file, rewritten
                             after every answer (:mod:`~gtaudit_local.groundtruth.runner`)
===========================  ==============================================================

A row is written when what it holds changes, in one transaction; answers are never kept here, so
a submitted answer has one home (the bucket, where Ground Truth puts it) and cannot disagree with
a copy. The emulator is multi-threaded (API threads, a runner per job, a pool per job): one
connection serves them all under a lock. WAL with ``synchronous=NORMAL`` survives the process
being killed (``kill -9``) at any point; only a power loss may forget the last transactions, and
then the job runs again from an earlier phase (every phase may run twice: docs/local-runtime.md).

``JobStore(None)`` keeps the same tables in memory: the emulator without a project folder.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

from gtaudit_local.groundtruth.record import LabelingJobRun, ObjectRun, kind_and_round

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,              -- lower-case: job names are unique case-insensitively
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the CreateLabelingJob request, JSON
    created REAL NOT NULL,
    modified REAL NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    total INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    labeled INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    phase TEXT NOT NULL,
    stop_requested INTEGER NOT NULL,
    output_manifest TEXT,
    consolidation_stamp TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    job TEXT NOT NULL,                  -- jobs.name
    idx INTEGER NOT NULL,               -- the datasetObjectId (line number in the input manifest)
    failure TEXT,
    retries INTEGER NOT NULL,
    PRIMARY KEY (job, idx)
);
"""
_JOB_COLUMNS = (
    "name, arn, request, created, modified, status, failure_reason, total, finished, labeled, failed, phase, "
    "stop_requested, output_manifest, consolidation_stamp"
)
_SAVE_JOB = f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * 15)})"


class StateVersionError(RuntimeError):
    """The records were written by a newer emulator, whose schema this one does not know."""


class JobStore:
    """The job records, in a SQLite file (or in memory).

    Parameters
    ----------
    path
        The database file (its folder is created), or ``None`` to keep the records in memory.
    """

    def __init__(self, path: Path | str | None) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if path is None else str(path)
        # Autocommit mode: every write below is one explicit transaction.
        self._conn: sqlite3.Connection | None = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 5000")
        if path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            conn.close()
            raise StateVersionError(
                f"{path}: Ground Truth emulator records of schema {version}; this version reads {SCHEMA_VERSION}"
            )
        conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def save(self, job: LabelingJobRun) -> None:
        """Write the job's row as it is now."""
        self._write([(_SAVE_JOB, _row(job))])

    def object_done(self, job: LabelingJobRun, obj: ObjectRun) -> None:
        """Record a data object whose work ended, with its job's counters, in one transaction."""
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO objects (job, idx, failure, retries) VALUES (?, ?, ?, ?)",
                    (job.name.lower(), obj.index, obj.failure, obj.retries),
                ),
                (_SAVE_JOB, _row(job)),
            ]
        )

    def jobs(self) -> list[LabelingJobRun]:
        """Every job on record, oldest first."""
        with self._lock:
            if self._conn is None:
                return []
            rows = self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created").fetchall()
        out = []
        for row in rows:
            (_, arn, request, created, modified, status, reason, total, finished, labeled, failed, phase, stop,
             output, stamp) = row  # fmt: skip
            job = LabelingJobRun(
                request=json.loads(request),
                arn=arn,
                created=created,
                status=status,
                modified=modified,
                failure_reason=reason,
                total=total,
                finished=finished,
                labeled=labeled,
                failed=failed,
                phase=phase,
                stop_requested=bool(stop),
                output_manifest=output,
                consolidation_stamp=stamp,
            )
            job.kind, job.round = kind_and_round(job.request)
            out.append(job)
        return out

    def done_objects(self, job: LabelingJobRun) -> dict[int, tuple[str | None, int]]:
        """``{index: (failure, retries)}`` of the job's objects whose work ended."""
        with self._lock:
            if self._conn is None:
                return {}
            rows = self._conn.execute(
                "SELECT idx, failure, retries FROM objects WHERE job = ?", (job.name.lower(),)
            ).fetchall()
        return {int(idx): (failure, int(retries)) for idx, failure, retries in rows}

    def close(self) -> None:
        """Close the database; a later write is dropped with a warning (a thread outliving shutdown)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        with self._lock:
            conn = self._conn
            if conn is None:
                log.warning("gt-emulator: records closed; not written: %s", statements[0][0].split("(")[0])
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    conn.execute(sql, args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _row(job: LabelingJobRun) -> tuple[object, ...]:
    return (
        job.name.lower(),
        job.arn,
        json.dumps(job.request),
        job.created,
        job.modified,
        job.status,
        job.failure_reason,
        job.total,
        job.finished,
        job.labeled,
        job.failed,
        job.phase,
        int(job.stop_requested),
        job.output_manifest,
        job.consolidation_stamp,
    )
