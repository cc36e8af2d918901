"""Where a source's files are, and reading them: local paths and ``s3://`` URIs alike.

A source names files relative to something: a COCO ``file_name`` to where the images are, a
manifest's local mask to the manifest's folder. :class:`Place` is one such file or folder,
either kind, with the one rule for relative references (:meth:`Place.resolve`).

Two failures, two types: :class:`SourceError` when the source as a whole cannot be read (the
command stops, nothing is started), :class:`Refused` when one object cannot be imported (it is
listed with the reason and the others go on).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gtaudit.labeling.masks import MAX_MASK_PIXELS
from gtaudit.pipeline.start_audit import read_file
from PIL import Image, UnidentifiedImageError

MAX_SOURCE_BYTES = 1024 * 1024 * 1024  # a manifest or COCO file larger than this is not read whole


class SourceError(ValueError):
    """The source cannot be read at all: missing, unreadable, or not the format it claims to be."""


class Refused(Exception):
    """One object cannot be imported; the message is the reason, naming the cause."""


@dataclass(frozen=True, slots=True)
class Place:
    """A file or folder a source names: an ``s3://`` URI or a local path (``ref``, as given)."""

    ref: str

    @property
    def in_s3(self) -> bool:
        """Whether it is an S3 URI."""
        return self.ref.startswith("s3://")

    @property
    def name(self) -> str:
        """The last path segment."""
        return PurePosixPath(self.ref.rstrip("/")).name if self.in_s3 else Path(self.ref).name

    @property
    def parent(self) -> Place:
        """The folder (or prefix) that holds it."""
        if self.in_s3:
            return Place(self.ref.rstrip("/").rsplit("/", 1)[0])
        return Place(str(Path(self.ref).parent))

    def resolve(self, ref: str) -> Place:
        """``ref`` as a place: an ``s3://`` URI or an absolute path as it is, else relative to this folder."""
        if ref.startswith("s3://") or Path(ref).is_absolute():
            return Place(ref)
        if self.in_s3:
            return Place(f"{self.ref.rstrip('/')}/{ref.lstrip('/')}")
        return Place(str(Path(self.ref) / ref))

    def is_dir(self) -> bool:
        """Whether it is a local folder (an S3 prefix never is)."""
        return not self.in_s3 and Path(self.ref).is_dir()

    def read(self, s3: Any, what: str, *, max_bytes: int = MAX_SOURCE_BYTES) -> bytes:
        """The file's bytes.

        Raises
        ------
        Refused
            It does not exist or cannot be read; the reason names ``what`` and where.
        """
        try:
            return read_file(s3, self.ref, what, max_bytes=max_bytes)
        except LookupError as exc:
            raise Refused(str(exc)) from exc


def read_source_file(place: Place, s3: Any, what: str) -> bytes:
    """A source's own file (manifest, COCO JSON); raise ``SourceError`` if it cannot be read."""
    try:
        return place.read(s3, what)
    except Refused as exc:
        raise SourceError(str(exc)) from exc


def open_mask(data: bytes, where: str) -> Image.Image:
    """A mask PNG, loaded, within the pixel limit of worker masks.

    Raises
    ------
    Refused
        Not a PNG, corrupt, or too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=["PNG"])
            if im.width * im.height > MAX_MASK_PIXELS:
                raise Refused(f"mask {where} is {im.width}x{im.height}, more than {MAX_MASK_PIXELS} pixels")
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise Refused(f"mask {where} is not a readable PNG ({type(exc).__name__})") from exc
    return im
