"""JSON Lines manifests: stream them line by line, and the stable identity of a data object."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from gtaudit.exceptions import ManifestError

# Our key in every manifest line: the object's identity across jobs and rounds. GT's
# datasetObjectId is only an index within one job, so it cannot follow an object to its audit.
OBJECT_ID_KEY = "object-id"
# Our key for what a stage hands the next (round, previous mask, auditor feedback, ...).
GTAUDIT_KEY = "gtaudit"
_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def object_id_for(source: str) -> str:
    """A stable, readable object ID for an image reference: its file stem plus a short hash.

    The hash keeps two ``0001.jpg`` in different folders apart; the stem keeps IDs readable.
    """
    stem = source.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = _ID_SAFE.sub("-", stem).strip("-")[:40] or "object"
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def object_id_of(line: dict[str, Any]) -> str | None:
    """The object ID carried by a manifest line or data object, derived from its source if absent."""
    oid = line.get(OBJECT_ID_KEY)
    if isinstance(oid, str) and oid:
        return oid
    src = line.get("source-ref")
    if isinstance(src, str) and src:
        return object_id_for(src)
    src = line.get("source")
    if isinstance(src, str) and src:
        return object_id_for("inline:" + src)
    return None


@dataclass(frozen=True, slots=True)
class ManifestLine:
    """One parsed line: its 1-based number and its JSON object."""

    number: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a JSON object, with the reason."""

    number: int
    reason: str


def iter_manifest(stream: Iterable[bytes | str]) -> Iterator[ManifestLine | BadLine]:
    """Parse a JSON Lines stream lazily, one line at a time; blank lines are skipped.

    A bad line is yielded as ``BadLine`` rather than raised, so one bad line never sinks the rest.
    """
    for number, raw in enumerate(stream, start=1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(number, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(data, dict):
            yield BadLine(number, f"a manifest line must be a JSON object, got {type(data).__name__}")
            continue
        yield ManifestLine(number, data)


def parse_manifest_line(text: str) -> dict[str, Any]:
    """Parse one line; raise ``ManifestError`` if it is not a JSON object."""
    for item in iter_manifest([text]):
        if isinstance(item, BadLine):
            raise ManifestError(item.reason)
        return item.data
    raise ManifestError("empty manifest line")


def dumps_line(data: dict[str, Any]) -> str:
    """One manifest line: compact JSON, UTF-8 kept readable, newline-terminated."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n"


def write_manifest(fp: IO[str], lines: Iterable[dict[str, Any]]) -> int:
    """Write lines to a text stream; return how many were written."""
    n = 0
    for line in lines:
        fp.write(dumps_line(line))
        n += 1
    return n
