"""Where an export reads from: an accepted manifest, and the objects it names by ``s3://`` URI.

A manifest names every image and mask by ``s3://`` URI, wherever the copy being read is. A
:class:`Source` streams the manifest's lines and reads one object's bytes by its URI, so the
dataset loader has a single code path for both kinds of SOURCE:

=================================== ===================================================================
SOURCE                              read from
=================================== ===================================================================
a folder ``gtaudit demo`` wrote     :class:`MirrorSource`: its newest ``[bucket/<bucket>/]runs/<run>/accepted.manifest``
``<folder>/runs/<run>``             :class:`MirrorSource`: that run's ``accepted.manifest``
a manifest file                     :class:`MirrorSource`: that file
``s3://<bucket>/runs/<run>/``       :class:`S3Source`: ``s3://<bucket>/runs/<run>/accepted.manifest``
``s3://<bucket>/<key>``             :class:`S3Source`: that manifest object (or, when there is none,
                                    ``<key>/accepted.manifest``)
=================================== ===================================================================

The mirror
    A folder mirroring a bucket holds ``s3://<bucket>/<key>`` as ``<root>/<key>``. The root is the
    nearest folder above the manifest that holds the first object found (the first line's image,
    normally); every later object is looked up under that root.
S3
    A boto3 client with the default credential chain and endpoint settings, so
    ``AWS_ENDPOINT_URL`` points the export at the local runtime as it does every other client.

Keys
    A manifest may hold a URL-quoted key (``%20``): the decoded key is read first, then the key as
    written, as the overlay stage reads ``source-ref``.

Memory
    The manifest is streamed line by line. An object is read whole (the image decoders need all of
    it) and dropped by the caller before the next is read, so memory is bounded by the largest
    object, not by the run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.s3io import error_code, exists, get_bytes, is_not_found, iter_lines
from gtaudit.s3uri import S3Uri, parse_s3_uri

ACCEPTED_MANIFEST = "accepted.manifest"


class ExportError(ValueError):
    """The source cannot be exported: no manifest, a malformed line, an unreadable or mismatched file."""


class ObjectMissing(ExportError):
    """An object the manifest names is not there: the export skips that image and says which."""


def key_candidates(uri: str) -> tuple[S3Uri, ...]:
    """The objects a manifest URI may mean: its key URL-decoded first, then as written.

    Raises
    ------
    InvalidS3UriError
        ``uri`` is not an ``s3://`` URI with a bucket and a key.
    """
    parsed = parse_s3_uri(uri)
    plain = S3Uri(parsed.bucket, unquote(parsed.key))
    return (plain,) if plain == parsed else (plain, parsed)


class Source(ABC):
    """An accepted manifest and the objects it names: lines streamed, objects read one at a time."""

    name: str  # the manifest, as messages show it

    @abstractmethod
    def lines(self) -> Iterator[bytes]:
        """The manifest's raw lines, streamed.

        Raises
        ------
        ExportError
            The manifest cannot be read.
        """

    @abstractmethod
    def _read(self, obj: S3Uri) -> bytes | None:
        """The bytes of ``obj``, or ``None`` if it is not there; raise :class:`ExportError` if unreadable."""

    @abstractmethod
    def _where(self, uri: str) -> str:
        """Where ``uri`` was looked for, for the message that says it is missing."""

    def read(self, uri: str) -> bytes:
        """The bytes of the object that ``uri`` names.

        Raises
        ------
        ObjectMissing
            No copy of the object is there.
        ExportError
            ``uri`` is not an S3 URI, or the object exists but cannot be read.
        """
        try:
            candidates = key_candidates(uri)
        except InvalidS3UriError as exc:
            raise ExportError(f"{uri}: {exc}") from exc
        for obj in candidates:
            data = self._read(obj)
            if data is not None:
                return data
        raise ObjectMissing(f"not found: {uri}{self._where(uri)}")


class MirrorSource(Source):
    """A manifest file in a folder that mirrors its bucket."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.name = str(manifest)
        self._root: Path | None = None

    def lines(self) -> Iterator[bytes]:
        try:
            with self.manifest.open("rb") as fp:
                yield from fp
        except OSError as exc:
            raise ExportError(f"manifest cannot be read: {self.manifest} ({exc})") from exc

    def _path(self, root: Path, obj: S3Uri) -> Path:
        # Split the key, so a key that starts with "/" stays under the root.
        return root.joinpath(*obj.key.split("/"))

    def _read(self, obj: S3Uri) -> bytes | None:
        roots = [self._root] if self._root else list(self.manifest.resolve().parents)
        for root in roots:
            path = self._path(root, obj)
            if path.is_file():
                self._root = root
                try:
                    return path.read_bytes()
                except OSError as exc:
                    raise ExportError(f"{path} cannot be read ({exc})") from exc
        return None

    def _where(self, uri: str) -> str:
        if self._root is None:
            return f" (no folder above {self.manifest} holds it)"
        return f" (no file {self._path(self._root, key_candidates(uri)[0])})"


class S3Source(Source):
    """A manifest object in S3, and the objects it names, read with a boto3 client."""

    def __init__(self, s3: Any, manifest: S3Uri) -> None:
        self.s3 = s3
        self.manifest = manifest
        self.name = str(manifest)

    @classmethod
    def find(cls, s3: Any, uri: str) -> S3Source:
        """The S3 source that ``uri`` names: a manifest object, or a run prefix holding one.

        Raises
        ------
        ExportError
            ``uri`` is malformed, names no manifest, or S3 cannot be asked.
        """
        try:
            given = parse_s3_uri(uri)
        except InvalidS3UriError as exc:
            raise ExportError(f"SOURCE {uri}: {exc} (give s3://<bucket>/runs/<run>/ or a manifest)") from exc
        in_prefix = given.join(ACCEPTED_MANIFEST)
        candidates = [in_prefix] if uri.endswith("/") else [given, in_prefix]
        for manifest in candidates:
            with _s3_errors(manifest):
                if exists(s3, manifest):
                    return cls(s3, manifest)
        raise ExportError(f"SOURCE not found: {' or '.join(str(c) for c in candidates)}")

    def lines(self) -> Iterator[bytes]:
        with _s3_errors(self.manifest):
            yield from iter_lines(self.s3, self.manifest)

    def _read(self, obj: S3Uri) -> bytes | None:
        try:
            return get_bytes(self.s3, obj)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise _unreadable(obj, exc) from exc
        except BotoCoreError as exc:
            raise _unreadable(obj, exc) from exc

    def _where(self, uri: str) -> str:
        return ""


def _unreadable(uri: S3Uri, exc: Exception) -> ExportError:
    return ExportError(f"{uri} cannot be read ({error_code(exc) or exc})")


@contextmanager
def _s3_errors(uri: S3Uri) -> Iterator[None]:
    """S3's errors (no credentials, no bucket, access denied, no endpoint) as :class:`ExportError`."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _unreadable(uri, exc) from exc


def find_manifest(source: Path) -> Path:
    """The accepted manifest that a local ``source`` names (a run folder, one run, or the file itself).

    Raises
    ------
    ExportError
        Nothing is there, or a folder holds no accepted manifest.
    """
    if source.is_file():
        return source
    if not source.is_dir():
        raise ExportError(f"SOURCE not found: {source}")
    if (source / ACCEPTED_MANIFEST).is_file():
        return source / ACCEPTED_MANIFEST
    # Run names start with their UTC start time, so the last in name order is the newest. A project
    # folder (gtaudit demo --out) keeps each bucket under bucket/<bucket>/; a plain copy of a bucket
    # (aws s3 sync) has runs/ at its top.
    runs = sorted(source.glob(f"runs/*/{ACCEPTED_MANIFEST}")) or sorted(
        source.glob(f"bucket/*/runs/*/{ACCEPTED_MANIFEST}"), key=lambda p: p.parent.name
    )
    if not runs:
        raise ExportError(f"no runs/*/{ACCEPTED_MANIFEST} in {source} (nor in a project's bucket/*/)")
    return runs[-1]


def open_source(source: str | Path, s3: Any | None = None) -> Source:
    """The :class:`Source` that SOURCE names (see the module docstring for the forms).

    Parameters
    ----------
    source
        A local path, or an ``s3://`` URI (pass a ``str``: ``Path`` folds ``s3://`` into ``s3:/``).
    s3
        The S3 client for an ``s3://`` source; default ``boto3.client("s3")``.

    Raises
    ------
    ExportError
        SOURCE names no accepted manifest.
    """
    if isinstance(source, str) and source.startswith("s3://"):
        if s3 is None:
            import boto3  # imported here: a local export never needs it

            s3 = boto3.client("s3")
        return S3Source.find(s3, source)
    return MirrorSource(find_manifest(Path(source)))
