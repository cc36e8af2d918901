"""S3 object bodies on disk, not in memory, while moto serves them.

moto keeps each object version's bytes in a ``tempfile.SpooledTemporaryFile`` of 5 MB: every mask,
overlay and worker answer of a project stays in the process's memory (about 0.2 MB per sample-size
object, 6 MB per 12 MP object), and a body that does roll over to disk holds a file descriptor for
as long as the version exists (the machine allows 20,000; a 10,000-object project has about
60,000 versions).

``install(folder)`` gives moto :class:`DiskBuffer` instead: a body up to ``small`` bytes (a name
claim, an empty marker) stays in memory, a larger one is written to its own file under ``folder``
and read back on demand, with no descriptor held between calls. The files are moto's working
copies, removed as moto drops the version and with the folder when the server stops; what a
project keeps is in its store (``gtaudit_local.persist``), not here.

It also makes every key share one canned ``private`` ACL: moto built a fresh one (an ACL, a grant
and a grantee, 1.7 KB) for each of the project's 7 keys per object. What is left per key is
moto's own record of it, about 1.5 KB.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from moto.s3.models import get_canned_acl as _moto_canned_acl

SMALL = 256  # bodies up to this size stay in memory: name claims, markers (a worker's answer is 1-3 KB)


class DiskBuffer:
    """The part of ``SpooledTemporaryFile``'s interface moto's ``FakeKey`` uses, backed by one file.

    moto writes a body whole (``seek(0); truncate(); write(value)``) and reads it from the start
    (``seek(0); read()`` or ``read(n)`` in a loop); each call opens the file for just that call.
    """

    folder: Path | None = None
    small = SMALL

    def __init__(self, max_size: int = 0, *args: Any, **kwargs: Any) -> None:
        self._memory = b""
        self._path: Path | None = None
        self._size = 0
        self._pos = 0
        self._lock = threading.Lock()
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if size != 0:
            raise OSError("DiskBuffer only truncates to empty (moto rewrites bodies whole)")
        with self._lock:
            self._drop_file()
            self._memory, self._size = b"", 0
        return 0

    def write(self, data: bytes) -> int:
        with self._lock:
            if self._pos != self._size:
                raise OSError("DiskBuffer only appends (moto writes bodies whole)")
            if self._path is None and self._size + len(data) <= self.small:
                self._memory += data
            else:
                if self._path is None:
                    folder = self.folder
                    if folder is None:
                        raise OSError("DiskBuffer: no folder installed")
                    self._path = folder / uuid.uuid4().hex
                    with self._path.open("wb") as f:
                        f.write(self._memory)
                    self._memory = b""
                with self._path.open("ab") as f:
                    f.write(data)
            self._size += len(data)
            self._pos = self._size
        return len(data)

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if self._pos >= end:
                return b""
            if self._path is None:
                data = self._memory[self._pos : end]
            else:
                with self._path.open("rb") as f:
                    f.seek(self._pos)
                    data = f.read(end - self._pos)
            self._pos += len(data)
            return data

    def flush(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._drop_file()
            self._memory, self._size, self.closed = b"", 0, True

    def _drop_file(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the folder goes with the server anyway
            self._drop_file()


def install(folder: Path, *, small: int = SMALL) -> None:
    """Make moto's S3 keep bodies larger than ``small`` bytes as files in ``folder`` (this process)."""
    import moto.s3.models as s3_models

    folder.mkdir(parents=True, exist_ok=True)
    DiskBuffer.folder = folder
    DiskBuffer.small = small
    s3_models.tempfile = SimpleNamespace(SpooledTemporaryFile=DiskBuffer)  # type: ignore[assignment]
    s3_models.get_canned_acl = _shared_canned_acl


def uninstall() -> None:
    """Give moto its own buffers and ACLs back (bodies written meanwhile keep their files)."""
    import moto.s3.models as s3_models

    s3_models.tempfile = tempfile
    s3_models.get_canned_acl = _moto_canned_acl


@functools.cache
def _shared_canned_acl(acl: str) -> Any:
    """moto's canned ACL ``acl``, built once: moto replaces a key's ACL, never changes it in place."""
    return _moto_canned_acl(acl)
