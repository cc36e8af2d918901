"""The embedded AWS's data in the project folder, and its restore on the next start.

```
<project>/bucket/<bucket>/<key>   the object's bytes, a plain file (key -> path: persist.keys)
<project>/state/aws.sqlite        objects   (bucket, key) -> ETag, version, last-modified, metadata,
                                                             tags, ..., and the file's size and mtime
                                  items     (table, key)  -> the DynamoDB item, DynamoDB JSON
```

A file is written under a temporary name in its own folder (``%tmp-...``, never an object's
name) and renamed over the old one, then its row is written: a reader sees the old or the new
bytes, never half. A crash between the two leaves a file whose size or mtime differ from its row;
the restore reads such a file again (ETag recomputed, Content-Type guessed) and says so. A
deletion removes the file, then the row, then the folders it emptied.

Durability: what a client was told succeeded survives the process being killed (``kill -9``):
the file is renamed and the row committed (SQLite WAL, ``synchronous=NORMAL``) before moto's
answer leaves (:mod:`~gtaudit_local.persist.journal`). A power loss may forget the last writes
unless ``fsync=True`` (files, their folder and SQLite synced; ``benchmarks/bench_project_store.py``
measures its cost).

``AwsStore(project, readonly=True)`` reads a project that is not running (or one that is: WAL
readers do not block its writer), for tools: :meth:`AwsStore.objects`, :meth:`AwsStore.items`,
:meth:`AwsStore.object_file`, or a whole :meth:`AwsStore.restore` into a fresh moto.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from gtaudit_local.persist import keys, moto_state
from gtaudit_local.persist.records import ObjectRecord, RestoreReport

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 60.0  # how long a write waits for the other process's to commit
_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,                 -- without quotes
    version_id TEXT,
    last_modified TEXT NOT NULL,        -- ISO 8601, naive UTC (moto's)
    content_type TEXT NOT NULL,         -- also in metadata; here for tools that list objects
    metadata TEXT NOT NULL,             -- JSON: content-type, cache-control, x-amz-meta-*, ...
    extra TEXT NOT NULL,                -- JSON: storage class, checksum, encryption, lock, tags
    size INTEGER NOT NULL,              -- the file's, when written
    mtime_ns INTEGER NOT NULL,          -- the file's, when written
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL,                  -- table name
    key TEXT NOT NULL,                  -- the item's key attributes, canonical JSON (persist.moto_state)
    item TEXT NOT NULL,                 -- DynamoDB JSON
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
"""
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rule; other folders are not buckets
_COLUMNS = "bucket, key, etag, version_id, last_modified, content_type, metadata, extra, size, mtime_ns"


class StoreError(RuntimeError):
    """The project folder cannot be used: a newer schema, or a write to a read-only store."""


class Server(Protocol):
    """What a restore needs to know of the moto server it fills (``gtaudit_local.aws.MotoServer``)."""

    account_id: str
    region: str


class AwsStore:
    """S3 objects and DynamoDB items of one project folder. Thread-safe.

    Parameters
    ----------
    project_dir
        The project folder; ``bucket/`` and ``state/`` are made in it unless ``readonly``.
    readonly
        Read what is there (tools on a stopped project); every write raises :class:`StoreError`.
    fsync
        Also survive a power loss: sync each file, its folder and SQLite before answering.
    """

    def __init__(self, project_dir: Path, *, readonly: bool = False, fsync: bool = False) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.bucket_root = self.project_dir / "bucket"
        self.db_path = self.project_dir / "state" / "aws.sqlite"
        self.readonly = readonly
        self.fsync = fsync
        self._db_lock = threading.Lock()
        self._tree_lock = threading.Lock()  # folders made or removed, and temp files opened in them
        if readonly:
            if not self.db_path.is_file():
                raise FileNotFoundError(f"no {self.db_path}: not a project folder, or nothing was kept yet")
            self._db = sqlite3.connect(f"{self.db_path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self.bucket_root.mkdir(exist_ok=True)
            # Two moto processes write here side by side (gtaudit_local.moto_process): a write waits
            # for the other's to commit rather than failing. Opening is not covered by that wait
            # (SQLite refuses a switch to WAL at once while another connection opens), so the
            # processes open one after the other, under a lock on the state folder.
            with folder_lock(self.db_path.parent):
                self._db = sqlite3.connect(self.db_path, check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
                try:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
                    version = self._db.execute("PRAGMA user_version").fetchone()[0]
                    if version > SCHEMA_VERSION:
                        raise StoreError(
                            f"{self.db_path} has schema {version}; this gtaudit reads up to {SCHEMA_VERSION}"
                        )
                    with self._db:
                        self._db.executescript(_SCHEMA)
                        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                except BaseException:
                    self._db.close()
                    raise

    def close(self) -> None:
        """Close the database (safe to call twice)."""
        with self._db_lock:
            self._db.close()

    def __enter__(self) -> AwsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The journal's side: called after moto applied a change, with the state read back from moto.
    def check_storable(self, bucket: str, key: str) -> None:
        """Raise :class:`~gtaudit_local.persist.keys.UnstorableKey` if ``key`` cannot be a file."""
        keys.check_no_clash(self._bucket_dir(bucket), bucket, key)

    def write_object(self, record: ObjectRecord, fill: Callable[[BinaryIO], None]) -> ObjectRecord:
        """Write the object's file (``fill`` writes the bytes), then its row; the row as stored."""
        self._check_writable()
        bucket_dir = self._bucket_dir(record.bucket)
        path = keys.object_path(bucket_dir, record.bucket, record.key)
        with self._tree_lock:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise keys.UnstorableKey(record.bucket, record.key, "a folder on its path is an object") from exc
            tmp = path.parent / f"{keys.TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            tmp.replace(path)
        except IsADirectoryError as exc:
            tmp.unlink(missing_ok=True)
            raise keys.UnstorableKey(record.bucket, record.key, "other keys use it as a folder") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(path.parent)
        st = path.stat()
        stored = replace(record, size=st.st_size, mtime_ns=st.st_mtime_ns)
        self.write_row(stored)
        return stored

    def write_row(self, record: ObjectRecord) -> None:
        """Write an object's row alone (its file is unchanged: tags, ACL, ...)."""
        self._check_writable()
        with self._db_lock, self._db:
            self._db.execute(f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             _row(record))  # fmt: skip

    def remove_object(self, bucket: str, key: str) -> None:
        """Remove the object's file, its row, then the folders it leaves empty."""
        self._check_writable()
        bucket_dir = self._bucket_dir(bucket)
        try:
            path: Path | None = keys.object_path(bucket_dir, bucket, key)
        except keys.UnstorableKey:
            path = None  # never written, so nothing on disk
        if path is not None:
            with self._tree_lock:
                if path.is_file():
                    path.unlink()
                _remove_empty_parents(path.parent, bucket_dir)
        with self._db_lock, self._db:
            self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))

    def add_bucket(self, bucket: str) -> None:
        """Make the bucket's folder (a bucket made at run time is made again on restore)."""
        self._check_writable()
        self._bucket_dir(bucket).mkdir(exist_ok=True)

    def remove_bucket(self, bucket: str) -> None:
        """Forget an (empty) bucket: its folder and any row left."""
        self._check_writable()
        with self._tree_lock:
            bucket_dir = self._bucket_dir(bucket)
            for folder, _dirs, _files in sorted(os.walk(bucket_dir), reverse=True):
                try:
                    Path(folder).rmdir()  # moto deletes empty buckets only: no object files here
                except OSError:
                    log.warning("bucket %s deleted, but %s holds files that are not objects", bucket, folder)
        with self._db_lock, self._db:
            self._db.execute("DELETE FROM objects WHERE bucket = ?", (bucket,))

    def write_items(self, changes: Iterable[tuple[str, str, str | None]]) -> None:
        """Apply ``(table, key JSON, item JSON or None to delete)`` in one transaction."""
        self._check_writable()
        puts: list[tuple[str, str, str]] = []
        deletes: list[tuple[str, str]] = []
        for table, key, item in changes:
            if item is None:
                deletes.append((table, key))
            else:
                puts.append((table, key, item))
        with self._db_lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO items (tbl, key, item) VALUES (?,?,?)", puts)
            self._db.executemany("DELETE FROM items WHERE tbl = ? AND key = ?", deletes)

    def replace_table(self, table: str, items: Iterable[tuple[str, str]]) -> None:
        """Replace every item of ``table`` by ``(key JSON, item JSON)`` (none: the table was deleted)."""
        self._check_writable()
        with self._db_lock, self._db:
            self._db.execute("DELETE FROM items WHERE tbl = ?", (table,))
            self._db.executemany("INSERT INTO items (tbl, key, item) VALUES (?,?,?)",
                                 ((table, k, i) for k, i in items))  # fmt: skip

    # Readers, for the journal and for tools.
    def object_row(self, bucket: str, key: str) -> ObjectRecord | None:
        """The object's row, or ``None``."""
        with self._db_lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? AND key = ?",
                                   (bucket, key)).fetchone()  # fmt: skip
        return None if row is None else _record(row)

    def file_matches(self, record: ObjectRecord) -> bool:
        """Whether the object's file is still the one its row was written with."""
        try:
            st = self.object_file(record.bucket, record.key).stat()
        except (FileNotFoundError, keys.UnstorableKey):
            return False
        return (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns)

    def objects(self, bucket: str | None = None, prefix: str = "") -> Iterator[ObjectRecord]:
        """The rows of the objects kept, by bucket and key (the bytes: :meth:`object_file`)."""
        where, args = "WHERE key >= ? AND substr(key, 1, ?) = ?", [prefix, len(prefix), prefix]
        if bucket is not None:
            where, args = f"{where} AND bucket = ?", [*args, bucket]
        with self._db_lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM objects {where} ORDER BY bucket, key", args).fetchall()
        return map(_record, rows)

    def object_file(self, bucket: str, key: str) -> Path:
        """The file that holds (or would hold) the object's bytes."""
        return keys.object_path(self._bucket_dir(bucket), bucket, key)

    def tables(self) -> list[str]:
        """The tables that have items kept."""
        with self._db_lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT tbl FROM items ORDER BY tbl")]

    def items(self, table: str) -> Iterator[dict[str, Any]]:
        """The items of ``table``, in DynamoDB JSON, by key."""
        with self._db_lock:
            rows = self._db.execute("SELECT item FROM items WHERE tbl = ? ORDER BY key", (table,)).fetchall()
        return (json.loads(r[0]) for r in rows)

    # Restore.
    def restore(self, server: Server, *, objects: bool = True, items: bool = True) -> RestoreReport:
        """Put every kept object and item back into the moto of this process, serving ``server``.

        Call it after the template's buckets and tables were created, before anyone uses them.
        Objects go straight into moto's backend (no S3 event is sent: the pipeline already saw
        them); a bucket on disk that is not deployed is created with default settings, the items
        of a table that is not deployed stay on disk (both reported). ``objects=False`` leaves
        buckets and objects out, ``items=False`` the tables' items (a moto serving one of them).
        """
        t0 = time.perf_counter()
        report = RestoreReport()
        buckets, found = self._reconcile(report) if objects else ([], [])
        tables = {t: self.items(t) for t in self.tables()} if items else {}
        moto_state.load(found, buckets, tables, server.account_id, server.region, report)
        report.seconds = time.perf_counter() - t0
        return report

    def _reconcile(self, report: RestoreReport) -> tuple[list[str], list[tuple[ObjectRecord, Path]]]:
        """Buckets, and files with their rows; a file without a matching row gets one (reported)."""
        rows = {(r.bucket, r.key): r for r in self.objects()}
        found: list[tuple[ObjectRecord, Path]] = []
        folders = sorted(p.name for p in self.bucket_root.iterdir() if p.is_dir()) if self.bucket_root.is_dir() else []
        buckets = [name for name in folders if _BUCKET_NAME.fullmatch(name)]
        report.unreadable.extend(f"{name}/" for name in folders if name not in buckets)
        for bucket in buckets:
            bucket_dir = self.bucket_root / bucket
            for path, st in _walk_files(bucket_dir):
                if path.name.startswith(keys.TEMP_PREFIX):
                    if not self.readonly:
                        path.unlink(missing_ok=True)  # a write that never finished
                    continue
                try:
                    key = keys.key_of(path.relative_to(bucket_dir).as_posix())
                except ValueError:
                    report.unreadable.append(f"{bucket}/{path.relative_to(bucket_dir)}")
                    continue
                record = rows.pop((bucket, key), None)
                if record is None or (record.size, record.mtime_ns) != (st.st_size, st.st_mtime_ns):
                    record = _adopted_record(bucket, key, path, st, record)
                    report.adopted.append(f"{bucket}/{key}")
                    if not self.readonly:
                        self.write_row(record)
                found.append((record, path))
        report.dropped.extend(f"{bucket}/{key}" for bucket, key in rows)
        if rows and not self.readonly:
            with self._db_lock, self._db:
                self._db.executemany("DELETE FROM objects WHERE bucket = ? AND key = ?", list(rows))
        if report.adopted or report.dropped or report.unreadable:
            log.warning("project store: %d files adopted, %d rows without a file dropped, %d names skipped",
                        len(report.adopted), len(report.dropped), len(report.unreadable))  # fmt: skip
        return buckets, found

    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket or "/" in bucket or bucket in {".", ".."}:
            raise keys.UnstorableKey(bucket, "", "not a bucket name")
        return self.bucket_root / bucket

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"{self.project_dir} is open read-only")


@contextlib.contextmanager
def folder_lock(folder: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself, for as long as the block runs.

    The system releases it when the process ends, however it ends. ``wait=False`` raises
    ``BlockingIOError`` at once if another process holds it.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)  # releases the lock


def _row(r: ObjectRecord) -> tuple[Any, ...]:
    return (r.bucket, r.key, r.etag, r.version_id, r.last_modified, r.content_type,
            json.dumps(r.metadata), json.dumps(r.extra), r.size, r.mtime_ns)  # fmt: skip


def _record(row: tuple[Any, ...]) -> ObjectRecord:
    bucket, key, etag, version_id, last_modified, _content_type, metadata, extra, size, mtime_ns = row
    return ObjectRecord(bucket, key, etag, version_id, last_modified, json.loads(metadata), json.loads(extra),
                        size, mtime_ns)  # fmt: skip


def _adopted_record(bucket: str, key: str, path: Path, st: os.stat_result, old: ObjectRecord | None) -> ObjectRecord:
    """A row for a file the store did not write last: ETag from its bytes, Content-Type guessed."""
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(moto_state.CHUNK):
            md5.update(block)
    content_type = mimetypes.guess_type(key)[0] or "binary/octet-stream"
    modified = datetime.fromtimestamp(st.st_mtime, UTC).replace(tzinfo=None)
    return ObjectRecord(bucket, key, md5.hexdigest(), old.version_id if old else None, modified.isoformat(),
                        {"content-type": content_type}, {}, st.st_size, st.st_mtime_ns)  # fmt: skip


def _walk_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk_files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path), entry.stat(follow_symlinks=False)


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): the folders above are not empty either
            return
        folder = folder.parent


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
