"""Ground Truth's naming rules for labeling jobs and label attributes, and our deterministic names.

Images keep the name a person knows them by: the start names each object after its image's stem
(``unique_stems``), labeling_post names each mask and overlay the same way (``name_candidates``), and
the export names its files so too (``unique_names``). One rule serves all three: the stem made safe
(``safe_stem``), and where two stems collide, ``-<4 hex>`` of the image's identity (its source URI),
longer only if that is not enough (``collision_tag``).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from gtaudit.exceptions import InvalidNameError

JOB_NAME_MAX = 63
ATTRIBUTE_NAME_MAX = 127
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9]+")
# What Windows, macOS or a shell cannot take in a file name (a slash would make a folder), and "%",
# so that a reader that URL-decodes an S3 key (as S3's event notifications require) reads it unchanged.
_UNSAFE_FILE_CHARS = re.compile(r'[/\\:*?"<>|%]')
# A stem longer than this (UTF-8) is cut: with an extension and a collision tag it stays below the
# 255 bytes most file systems allow in a name, and far below S3's 1,024-byte keys.
MAX_STEM_BYTES = 160
# The widths of a collision tag (hex digits of the identity's SHA-256), tried in order.
TAG_WIDTHS = (4, 8, 64)


def validate_job_name(name: str) -> str:
    """Return ``name`` if it is a valid ``LabelingJobName``; raise ``InvalidNameError`` otherwise."""
    if not isinstance(name, str) or not 1 <= len(name) <= JOB_NAME_MAX or not _NAME.match(name):
        raise InvalidNameError(
            f"labeling job name {name!r} must be 1-{JOB_NAME_MAX} characters of letters, digits and inner hyphens"
        )
    return name


def validate_attribute_name(name: str, *, custom: bool = True) -> str:
    """Return ``name`` if it is a valid ``LabelAttributeName`` for a custom (or built-in) task type."""
    if not isinstance(name, str) or not 1 <= len(name) <= ATTRIBUTE_NAME_MAX or not _NAME.match(name):
        raise InvalidNameError(
            f"label attribute name {name!r} must be 1-{ATTRIBUTE_NAME_MAX} characters of letters, digits and hyphens"
        )
    if name.endswith("-metadata"):
        raise InvalidNameError(f"label attribute name {name!r} must not end in '-metadata'")
    if custom and name.endswith("-ref"):
        raise InvalidNameError(f"label attribute name {name!r} must not end in '-ref' for a custom task type")
    if not custom and not name.endswith("-ref"):
        raise InvalidNameError(f"label attribute name {name!r} must end in '-ref' for built-in segmentation")
    return name


def slug(text: str) -> str:
    """Letters and digits of ``text`` joined by single hyphens, lower case."""
    return _UNSAFE.sub("-", text).strip("-").lower()


def job_name(prefix: str, kind: str, round_no: int, run_id: str) -> str:
    """A deterministic job name ``<prefix>-<kind>-r<round>-<run>`` that always fits 63 characters.

    A long prefix (a long stack name) is shortened and a hash of the full prefix keeps names unique,
    so the same inputs always give the same name, which is what makes job creation idempotent.
    """
    tail = f"-{slug(kind)}-r{round_no}-{slug(run_id)}"
    base = slug(prefix) or "gtaudit"
    if len(base) + len(tail) > JOB_NAME_MAX:
        digest = hashlib.sha256(prefix.encode()).hexdigest()[:6]
        room = JOB_NAME_MAX - len(tail) - len(digest) - 1
        if room < 1:
            raise InvalidNameError(f"run id {run_id!r} leaves no room for a job name prefix")
        base = f"{base[:room].rstrip('-')}-{digest}"
    return validate_job_name(f"{base}{tail}")


@dataclass(frozen=True, slots=True)
class JobNameParts:
    """The parts of a name made by ``job_name``: ``<prefix>-<kind>-r<round>-<run>``."""

    prefix: str
    kind: str
    round: int
    run: str


_JOB_NAME_PARTS = re.compile(
    r"^(?P<prefix>.+)-(?P<kind>labeling|audit|rework)-r(?P<round>\d{1,4})-(?P<run>[a-z0-9][a-z0-9-]*)$"
)


def parse_job_name(name: str) -> JobNameParts | None:
    """Split a ``job_name`` result back into its parts; ``None`` for a name it did not make.

    The prefix may itself contain ``-audit-r1-`` and the like, so the last such group wins.
    """
    m = _JOB_NAME_PARTS.match(name.lower()) if isinstance(name, str) else None
    if not m:
        return None
    return JobNameParts(m["prefix"], m["kind"], int(m["round"]), m["run"])


def attribute_name(stage: str, round_no: int) -> str:
    """The label attribute for a stage and round, e.g. ``label-r1``, ``audit-r1``, ``label-r2``."""
    return validate_attribute_name(f"{slug(stage)}-r{round_no}")


def safe_stem(name: str) -> str:
    """``name`` made safe as a file name and as one S3 key segment, Unicode kept.

    Separators, ``%``, control characters and a leading dot are replaced by ``_``; a name longer
    than ``MAX_STEM_BYTES`` is cut and gets ``-<8 hex>`` of the whole name, so two long names with a
    common start stay apart. Applying it twice changes nothing.
    """
    text = _UNSAFE_FILE_CHARS.sub("_", name)
    text = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in text)
    if text.startswith("."):
        text = "_" + text[1:]
    if len(text.encode("utf-8")) > MAX_STEM_BYTES:
        tag = "-" + collision_tag(name, 8)
        cut = text.encode("utf-8")[: MAX_STEM_BYTES - len(tag)].decode("utf-8", "ignore")
        text = cut + tag
    return text or "_"


def stem_of(file_name: str) -> str:
    """The safe stem of a file name: ``猫 の 写真 (1).jpg`` -> ``猫 の 写真 (1)``."""
    return safe_stem(PurePosixPath(file_name).stem)


def collision_tag(identity: str, width: int) -> str:
    """``width`` hex digits of the SHA-256 of ``identity``: what tells two equal stems apart."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:width]


def name_candidates(stem: str, identity: str) -> Iterator[str]:
    """The names one image may take, in order of preference, when others may already hold some.

    ``stem`` first; then ``stem-<tag>`` at each of ``TAG_WIDTHS`` (the names :func:`unique_stems`
    gives when it sees the collision); then ``stem-<64 hex>-1``, ``-2``, ... for the same identity
    seen again. Endless: the caller stops at the first name that is free or already its own.
    """
    yield stem
    for width in TAG_WIDTHS:
        yield f"{stem}-{collision_tag(identity, width)}"
    full = collision_tag(identity, TAG_WIDTHS[-1])
    for n in itertools.count(1):
        yield f"{stem}-{full}-{n}"


def unique_stems(entries: Iterable[tuple[str, str]]) -> list[str]:
    """File stems for (identity, original file name) pairs, in order: the name a person knows an image by.

    Each keeps the original's stem (made safe, Unicode kept); every image of a group whose stems
    are equal, ignoring case (so a case-insensitive file system cannot merge them), gets
    ``-<4 hex>`` of its identity's hash, longer if that is not enough. So ``猫 の 写真 (1).jpg`` stays
    ``猫 の 写真 (1)``, and only names that collide carry a suffix.
    """
    pairs = list(entries)
    stems = [stem_of(name) for _, name in pairs]
    groups: dict[str, list[int]] = {}
    for i, stem in enumerate(stems):
        groups.setdefault(stem.casefold(), []).append(i)
    out = list(stems)
    for members in groups.values():
        if len(members) < 2:
            continue
        for width in TAG_WIDTHS:
            tags = [collision_tag(pairs[i][0], width) for i in members]
            if len(set(tags)) == len(tags):
                break
        else:  # the same identity twice: number them
            tags = [f"{t}-{n}" for n, t in enumerate(tags, start=1)]
        for i, tag in zip(members, tags, strict=True):
            out[i] = f"{stems[i]}-{tag}"
    return out


def unique_names(entries: Iterable[tuple[str, str]]) -> list[str]:
    """Output file names for (identity, original file name) pairs, in order: :func:`unique_stems`
    plus each original's extension (made safe)."""
    pairs = list(entries)
    exts = ["." + safe_stem(ext[1:]) if (ext := PurePosixPath(name).suffix) else "" for _, name in pairs]
    return [stem + ext for stem, ext in zip(unique_stems(pairs), exts, strict=True)]
