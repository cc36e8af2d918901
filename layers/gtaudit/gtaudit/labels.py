"""The label set: class names (any Unicode text) with fixed colours, and GT's colour-map format."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gtaudit.exceptions import InvalidLabelSetError

BACKGROUND = "BACKGROUND"
BACKGROUND_COLOR = "#ffffff"
MAX_LABELS = 254  # index 0 is BACKGROUND and masks are 8-bit indexed PNGs.

# Fixed, distinguishable colours (matplotlib's tab10, then tab20's light tones, then more).
# Never white: white is BACKGROUND in Ground Truth's colour-map convention.
PALETTE: tuple[str, ...] = (
    "#2ca02c", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#98df8a", "#aec7e8", "#ffbb78", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39",
)  # fmt: skip

DEFAULT_LABELS: tuple[str, ...] = ("person", "animal", "vehicle", "building", "plant", "sky", "object")

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def normalize_color(value: str) -> str:
    """Return ``#rrggbb`` in lower case; raise ``InvalidLabelSetError`` if ``value`` is not one."""
    if not isinstance(value, str) or not _HEX.match(value.strip()):
        raise InvalidLabelSetError(f"colour must be '#rrggbb', got {value!r}")
    return value.strip().lower()


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """``#2ca02c`` -> ``(44, 160, 44)``."""
    v = normalize_color(value)
    return int(v[1:3], 16), int(v[3:5], 16), int(v[5:7], 16)


@dataclass(frozen=True, slots=True)
class Label:
    """One class: its name and its colour. Its class index in masks is its position + 1."""

    name: str
    color: str


@dataclass(frozen=True, slots=True)
class LabelSet:
    """An ordered set of labels. Order fixes class indices and colours."""

    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        if not self.labels:
            raise InvalidLabelSetError("the label set is empty")
        if len(self.labels) > MAX_LABELS:
            raise InvalidLabelSetError(f"{len(self.labels)} labels, at most {MAX_LABELS} fit an 8-bit mask")
        names = [lb.name for lb in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidLabelSetError(f"duplicate label names: {dupes}")
        if BACKGROUND in names:
            raise InvalidLabelSetError(f"{BACKGROUND!r} is reserved for unlabeled pixels")
        colors = [lb.color for lb in self.labels]
        if BACKGROUND_COLOR in colors:
            raise InvalidLabelSetError(f"{BACKGROUND_COLOR} is reserved for BACKGROUND")
        if len(set(colors)) != len(colors):
            raise InvalidLabelSetError("two labels share a colour")

    @property
    def names(self) -> list[str]:
        """The label names in order."""
        return [lb.name for lb in self.labels]

    def colors(self) -> dict[str, str]:
        """``{label: "#rrggbb"}``."""
        return {lb.name: lb.color for lb in self.labels}

    def label_mappings(self) -> dict[str, dict[str, str]]:
        """The crowd element's ``labelMappings`` shape: ``{name: {"color": "#rrggbb"}}``."""
        return {lb.name: {"color": lb.color} for lb in self.labels}

    def color_map(self, confidence: float | None = None) -> dict[str, dict[str, Any]]:
        """Ground Truth's ``internal-color-map``: index 0 BACKGROUND ``#ffffff``, then each label."""
        entries = [(BACKGROUND, BACKGROUND_COLOR), *((lb.name, lb.color) for lb in self.labels)]
        out: dict[str, dict[str, Any]] = {}
        for i, (name, color) in enumerate(entries):
            entry: dict[str, Any] = {"class-name": name, "hex-color": color}
            if confidence is not None:
                entry["confidence"] = confidence
            out[str(i)] = entry
        return out

    def to_json(self) -> str:
        """The set as the ``LabelSet`` parameter's JSON (``[{"label", "color"}, ...]``): what
        ``parse_label_set`` reads back to an equal set."""
        return json.dumps([{"label": lb.name, "color": lb.color} for lb in self.labels], ensure_ascii=False)

    @classmethod
    def from_names(cls, names: Iterable[str], colors: Mapping[str, str] | None = None) -> LabelSet:
        """Build a set from names, taking colours from ``colors`` where given, else the palette."""
        names = list(names)
        colors = {k: normalize_color(v) for k, v in (colors or {}).items()}
        taken = set(colors.values())
        free = iter(c for c in PALETTE if c not in taken)
        labels = []
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise InvalidLabelSetError(f"label names must be non-empty text, got {name!r}")
            color = colors.get(name)
            if color is None:
                try:
                    color = next(free)
                except StopIteration:
                    raise InvalidLabelSetError(f"more than {len(PALETTE)} labels need explicit colours") from None
            labels.append(Label(name, color))
        return cls(tuple(labels))

    @classmethod
    def from_color_map(cls, color_map: Mapping[str, Mapping[str, Any]]) -> LabelSet:
        """Rebuild a set from an ``internal-color-map`` (BACKGROUND dropped, index order kept)."""
        try:
            items = sorted(((int(k), v) for k, v in color_map.items()), key=lambda kv: kv[0])
            pairs = [(str(v["class-name"]), normalize_color(str(v["hex-color"]))) for _, v in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidLabelSetError(f"malformed internal-color-map: {exc}") from exc
        pairs = [p for p in pairs if p[0] != BACKGROUND]
        return cls(tuple(Label(n, c) for n, c in pairs))


def parse_label_set(value: str | None) -> LabelSet:
    """Parse the ``LabelSet`` stack parameter.

    Parameters
    ----------
    value
        A JSON array of names (``["cat", "dog"]``) or of objects (``[{"label": "cat", "color":
        "#ff0000"}]``), or mixed. Empty or ``None`` gives ``DEFAULT_LABELS``.

    Returns
    -------
    LabelSet

    Raises
    ------
    InvalidLabelSetError
        Not JSON, not an array, empty, duplicate names or colours, or a bad colour.
    """
    if value is None or not value.strip():
        return LabelSet.from_names(DEFAULT_LABELS)
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidLabelSetError(f"label set is not JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(data, list):
        raise InvalidLabelSetError("label set must be a JSON array")
    names: list[str] = []
    colors: dict[str, str] = {}
    for item in data:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("label"), str):
            names.append(item["label"])
            if item.get("color") is not None:
                colors[item["label"]] = item["color"]
        else:
            raise InvalidLabelSetError(f"label entries must be names or {{'label', 'color'}} objects, got {item!r}")
    return LabelSet.from_names(names, colors)


_NAME_COLOR = re.compile(r"^(?P<name>.+)=(?P<color>#[0-9a-fA-F]{6})$")


def parse_label_option(value: str | None) -> LabelSet:
    """Parse a ``--labels`` option: the ``LabelSet`` JSON, or comma-separated names.

    A name may carry its colour as ``name=#rrggbb`` (``person=#ff0000,vehicle``); the others take
    palette colours no given colour uses. Empty or ``None`` gives ``DEFAULT_LABELS``.

    Raises
    ------
    InvalidLabelSetError
        As ``parse_label_set``, or an empty name.
    """
    if value is None or not value.strip() or value.lstrip().startswith("["):
        return parse_label_set(value)
    names: list[str] = []
    colors: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        m = _NAME_COLOR.match(part)
        name = m.group("name").strip() if m else part
        if m:
            colors[name] = m.group("color")
        names.append(name)
    return LabelSet.from_names(names, colors)
