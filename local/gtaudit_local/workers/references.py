"""What a scripted worker reads: the task's labels, the reference masks, mask PNGs and image sizes.

Class indices are the task's: 0 is background and *i* is the task's label *i* (1-based), whatever
the source. A reference mask (``<image stem>.png``, 8-bit indexed, index *i* = label *i* of the
reference labels) is mapped onto them by label name; a class the task does not ask for becomes
background. A worker's own or a consolidated mask PNG is read by its exact label colours (or, for
an indexed PNG with a legend, by its indices), since that is what the worker UI painted.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from gtaudit.labels import DEFAULT_LABELS, LabelSet
from gtaudit.s3io import get_bytes
from gtaudit.s3uri import parse_s3_uri
from PIL import Image

_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that display the image transposed


@dataclass(frozen=True, slots=True)
class TaskLabels:
    """The task's labels in order (class i = names[i-1]) with their colours."""

    names: tuple[str, ...]
    colors: tuple[str, ...]

    @classmethod
    def from_task_input(cls, task_input: Mapping[str, Any]) -> TaskLabels:
        """The labels of a labeling task: ``labels`` (names) and ``labelColors``."""
        names = [str(n) for n in task_input.get("labels") or []]
        given = {
            str(item["label"]): str(item["color"])
            for item in task_input.get("labelColors") or []
            if isinstance(item, Mapping) and "label" in item and "color" in item
        }
        names = names or list(given)
        if not names:
            raise ValueError("task input has neither 'labels' nor 'labelColors'")
        ls = LabelSet.from_names(names, given)
        return cls(tuple(ls.names), tuple(lb.color for lb in ls.labels))

    @classmethod
    def from_legend(cls, legend: Sequence[Mapping[str, Any]]) -> tuple[TaskLabels, dict[int, int]]:
        """The audit legend's labels, and the map from mask index to position here (1-based)."""
        entries = sorted((int(e["index"]), str(e["label"]), str(e["color"])) for e in legend)
        labels = cls(tuple(n for _, n, _ in entries), tuple(c for _, _, c in entries))
        return labels, {index: pos for pos, (index, _, _) in enumerate(entries, start=1)}

    def index(self, name: str) -> int:
        """The class index of ``name`` (0 when the task does not ask for it)."""
        return self.names.index(name) + 1 if name in self.names else 0


class References:
    """Reference masks by image stem, from local folders or ``s3://`` prefixes (cached).

    ``locations`` is one place or several, searched in order: the first holding ``<stem>.png``
    gives the reference (the demo's crew reads ``samples/reference`` and the gold masks).
    """

    def __init__(
        self, locations: str | Path | Sequence[str | Path] | None, labels: Sequence[str] = DEFAULT_LABELS
    ) -> None:
        if locations is None:
            self.locations: tuple[str | Path, ...] = ()
        elif isinstance(locations, str | Path):
            self.locations = (locations,)
        else:
            self.locations = tuple(locations)
        self.labels = tuple(labels)
        self._cache: dict[str, np.ndarray | None] = {}

    def get(self, stem: str, s3: Any) -> np.ndarray | None:
        """The reference for ``stem`` as indices into ``self.labels`` (0 background), or ``None``."""
        if stem not in self._cache:
            data = next((d for d in (self._read(loc, stem, s3) for loc in self.locations) if d is not None), None)
            self._cache[stem] = None if data is None else _indexed(data, stem)
        return self._cache[stem]

    @staticmethod
    def _read(location: str | Path, stem: str, s3: Any) -> bytes | None:
        loc = str(location)
        try:
            if loc.startswith("s3://"):
                return get_bytes(s3, parse_s3_uri(f"{loc.rstrip('/')}/{stem}.png"))
            path = Path(loc) / f"{stem}.png"
            return path.read_bytes() if path.is_file() else None
        except ClientError:
            return None

    def for_task(self, stem: str, s3: Any, labels: TaskLabels, size: tuple[int, int]) -> np.ndarray | None:
        """The reference in the task's class indices and the displayed ``(width, height)``."""
        ref = self.get(stem, s3)
        if ref is None:
            return None
        lut = np.zeros(256, dtype=np.uint8)
        for i, name in enumerate(self.labels, start=1):
            lut[i] = labels.index(name)
        mapped = lut[ref]
        if (mapped.shape[1], mapped.shape[0]) != size:
            mapped = np.asarray(Image.fromarray(mapped).resize(size, Image.Resampling.NEAREST))
        return mapped


def _indexed(data: bytes, stem: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        if im.mode != "P":
            raise ValueError(f"reference {stem}.png must be an indexed (P mode) PNG, got {im.mode}")
        return np.asarray(im, dtype=np.uint8).copy()


def without_reference(folders: Sequence[Path], images: Iterable[Path]) -> list[str]:
    """The names of ``images`` that have no reference mask ``<stem>.png`` in any of ``folders``.

    A scripted worker without a reference has nothing to judge by (a labeler paints a central
    ellipse, an auditor approves any non-empty mask), so a run that counts on them should say so.
    """
    return sorted(p.name for p in images if not any((f / f"{p.stem}.png").is_file() for f in folders))


def image_stem(uri: object) -> str:
    """The file name of a URI or path without its extension: the key of its reference mask."""
    name = str(uri or "").rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def displayed_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` as a browser shows the image (EXIF orientation applied); header only."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    return (h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h)


def _colour_classes(rgb: np.ndarray, colors: Mapping[str, int]) -> np.ndarray:
    """Map exact ``#rrggbb`` colours (to class index) over an RGB array; anything else is 0."""
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    values, inverse = np.unique(packed.reshape(-1), return_inverse=True)
    by_key = {int(c[1:], 16): idx for c, idx in colors.items()}
    table = np.array([by_key.get(int(v), 0) for v in values], dtype=np.uint8)
    return table[inverse].reshape(packed.shape)


def read_mask(data: bytes, colors: Mapping[str, int], index_map: Mapping[int, int] | None = None) -> np.ndarray:
    """A mask PNG as class indices: an indexed PNG by its indices (via ``index_map``) when given, else by colour."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode == "P" and index_map is not None:
            raw = np.asarray(im, dtype=np.uint8)
            lut = np.zeros(256, dtype=np.uint8)
            for idx, pos in index_map.items():
                if 0 <= idx < 256:
                    lut[idx] = pos
            return lut[raw]
        rgba = np.asarray(im.convert("RGBA"))
    classes = _colour_classes(rgba[..., :3], colors)
    classes[rgba[..., 3] < 128] = 0
    return classes
