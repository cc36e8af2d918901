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

import base64
import contextlib
import functools
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import ARCHIVE_STORAGE_CLASSES, FakeMultipart, MultipartChecksumBuilder
from moto.s3.models import get_canned_acl as _moto_canned_acl
from moto.settings import S3_UPLOAD_PART_MIN_SIZE
from moto.utilities.utils import md5_hash

from gtaudit_local.persist import moto_state
from gtaudit_local.persist.journal import bucket_and_key, no_write

_moto_complete = FakeMultipart.complete

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
        self._path: str | None = None  # kept as a str, not a Path: 90 bytes rather than 360 per key
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

    def write(self, data: bytes | Assembled) -> int:
        if isinstance(data, Assembled):
            return self._take(data.buffer)
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
                    self._path = str(folder / uuid.uuid4().hex)
                    with Path(self._path).open("wb") as f:
                        f.write(self._memory)
                    self._memory = b""
                with Path(self._path).open("ab") as f:
                    f.write(data)
            self._size += len(data)
            self._pos = self._size
        return len(data)

    def _take(self, other: DiskBuffer) -> int:
        """Become ``other`` (an assembled body), which is left empty: its file changes hands."""
        with self._lock, other._lock:
            if self._size:
                raise OSError("DiskBuffer only takes a body over when empty")
            self._path, self._memory, self._size = other._path, other._memory, other._size
            other._path, other._memory, other._size = None, b"", 0
            self._pos = self._size
            return self._size

    def path(self) -> Path | None:
        """The body's file, if it is on disk (valid until the key is dropped or rewritten)."""
        return None if self._path is None else Path(self._path)

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
            if self._pos >= end:
                return b""
            if self._path is None:
                data = self._memory[self._pos : end]
            else:
                with Path(self._path).open("rb") as f:
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
            Path(self._path).unlink(missing_ok=True)
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
    s3_models.FakeMultipart.complete = _complete_on_disk  # type: ignore[assignment]
    if not getattr(s3_models.FakeKey.__init__, "_compacts", False):
        for name in _USUALLY_NONE:
            setattr(s3_models.FakeKey, name, None)
        s3_models.FakeKey.__init__ = _compacting(s3_models.FakeKey.__init__)  # type: ignore[method-assign]


# FakeKey attributes that are None on most keys: read from the class instead (see _compacting).
_USUALLY_NONE = (
    "website_redirect_location", "checksum_algorithm", "_expiry", "multipart", "encryption", "kms_key_id",
    "bucket_key_enabled", "lock_mode", "lock_legal_status", "lock_until", "checksum_value", "checksum_type",
    "checksum_parts",
)  # fmt: skip


def _compacting(init: Callable[..., None]) -> Callable[..., None]:
    """``FakeKey.__init__`` leaving the key's usually-None attributes to the class, in a dict of its size.

    moto sets 38 attributes on each key: its ``__dict__`` took 1.6 KB, the largest part of what
    moto keeps per key (about 3.8 KB; a project has 7 keys per object). The attributes that are
    None are dropped (the class answers None for them, and a later assignment sets them again)
    and the rest copied into a dict sized for them.
    """

    @functools.wraps(init)
    def compacting_init(key: Any, *args: Any, **kwargs: Any) -> None:
        init(key, *args, **kwargs)
        kept = {k: v for k, v in key.__dict__.items() if not (v is None and k in _USUALLY_NONE)}
        key.__dict__ = kept

    compacting_init._compacts = True  # type: ignore[attr-defined]
    return compacting_init


def uninstall() -> None:
    """Give moto its own buffers and ACLs back (bodies written meanwhile keep their files)."""
    import moto.s3.models as s3_models

    s3_models.tempfile = tempfile
    s3_models.get_canned_acl = _moto_canned_acl
    s3_models.FakeMultipart.complete = _moto_complete  # type: ignore[method-assign]


@functools.cache
def _shared_canned_acl(acl: str) -> Any:
    """moto's canned ACL ``acl``, built once: moto replaces a key's ACL, never changes it in place."""
    return _moto_canned_acl(acl)


# Large bodies. moto reads a request body whole and answers a GET with the whole body in memory
# (a copy or two on the way: a 200 MB PUT raised its process by 347 MB, a GET by 400 MB). A
# 1,000-object consolidation request of 12 MP masks is about 0.8 GB: moto held 2 GB for a moment.
# So a large body never passes through moto whole: the emulator uploads it in parts, which moto
# assembles here on disk (:func:`_complete_on_disk`), and a GET of it is answered from its file
# (:class:`StreamedGets`).
STREAM_MIN = 8 << 20  # bodies from this size on are streamed to GETs (below it, moto's answer is cheap)
_CHUNK = 1 << 20


class Assembled:
    """A completed multipart upload's body, already in a :class:`DiskBuffer` of its own.

    Handed to moto as the new key's value: ``len()`` is its size and the key's buffer takes its
    file over (:meth:`DiskBuffer.write`) instead of copying bytes.
    """

    def __init__(self, buffer: DiskBuffer) -> None:
        self.buffer = buffer
        self.size = buffer._size  # the buffer is emptied when a key takes it over; moto asks the size after

    def __len__(self) -> int:
        return self.size


def _complete_on_disk(self: Any, body: Iterator[tuple[int, str]]) -> tuple[Assembled, str, tuple[str, str, int] | None]:
    """moto's ``FakeMultipart.complete``, assembling the parts in a file rather than in memory.

    The same checks (each part named with its ETag, all but the last at least the minimum size,
    at least one part), ETag and checksums as moto's (a full-object checksum is computed as the
    parts stream by, with moto's algorithm choices: :class:`_Checksum`); each part is read once.
    """
    checksums = MultipartChecksumBuilder(
        self.metadata.get("x-amz-checksum-algorithm"), self.metadata.get("x-amz-checksum-type")
    )
    composite = checksums.checksum_type == "COMPOSITE"
    full = None if composite else _Checksum(checksums.checksum_algorithm)
    out = DiskBuffer()
    md5s = bytearray()
    last = None
    try:
        for number, etag in body:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(bytes.fromhex(part.etag.replace('"', "")))
            running = full if full is not None else _Checksum(checksums.checksum_algorithm)  # the part's own
            copied = 0
            with part.lock:
                part._value_buffer.seek(0)
                while chunk := part._value_buffer.read(_CHUNK):
                    out.write(chunk)
                    running.update(chunk)
                    copied += len(chunk)
            if copied != part.contentsize:  # the part was replaced or the upload aborted meanwhile
                raise InvalidPart()
            if composite:
                checksums.checksum.extend(running.digest())  # what moto's addPart keeps of a part
            checksums.part_count += 1
            last = part
        if checksums.part_count == 0:
            raise MalformedXML
    except BaseException:
        out.close()
        raise
    etag = md5_hash(bytes(md5s)).hexdigest()
    whole = (checksums.checksum_type, base64.b64encode(full.digest()).decode(), 1) if full is not None else None
    return Assembled(out), f"{etag}-{checksums.part_count}", whole or checksums.build()


class _Checksum:
    """moto's ``compute_checksum`` of a body (a part, or the whole), fed a chunk at a time (same fallbacks)."""

    def __init__(self, algorithm: str) -> None:
        import binascii
        import hashlib

        from moto.s3.utils import HAS_CRT

        self._crc: Callable[[bytes, int], int] | None = None
        self._digest: Any = None
        self._width = 4
        if algorithm == "SHA1":
            self._digest = hashlib.sha1(usedforsecurity=False)
        elif algorithm == "CRC32C" and _crc32c() is not None:
            self._crc = _crc32c()
        elif algorithm == "CRC64NVME" and HAS_CRT:
            from awscrt import checksums

            self._crc, self._width = checksums.crc64nvme, 8
        elif algorithm in ("CRC32", "CRC32C", "CRC64NVME"):  # moto falls back to CRC32 without the library
            self._crc = binascii.crc32
        else:
            self._digest = hashlib.sha256(usedforsecurity=False)
        self._value = 0

    def update(self, chunk: bytes) -> None:
        if self._crc is not None:
            self._value = self._crc(chunk, self._value)
        else:
            self._digest.update(chunk)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big") if self._crc is not None else bytes(self._digest.digest())


def _crc32c() -> Callable[[bytes, int], int] | None:
    try:
        import crc32c
    except ImportError:
        return None
    return lambda data, value: crc32c.crc32c(data, value)


class StreamedGets:
    """WSGI middleware in front of moto: a GET of a large object is answered from its file.

    moto decides the answer as for a HEAD of the same request (authorization, conditions,
    headers), then the body streams from the key's :class:`DiskBuffer` file a chunk at a time.
    Anything else (small objects, ranges, versions, any query, bodies in memory, a key replaced
    meanwhile) is moto's own GET.
    """

    def __init__(self, app: Callable[..., Any], dispatcher: Any, account_id: str) -> None:
        self.app = app
        self.dispatcher = dispatcher
        self.account_id = account_id

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        found = self._large_object(environ)
        if found is None:
            return self.app(environ, start_response)
        fake, path = found
        answer: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, headers]
            return no_write

        head = self.app({**environ, "REQUEST_METHOD": "HEAD"}, hold)
        if hasattr(head, "close"):
            head.close()
        if not answer or not answer[0].startswith("200"):
            return self.app(environ, start_response)  # 304, 412, 403...: moto says it, with its body
        try:
            f = path.open("rb")
        except OSError:
            return self.app(environ, start_response)
        if self._large_object(environ) != (fake, path):  # replaced between the HEAD and the open
            f.close()
            return self.app(environ, start_response)
        start_response(answer[0], _get_headers(answer[1], fake, environ))
        return _FileChunks(f)

    def _large_object(self, environ: dict[str, Any]) -> tuple[Any, Path] | None:
        """The key and its file, if this request is a plain GET of a large object on disk."""
        if environ["REQUEST_METHOD"] != "GET" or environ.get("QUERY_STRING") or _GET_ONLY & environ.keys():
            return None
        if getattr(self.dispatcher.get_application(environ), "service", None) != "s3":
            return None
        bucket, key = bucket_and_key(environ)
        if not bucket or not key:
            return None
        backend = moto_state.s3_backend(self.account_id)
        fake = moto_state.current_key(backend, bucket, key)
        buffer = getattr(fake, "_value_buffer", None)
        if fake is None or fake.size < STREAM_MIN or not isinstance(buffer, DiskBuffer):
            return None
        if fake.storage_class in ARCHIVE_STORAGE_CLASSES or getattr(backend.buckets.get(bucket), "policy", None):
            return None  # a GET that moto may refuse where a HEAD passes
        path = buffer.path()
        return None if path is None else (fake, path)


# Headers that make moto's GET answer otherwise than its HEAD: conditions (a GET also takes an
# unquoted ETag), ranges, CORS (a GET adds the bucket's rules), customer-provided keys.
_GET_ONLY = {
    "HTTP_RANGE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_ORIGIN", "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM",
}  # fmt: skip
_HEAD_ONLY = {"content-length", "x-amz-checksum-type"} | {
    f"x-amz-checksum-{a}" for a in ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
}


def _get_headers(head: list[tuple[str, str]], fake: Any, environ: dict[str, Any]) -> list[tuple[str, str]]:
    """moto's headers of a HEAD made those of its GET: the length, and the checksum as a GET gives it.

    A GET with checksums enabled names a composite (multipart) checksum with its part count and
    its type; a HEAD gives the bare value (moto's ``get_object`` and ``head_object``).
    """
    kept = {k.lower() for k in fake.metadata}  # the key's own metadata: a GET sends it too
    headers = [(k, v) for k, v in head if k.lower() not in _HEAD_ONLY or k.lower() in kept]
    headers.append(("Content-Length", str(fake.size)))
    if environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED" and fake.checksum_algorithm:
        value = fake.checksum_value
        if fake.checksum_type == "COMPOSITE":
            value = f"{value}-{fake.checksum_parts}"
        headers.append((f"x-amz-checksum-{fake.checksum_algorithm.lower()}", value))
        if fake.checksum_type and "x-amz-checksum-type" not in kept:
            headers.append(("x-amz-checksum-type", fake.checksum_type))
    return headers


class _FileChunks:
    """A WSGI body: an open file, a chunk at a time, closed when the server is done with it."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._f.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        self._f.close()
