"""What the project store keeps of an S3 object beside its bytes, and what a restore reports."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ObjectRecord:
    """One S3 object's row in ``state/aws.sqlite``; its bytes are the file the key maps to.

    Attributes
    ----------
    etag
        Without quotes, as moto keeps it (``<md5>`` or ``<md5>-<parts>`` after a multipart upload).
    version_id
        The current version's ID in a versioned bucket (kept, so that an event re-driven after a
        restart still names an existing version), ``None`` or ``"null"`` otherwise.
    last_modified
        ISO 8601, naive UTC, as moto keeps it.
    metadata
        moto's metadata of the object: ``content-type``, ``cache-control``, ``x-amz-meta-*``, ...
    extra
        The rest that a PUT can set: storage class, checksum, encryption, object lock, tags.
    size, mtime_ns
        The file's, as written: a file whose size or mtime differ was replaced behind the store's
        back (by hand, or a crash between the file and its row) and is read again on restore.
    """

    bucket: str
    key: str
    etag: str
    version_id: str | None
    last_modified: str
    metadata: dict[str, str]
    extra: dict[str, Any]
    size: int = 0
    mtime_ns: int = 0

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` S3 answers with."""
        return self.metadata.get("content-type", "binary/octet-stream")


@dataclass
class RestoreReport:
    """What :meth:`~gtaudit_local.persist.store.AwsStore.restore` put back, and what it found odd."""

    objects: int = 0
    object_bytes: int = 0
    items: int = 0
    seconds: float = 0.0
    adopted: list[str] = field(default_factory=list)  # "bucket/key": a file without a matching row
    dropped: list[str] = field(default_factory=list)  # "bucket/key": a row whose file is gone
    unreadable: list[str] = field(default_factory=list)  # files whose name no key maps to
    created_buckets: list[str] = field(default_factory=list)  # on disk, not deployed: made with defaults
    skipped_tables: list[str] = field(default_factory=list)  # items kept on disk for a table not deployed

    def merged(self, other: RestoreReport) -> RestoreReport:
        """This report and ``other``'s, of restores that ran side by side: counts and lists added,
        the longer one's seconds."""
        both = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return RestoreReport(**{**both, "seconds": max(self.seconds, other.seconds)})
