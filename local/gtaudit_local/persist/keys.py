"""Where an S3 key lives on disk: ``<project>/bucket/<bucket>/<path of the key>``.

The rule, applied to each ``/``-separated segment of the key:

=====================================  =============================================================
the segment                            its name on disk
=====================================  =============================================================
ordinary text (any Unicode)            itself: ``images/cat 1.jpg`` is the file ``images/cat 1.jpg``
contains ``%``                         ``%`` is written ``%25``: ``100%.png`` is ``100%25.png``
contains ``\\``, a control character     each such character as ``%XX`` per UTF-8 byte (``%5C``,
(U+0000-U+001F, U+007F)                ``%0A``): never a separator or a terminal surprise
is ``.`` or ``..``                     ``%2E`` or ``%2E%2E``: a key can never walk out of its folder
is empty (``a//b``, ``/a``, ``dir/``)  ``%``: ``photos/`` (an S3 console folder) is ``photos/%``
=====================================  =============================================================

So a name on disk never contains ``/``, is never ``.``, ``..`` or empty, and a ``%`` in it is
always followed by two hex digits or is the whole name: the rule can be read back
(:func:`key_of`), every ordinary key is readable as is, and ``%tmp-...`` (where a file is being
written, :data:`TEMP_PREFIX`) can never be an object's name.

Refused, before moto stores anything (:class:`UnstorableKey`, answered as S3's 400
``InvalidArgument``), because a file system cannot hold them where S3 can:

- a segment longer than 255 bytes once encoded (a file name's limit);
- an object named like the folder of another (``a`` beside ``a/b``): a path is a file or a
  folder, not both. MinIO refuses the same keys in its file-system mode.

Left to the file system: on a case-insensitive one (macOS, Windows) ``A.jpg`` and ``a.jpg`` are
one file, and macOS may store a name in another Unicode normal form.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TEMP_PREFIX = "%tmp-"  # a file being written; no key encodes to a name starting with "%t"
EMPTY_SEGMENT = "%"
NAME_MAX = 255  # bytes in one file name on ext4, XFS, APFS, NTFS (in UTF-16 units there)
_ESCAPE = re.compile(r"[%\\\x00-\x1f\x7f]")
_DOTS = {".": "%2E", "..": "%2E%2E"}
_HEX_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class UnstorableKey(ValueError):
    """The key is a valid S3 key that a file system cannot hold where the rule puts it."""

    def __init__(self, bucket: str, key: str, reason: str) -> None:
        super().__init__(f"key {key!r} of bucket {bucket!r} cannot be kept as a file: {reason}")
        self.bucket = bucket
        self.key = key
        self.reason = reason


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode())


def encode_segment(segment: str) -> str:
    """The file name of one key segment (the table above)."""
    if not segment:
        return EMPTY_SEGMENT
    if segment in _DOTS:
        return _DOTS[segment]
    return _ESCAPE.sub(_escape, segment)


def decode_segment(name: str) -> str:
    """The key segment a file name stands for; ``ValueError`` for a name the rule does not produce."""
    if name == EMPTY_SEGMENT:
        return ""
    raw, pos = bytearray(), 0
    for m in _HEX_ESCAPE.finditer(name):
        raw += name[pos : m.start()].encode()
        raw.append(int(m.group()[1:], 16))
        pos = m.end()
    raw += name[pos:].encode()
    segment = raw.decode()
    if encode_segment(segment) != name:  # "%41", "a%zz", ".": a name made by hand, not by the rule
        raise ValueError(f"not an encoded key segment: {name!r}")
    return segment


def relative_path(bucket: str, key: str) -> str:
    """The key's path below ``bucket/<bucket>/``, ``/``-separated; raises :class:`UnstorableKey`."""
    names = [encode_segment(s) for s in key.split("/")]
    for name in names:
        try:
            size = len(name.encode())
        except UnicodeEncodeError as exc:  # a lone surrogate: no S3 request can carry one
            raise UnstorableKey(bucket, key, "it is not valid Unicode") from exc
        if size > NAME_MAX:
            raise UnstorableKey(bucket, key, f"a segment is over {NAME_MAX} bytes once encoded")
    return "/".join(names)


def key_of(relative: str) -> str:
    """The S3 key that :func:`relative_path` maps to ``relative``; ``ValueError`` if none does."""
    return "/".join(decode_segment(name) for name in relative.split("/"))


def object_path(bucket_dir: Path, bucket: str, key: str) -> Path:
    """The absolute file of ``key``, checked to lie inside ``bucket_dir`` (as it always should)."""
    path = bucket_dir / relative_path(bucket, key)
    if os.path.commonpath([bucket_dir, os.path.normpath(path)]) != str(bucket_dir) or path == bucket_dir:
        raise UnstorableKey(bucket, key, "its path would leave the bucket's folder")
    return path


def check_no_clash(bucket_dir: Path, bucket: str, key: str) -> Path:
    """:func:`object_path`, refused if a folder on its way is a file or the path is a folder."""
    path = object_path(bucket_dir, bucket, key)
    if path.is_dir():
        raise UnstorableKey(bucket, key, "other keys use it as a folder (a key cannot be both)")
    parent = path.parent
    while parent != bucket_dir:
        if parent.is_file():
            raise UnstorableKey(bucket, key, f"{parent.relative_to(bucket_dir)} is an object, not a folder")
        parent = parent.parent
    return path
