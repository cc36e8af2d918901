"""Scripted workers for the local Ground Truth emulator: labelers and auditors that never sleep.

The emulator hands each worker a :class:`Task` (the rendered page and its ``task.input``) and gets
back an :class:`Answer` whose ``content`` is exactly what the worker UI would submit: for the
segmentation template, ``{"crowd-semantic-segmentation": {"inputImageProperties",
"labelMappings", "labeledImage": {"pngImageData"}, "initialValueModified"?}}`` with an RGBA PNG
painted in the task's label colours; for the audit template, the radio buttons, one checkbox per
reason code, a comment and ``region-notes`` (a JSON string of pins at fractions of the image).

Workers know the truth from **reference masks** (``samples/reference/<image stem>.png``: 8-bit
indexed, index *i* = label *i* of ``reference_labels``, by default ``DEFAULT_LABELS``), looked up
by the image file's stem in a local folder or under an ``s3://`` prefix given at construction.
Reference classes are matched to the task's labels by name; a class the task does not ask for is
background.

* :class:`ScriptedLabeler` starts from the reference and makes seeded, profile-dependent mistakes:
  boundaries pushed out or pulled in along stretches of the outline (dilate/erode under a smooth
  random field), a missed small region, a region given the wrong class, a stray extra blob, and
  anti-aliased edges with intermediate colours and partial alpha as a browser canvas paints them.
  It sometimes returns or abandons a task. In a rework (``initialValue`` + ``feedback``) it starts
  from the previous mask and fixes each wrong region with the profile's ``rework_fix``
  probability (more likely where an auditor pinned a note), then touches up the boundaries.
  Without a reference it paints a central ellipse of the first label.
* :class:`ScriptedAuditor` reads the consolidated mask (the task's ``mask`` URI) and compares it
  with the reference (:func:`assess`): whole regions missing, of the wrong class or extra, and
  loose boundaries. It approves when the labeled-pixel IoU reaches ``threshold`` and no
  region-level problem exists; otherwise it rejects with the matching reason codes, a short
  comment and one to three pins on the largest error regions. Without a reference it approves any non-empty mask.

Everything is deterministic: the pixels and the simulated times of an answer depend only on the
seed, the worker and the task. Times are simulated, never slept: each worker keeps its own
timeline (it accepts a task when both the clock and the worker are free), so one worker's tasks
never overlap and ``submitted_at - accepted_at`` (wall time) is at least ``active_seconds``.
Only numpy and Pillow are used.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.labels import DEFAULT_LABELS, LabelSet, hex_to_rgb
from gtaudit.reasons import REASONS
from gtaudit.s3io import get_bytes
from gtaudit.s3uri import parse_s3_uri
from PIL import Image, ImageDraw, UnidentifiedImageError

SEGMENTATION_ELEMENT = "crowd-semantic-segmentation"
REGION = "us-east-1"
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that display the image transposed
_WORK_SIDE = 640  # random fields and effort estimates are computed at most this size
_ELEMENT_NAME = re.compile(r"<crowd-semantic-segmentation\b[^>]*?\bname\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)


# ---------------------------------------------------------------- the emulator's interface


@dataclass(frozen=True)
class Task:
    """One task handed to one worker."""

    job_name: str
    kind: str  # "labeling" | "audit" | "rework"
    dataset_object_id: str
    data_object: dict[str, Any]
    task_input: dict[str, Any]
    html: str  # the rendered Liquid page
    iteration: int


@dataclass(frozen=True)
class Answer:
    """A worker's outcome: ``content`` is the answerContent when ``status`` is ``submitted``."""

    status: str  # "submitted" | "returned" | "abandoned"
    content: dict[str, Any] | None
    accepted_at: datetime
    submitted_at: datetime | None
    active_seconds: float


class Worker(Protocol):
    """What the emulator needs of a worker."""

    worker_id: str  # e.g. "private.us-east-1.3f9c0a..."
    sub: str  # Cognito sub (uuid)

    def work(self, task: Task, s3: Any) -> Answer: ...


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class Profile:
    """How a labeler works: size and frequency of its mistakes, speed and rework diligence."""

    name: str
    boundary_px: int  # largest push/pull of an outline, in pixels
    boundary_share: float  # share of the outline that is pushed or pulled
    p_miss: float  # chance to leave one small region unpainted
    p_wrong_class: float  # chance to give one region a wrong class
    p_extra: float  # chance to paint a stray blob on the background
    antialias: float  # share of edge pixels painted with intermediate colours
    p_return: float  # chance to return the task unfinished
    p_abandon: float  # chance to let the task time out
    rework_fix: float  # chance to fix each wrong region in a rework
    pace: float  # multiplies the active time (careful people are slower)


CAREFUL = Profile("careful", 2, 0.3, 0.03, 0.02, 0.0, 0.4, 0.0, 0.0, 0.97, 1.4)
AVERAGE = Profile("average", 4, 0.5, 0.12, 0.06, 0.05, 0.5, 0.02, 0.01, 0.85, 1.0)
SLOPPY = Profile("sloppy", 12, 0.9, 0.7, 0.35, 0.35, 0.7, 0.05, 0.03, 0.55, 0.6)
PROFILES: dict[str, Profile] = {p.name: p for p in (CAREFUL, AVERAGE, SLOPPY)}


def _profile(value: Profile | str) -> Profile:
    if isinstance(value, Profile):
        return value
    try:
        return PROFILES[value]
    except KeyError:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {value!r}") from None


# ---------------------------------------------------------------- identities and randomness


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


def worker_identity(seed: int, name: str) -> tuple[str, str]:
    """A stable ``(worker_id, sub)`` pair for a named worker: ``private.us-east-1.<16 hex>`` and a UUID."""
    worker_id = f"private.{REGION}.{_digest('worker', seed, name).hex()[:16]}"
    sub = str(uuid.UUID(bytes=_digest("sub", seed, name)[:16], version=4))
    return worker_id, sub


def _task_rng(seed: int, worker_id: str, task: Task) -> np.random.Generator:
    """The generator for one worker on one task: the same inputs always draw the same numbers."""
    object_id = task.task_input.get("objectId") or task.data_object.get("object-id") or ""
    key = _digest(seed, worker_id, task.job_name, task.kind, task.dataset_object_id, object_id, task.iteration)
    return np.random.default_rng([int(v) for v in np.frombuffer(key, dtype=np.uint32)])


class _Timeline:
    """A worker's simulated clock: tasks follow one another, starting no earlier than ``clock()``."""

    def __init__(self, clock: Callable[[], datetime] | None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._free_at: datetime | None = None

    def book(self, rng: np.random.Generator, active: float, status: str) -> tuple[datetime, datetime | None]:
        now = self._clock()
        start = max(now, self._free_at) if self._free_at else now
        accepted = start + timedelta(seconds=float(rng.uniform(2.0, 30.0)))
        # Wall time: the active time plus pauses (reading, hesitating, a glance at another tab).
        wall = active * float(rng.uniform(1.05, 1.6)) + float(rng.uniform(0.0, 45.0))
        end = accepted + timedelta(seconds=wall)
        self._free_at = end
        return accepted, (end if status == "submitted" else None)


# ---------------------------------------------------------------- small image tools (numpy only)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Grow a boolean mask by ``r`` pixels (4-neighbour steps; the frame edge does not grow it)."""
    out = mask.copy()
    for _ in range(max(0, r)):
        nxt = out.copy()
        nxt[1:] |= out[:-1]
        nxt[:-1] |= out[1:]
        nxt[:, 1:] |= out[:, :-1]
        nxt[:, :-1] |= out[:, 1:]
        out = nxt
    return out


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Shrink a boolean mask by ``r`` pixels; pixels on the frame edge erode only from inside."""
    return ~_dilate(~mask, r)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected components of a boolean mask.

    Parameters
    ----------
    mask
        2-D boolean array.

    Returns
    -------
    tuple
        ``(labels, count)``: ``int32`` labels (0 outside the mask, 1..count inside) and the count.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    n = len(starts)
    labels = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return labels, 0
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_at = np.searchsorted(rows, np.arange(h + 1)).tolist()
    s, e = starts.tolist(), ends.tolist()
    for y in range(1, h):
        i, i_end, j, j_end = row_at[y - 1], row_at[y], row_at[y], row_at[y + 1]
        while i < i_end and j < j_end:
            if s[i] < e[j] and s[j] < e[i]:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = [find(i) for i in range(n)]
    numbering: dict[int, int] = {}
    for root in roots:
        numbering.setdefault(root, len(numbering) + 1)
    run_label = np.array([numbering[r] for r in roots], dtype=np.int32)
    # Paint all runs at once: each pixel of a run gets its run's label.
    lengths = ends - starts
    flat_start = rows * w + starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    labels.reshape(-1)[np.repeat(flat_start, lengths) + offsets] = np.repeat(run_label, lengths)
    return labels, len(numbering)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """The pixel index arrays (flat) of each component of ``mask``, largest first."""
    labels, count = label_components(mask)
    if count == 0:
        return []
    flat = labels.reshape(-1)
    inside = np.flatnonzero(flat)
    order = inside[np.argsort(flat[inside], kind="stable")]
    bounds = np.concatenate(([0], np.cumsum(np.bincount(flat[inside], minlength=count + 1)[1:])))
    parts = [order[bounds[k] : bounds[k + 1]] for k in range(count)]
    parts.sort(key=len, reverse=True)
    return parts


def _smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: int = 6) -> np.ndarray:
    """Smooth random values in 0..1 over the frame: bilinear-upsampled coarse noise."""
    w, h = size
    coarse = rng.random((cells, cells)).astype(np.float32)
    # Above _WORK_SIDE, interpolate at that size and repeat pixels: the field only picks zones.
    step = -(-max(w, h) // _WORK_SIDE)
    img = Image.fromarray(coarse).resize((-(-w // step), -(-h // step)), Image.Resampling.BILINEAR)
    field_ = np.asarray(img, dtype=np.float32)
    lo, hi = float(field_.min()), float(field_.max())
    field_ = (field_ - lo) / (hi - lo) if hi > lo else np.full(field_.shape, 0.5, np.float32)
    return field_.repeat(step, axis=0).repeat(step, axis=1)[:h, :w] if step > 1 else field_


def _edge(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with a 4-neighbour of another class, and that neighbour's class (first found)."""
    neighbour = classes.copy()
    edge = np.zeros(classes.shape, dtype=bool)
    for src, dst in (
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        other = classes[src]
        differs = (other != classes[dst]) & ~edge[dst]
        neighbour[dst][differs] = other[differs]
        edge[dst] |= differs
    return edge, neighbour


def _inside_point(pixels: np.ndarray, width: int) -> tuple[float, float]:
    """A point of the region nearest its centroid (the centroid of an arc can lie outside it)."""
    ys, xs = np.divmod(pixels, width)
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return float(xs[k]), float(ys[k])


# ---------------------------------------------------------------- labels, references, images


@dataclass(frozen=True, slots=True)
class _Labels:
    """The task's labels in order (class i = names[i-1]) with their colours."""

    names: tuple[str, ...]
    colors: tuple[str, ...]

    @classmethod
    def from_task_input(cls, task_input: Mapping[str, Any]) -> _Labels:
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
    def from_legend(cls, legend: Sequence[Mapping[str, Any]]) -> tuple[_Labels, dict[int, int]]:
        """The audit legend's labels, and the map from mask index to position here (1-based)."""
        entries = sorted((int(e["index"]), str(e["label"]), str(e["color"])) for e in legend)
        labels = cls(tuple(n for _, n, _ in entries), tuple(c for _, _, c in entries))
        return labels, {index: pos for pos, (index, _, _) in enumerate(entries, start=1)}

    def index(self, name: str) -> int:
        return self.names.index(name) + 1 if name in self.names else 0


class References:
    """Reference masks by image stem, from a local folder or an ``s3://`` prefix (cached)."""

    def __init__(self, location: str | Path | None, labels: Sequence[str] = DEFAULT_LABELS) -> None:
        self.location = location
        self.labels = tuple(labels)
        self._cache: dict[str, np.ndarray | None] = {}

    def get(self, stem: str, s3: Any) -> np.ndarray | None:
        """The reference for ``stem`` as indices into ``self.labels`` (0 background), or ``None``."""
        if stem not in self._cache:
            self._cache[stem] = self._load(stem, s3)
        return self._cache[stem]

    def _load(self, stem: str, s3: Any) -> np.ndarray | None:
        if self.location is None:
            return None
        loc = str(self.location)
        try:
            if loc.startswith("s3://"):
                data = get_bytes(s3, parse_s3_uri(f"{loc.rstrip('/')}/{stem}.png"))
            else:
                path = Path(loc) / f"{stem}.png"
                if not path.is_file():
                    return None
                data = path.read_bytes()
        except ClientError:
            return None
        with Image.open(io.BytesIO(data)) as im:
            if im.mode != "P":
                raise ValueError(f"reference {stem}.png must be an indexed (P mode) PNG, got {im.mode}")
            return np.asarray(im, dtype=np.uint8).copy()

    def for_task(self, stem: str, s3: Any, labels: _Labels, size: tuple[int, int]) -> np.ndarray | None:
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


def _stem(uri: object) -> str:
    name = str(uri or "").rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _displayed_size(data: bytes) -> tuple[int, int]:
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


def _read_mask(data: bytes, colors: Mapping[str, int], index_map: Mapping[int, int] | None = None) -> np.ndarray:
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


# ---------------------------------------------------------------- painting mistakes


def _jitter(classes: np.ndarray, rng: np.random.Generator, px: int, share: float) -> np.ndarray:
    """Push and pull stretches of every outline by up to ``px`` pixels."""
    out = classes.copy()
    if px <= 0 or share <= 0:
        return out
    h, w = classes.shape
    present = [int(c) for c in np.unique(classes) if c]
    for c in rng.permutation(present):
        region = classes == c
        r = int(rng.integers(1, px + 1))
        field_ = _smooth_field(rng, (w, h))
        grow_zone, shrink_zone = field_ > 1 - share / 2, field_ < share / 2
        out[_dilate(region, r) & ~region & grow_zone] = c
        out[region & ~_erode(region, r) & shrink_zone & (out == c)] = 0
    return out


def _miss_region(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Leave one small region (or, lacking one, a patch inside a large one) unpainted."""
    out = classes.copy()
    h, w = classes.shape
    total = h * w
    small: list[np.ndarray] = []
    for c in (int(v) for v in np.unique(classes) if v):
        small += [p for p in _components(classes == c) if 0.0005 * total <= len(p) <= 0.08 * total]
    if small:
        out.reshape(-1)[small[int(rng.integers(len(small)))]] = 0
        return out
    labeled = np.flatnonzero(classes)
    if labeled.size:
        cy, cx = divmod(int(labeled[int(rng.integers(labeled.size))]), w)
        r = max(6, int(min(h, w) * rng.uniform(0.05, 0.1)))
        patch = Image.new("1", (w, h), 0)
        ImageDraw.Draw(patch).ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        out[np.asarray(patch, dtype=bool)] = 0
    return out


def _wrong_class(classes: np.ndarray, rng: np.random.Generator, n_labels: int) -> np.ndarray:
    """Give one sizeable region another of the task's classes."""
    out = classes.copy()
    if n_labels < 2:
        return out
    total = classes.size
    regions: list[tuple[int, np.ndarray]] = []
    for c in (int(v) for v in np.unique(classes) if v):
        regions += [(c, p) for p in _components(classes == c) if len(p) >= 0.002 * total]
    if regions:
        c, pixels = regions[int(rng.integers(len(regions)))]
        other = int(rng.integers(1, n_labels))  # 1..n-1, shifted past c below
        out.reshape(-1)[pixels] = other + (other >= c)
    return out


def _extra_blob(classes: np.ndarray, rng: np.random.Generator, n_labels: int) -> np.ndarray:
    """Paint a stray blob of some class over the background."""
    out = classes.copy()
    h, w = classes.shape
    free = np.flatnonzero(classes == 0)
    if free.size < 0.05 * classes.size:
        return out
    cy, cx = divmod(int(free[int(rng.integers(free.size))]), w)
    rx, ry = (max(5, int(min(h, w) * rng.uniform(0.04, 0.09))) for _ in range(2))
    blob = Image.new("1", (w, h), 0)
    ImageDraw.Draw(blob).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=1)
    out[np.asarray(blob, dtype=bool) & (classes == 0)] = int(rng.integers(1, n_labels + 1))
    return out


def _fix(
    previous: np.ndarray, reference: np.ndarray, rng: np.random.Generator, p_fix: float, pins: np.ndarray
) -> np.ndarray:
    """A rework: each wrong region is fixed with ``p_fix`` (more surely when a pin points at it)."""
    out = previous.copy()
    for pixels in _components(previous != reference):
        pinned = bool(pins.size) and bool(np.isin(pixels, pins).any())
        if rng.random() < (min(1.0, p_fix + 0.25) if pinned else p_fix):
            out.reshape(-1)[pixels] = reference.reshape(-1)[pixels]
    return out


def _pin_pixels(feedback: Any, size: tuple[int, int]) -> np.ndarray:
    """Flat indices of small squares around the auditor's pins (a person looks around a pin)."""
    w, h = size
    notes = feedback.get("notes") if isinstance(feedback, Mapping) else None
    out: list[np.ndarray] = []
    r = max(4, min(w, h) // 25)
    for note in notes or []:
        try:
            x, y = int(float(note["x"]) * w), int(float(note["y"]) * h)
        except (KeyError, TypeError, ValueError):
            continue
        ys, xs = np.mgrid[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)]
        out.append((ys * w + xs).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def render_answer_png(classes: np.ndarray, colors: Sequence[str], rng: np.random.Generator, antialias: float) -> bytes:
    """Paint classes as GT's canvas does: label colours, transparent background, soft edges.

    A share ``antialias`` of the edge pixels is mixed with the neighbouring class: between two
    labels the colour is blended; towards the background the alpha is partial.
    """
    lut = np.zeros((len(colors) + 1, 4), dtype=np.uint8)
    for i, c in enumerate(colors, start=1):
        lut[i] = (*hex_to_rgb(c), 255)
    rgba = lut[classes]
    if antialias > 0:
        # Only edge pixels change: work on their flat indices, not on whole-frame float arrays.
        edge, neighbour = _edge(classes)
        idx = np.flatnonzero(edge)
        idx = idx[rng.random(idx.size) < antialias]
        t = rng.uniform(0.12, 0.42, size=idx.size).astype(np.float32)
        own_class, other_class = classes.reshape(-1)[idx], neighbour.reshape(-1)[idx]
        own, other = lut[own_class].astype(np.float32), lut[other_class].astype(np.float32)
        both, to_bg, from_bg = (own_class > 0) & (other_class > 0), other_class == 0, own_class == 0
        own[both] = own[both] * (1 - t[both, None]) + other[both] * t[both, None]
        own[to_bg, 3] = 255 * (1 - t[to_bg])
        own[from_bg, :3] = other[from_bg, :3]
        own[from_bg, 3] = 255 * t[from_bg]
        rgba.reshape(-1, 4)[idx] = np.clip(np.rint(own), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG", compress_level=1)  # 12 MP mask: 0.33 s instead of 1.0 s
    return buf.getvalue()


# ---------------------------------------------------------------- the labeler


def _element_name(html: str) -> str:
    """The segmentation element's ``name`` in the rendered page (answers are keyed by it)."""
    m = _ELEMENT_NAME.search(html or "")
    return m.group(1) if m else SEGMENTATION_ELEMENT


def _central_blob(size: tuple[int, int]) -> np.ndarray:
    """Without a reference: an ellipse over the middle of the frame, class 1."""
    w, h = size
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).ellipse([w // 4, h // 4, w - w // 4, h - h // 4], fill=1)
    return np.asarray(im, dtype=np.uint8).copy()


class ScriptedLabeler:
    """A simulated labeler with a skill profile.

    Parameters
    ----------
    worker_id, sub
        The worker's identity (see :func:`worker_identity`).
    seed
        Fixes every random choice together with the task.
    profile
        ``"careful"``, ``"average"``, ``"sloppy"`` or a :class:`Profile`.
    references
        A folder or ``s3://`` prefix holding ``<image stem>.png`` reference masks (``samples/reference``).
    reference_labels
        The class names of the reference indices 1, 2, ...
    clock
        Returns "now" (UTC); defaults to the system clock. Simulated times start from it.
    """

    def __init__(
        self,
        worker_id: str,
        sub: str,
        seed: int,
        profile: Profile | str = "average",
        *,
        references: str | Path | References | None = None,
        reference_labels: Sequence[str] = DEFAULT_LABELS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.sub = sub
        self.seed = seed
        self.profile = _profile(profile)
        self.references = references if isinstance(references, References) else References(references, reference_labels)
        self._timeline = _Timeline(clock)

    def __repr__(self) -> str:
        return f"ScriptedLabeler({self.worker_id!r}, profile={self.profile.name!r})"

    def work(self, task: Task, s3: Any) -> Answer:
        """Do one labeling or rework task and return the answer (or a returned/abandoned task)."""
        if task.kind not in {"labeling", "rework"}:
            raise ValueError(f"a labeler cannot do a {task.kind!r} task")
        rng = _task_rng(self.seed, self.worker_id, task)
        p = self.profile
        roll = rng.random()
        if roll < p.p_return + p.p_abandon:
            status = "returned" if roll < p.p_return else "abandoned"
            return self._give_up(rng, status)
        ti = task.task_input
        image_uri = ti.get("taskObject") or task.data_object.get("source-ref")
        try:
            size = _displayed_size(get_bytes(s3, parse_s3_uri(image_uri)))
        except (ClientError, BotoCoreError, InvalidS3UriError, UnidentifiedImageError, OSError):
            return self._give_up(rng, "returned")  # the picture will not load: a person returns the task
        labels = _Labels.from_task_input(ti)
        reference = self.references.for_task(_stem(image_uri), s3, labels, size)
        initial = ti.get("initialValue") if isinstance(ti.get("initialValue"), Mapping) else None
        previous = self._previous(initial, labels, s3, size) if initial else None
        if previous is not None:
            classes = self._rework(previous, reference, rng, _pin_pixels(ti.get("feedback"), size))
        else:
            classes = self._label(reference, rng, labels, size)
        png = render_answer_png(classes, labels.colors, rng, p.antialias)
        present = {int(c) for c in np.unique(classes) if c}
        answer: dict[str, Any] = {
            "inputImageProperties": {"height": size[1], "width": size[0]},
            "labelMappings": {labels.names[i - 1]: {"color": labels.colors[i - 1]} for i in sorted(present)},
            "labeledImage": {"pngImageData": base64.b64encode(png).decode("ascii")},
        }
        if initial is not None:
            answer["initialValueModified"] = previous is None or not np.array_equal(classes, previous)
        active = self._active_seconds(rng, reference if reference is not None else classes, rework=previous is not None)
        accepted, submitted = self._timeline.book(rng, active, "submitted")
        return Answer("submitted", {_element_name(task.html): answer}, accepted, submitted, active)

    def _give_up(self, rng: np.random.Generator, status: str) -> Answer:
        active = round(float(rng.uniform(8.0, 90.0)), 1)
        accepted, _ = self._timeline.book(rng, active, status)
        return Answer(status, None, accepted, None, active)

    def _label(
        self, reference: np.ndarray | None, rng: np.random.Generator, labels: _Labels, size: tuple[int, int]
    ) -> np.ndarray:
        p = self.profile
        if reference is None:
            return _central_blob(size)
        classes = reference
        if rng.random() < p.p_wrong_class:
            classes = _wrong_class(classes, rng, len(labels.names))
        if rng.random() < p.p_miss:
            classes = _miss_region(classes, rng)
        if rng.random() < p.p_extra:
            classes = _extra_blob(classes, rng, len(labels.names))
        return _jitter(classes, rng, p.boundary_px, p.boundary_share)

    def _rework(
        self, previous: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator, pins: np.ndarray
    ) -> np.ndarray:
        if reference is None:
            return previous
        p = self.profile
        fixed = _fix(previous, reference, rng, p.rework_fix, pins)
        # Repainting disturbs the outline near what was repainted (half as much as labeling from
        # scratch); the rest of the previous mask is left exactly as it was.
        near = _dilate(fixed != previous, max(1, p.boundary_px))
        touched = _jitter(fixed, rng, max(1, p.boundary_px // 2), p.boundary_share / 2)
        return np.where(near, touched, fixed)

    def _previous(
        self, initial: Mapping[str, Any], labels: _Labels, s3: Any, size: tuple[int, int]
    ) -> np.ndarray | None:
        try:
            data = get_bytes(s3, parse_s3_uri(initial.get("src")))
        except (ClientError, BotoCoreError, InvalidS3UriError):
            return None
        colors: dict[str, int] = {}
        for name, value in (initial.get("labelMappings") or {}).items():
            if isinstance(value, Mapping) and labels.index(name):
                colors[str(value.get("color", "")).lower()] = labels.index(name)
        for i, c in enumerate(labels.colors, start=1):
            colors.setdefault(c.lower(), i)
        classes = _read_mask(data, colors)
        if (classes.shape[1], classes.shape[0]) != size:
            classes = np.asarray(Image.fromarray(classes).resize(size, Image.Resampling.NEAREST))
        return classes

    def _active_seconds(self, rng: np.random.Generator, classes: np.ndarray, *, rework: bool) -> float:
        """Simulated active time: more regions and more outline take longer; careful is slower."""
        step = -(-max(classes.shape) // _WORK_SIDE)  # the effort does not depend on the resolution
        classes = classes[::step, ::step]
        edge, _ = _edge(classes)
        outline = float(edge.sum()) / max(1, int(np.sqrt(classes.size)))  # outline length in frame widths
        regions = sum(min(8, len(_components(classes == c))) for c in np.unique(classes) if c)
        base = 45.0 + 14.0 * regions + 9.0 * outline
        seconds = base * self.profile.pace * float(rng.lognormal(0.0, 0.2))
        if rework:
            return round(float(np.clip(seconds * 0.45, 25.0, 240.0)), 1)
        return round(float(np.clip(seconds, 60.0, 400.0)), 1)


# ---------------------------------------------------------------- the auditor


@dataclass(frozen=True, slots=True)
class Problem:
    """One error region the auditor found: its reason code, size and a point inside it (pixels)."""

    code: str
    area: int
    x: float
    y: float
    label: str  # the class concerned ("" for boundary problems)


@dataclass(frozen=True, slots=True)
class Assessment:
    """A mask compared with its reference."""

    iou: float  # labeled-pixel IoU: same non-background class / labeled in either
    class_iou: dict[str, float]
    boundary_error: float  # wrong pixels outside region-level problems / labeled in either
    problems: tuple[Problem, ...] = field(default=())  # whole regions missing, wrong or extra
    boundary: tuple[Problem, ...] = field(default=())  # the largest remaining error regions
    size: tuple[int, int] = (0, 0)  # (width, height)

    def approved(self, threshold: float) -> bool:
        """No region-level problem and an IoU of at least ``threshold``."""
        return not self.problems and self.iou >= threshold


def assess(mask: np.ndarray, reference: np.ndarray, names: Sequence[str], *, min_fraction: float = 0.001) -> Assessment:
    """Compare a class-index mask with a reference in the same class indices.

    Parameters
    ----------
    mask, reference
        ``uint8`` arrays of the same shape: 0 background, i = ``names[i-1]``.
    names
        The class names.
    min_fraction
        Regions smaller than this share of the frame (and than 50 pixels) are never whole-region problems.

    Returns
    -------
    Assessment
        Whole regions missing, of the wrong class or extra become problems; what is left of the
        disagreement is the boundary error, reported as ``loose-boundary`` pins when it is large.
    """
    if mask.shape != reference.shape:
        raise ValueError(f"mask shape {mask.shape} differs from reference shape {reference.shape}")
    h, w = mask.shape
    min_area = max(50, int(min_fraction * h * w))
    labeled = (mask > 0) | (reference > 0)
    agree = (mask == reference) & (reference > 0)
    union = int(labeled.sum())
    iou = float(agree.sum()) / union if union else 1.0
    class_iou: dict[str, float] = {}
    for c in sorted({int(v) for v in np.unique(mask)} | {int(v) for v in np.unique(reference)} - {0}):
        if c == 0:
            continue
        a, b = mask == c, reference == c
        class_iou[names[c - 1]] = float((a & b).sum()) / max(1, int((a | b).sum()))
    flat_mask, flat_ref = mask.reshape(-1), reference.reshape(-1)
    problems: list[Problem] = []
    claimed = np.zeros(h * w, dtype=bool)
    # Reference regions the mask does not cover with their class: missing or wrong class.
    for c in (int(v) for v in np.unique(reference) if v):
        for pixels in _components(reference == c):
            if len(pixels) < min_area:
                continue
            got = flat_mask[pixels]
            if np.count_nonzero(got == c) >= 0.5 * len(pixels):
                continue
            wrong = pixels[got != c]
            others = got[got != c]
            code = "missing-object" if np.count_nonzero(others == 0) >= 0.5 * len(others) else "wrong-class"
            problems.append(Problem(code, len(wrong), *_inside_point(wrong, w), names[c - 1]))
            claimed[wrong] = True
    # Mask regions with little support in the reference: extra regions (or wrong class, if not yet seen).
    for c in (int(v) for v in np.unique(mask) if v):
        for pixels in _components(mask == c):
            if len(pixels) < min_area:
                continue
            truth = flat_ref[pixels]
            if np.count_nonzero(truth == c) >= 0.5 * len(pixels):
                continue
            wrong = pixels[(truth != c) & ~claimed[pixels]]
            if len(wrong) < min_area:
                continue
            code = "extra-region" if np.count_nonzero(flat_ref[wrong] == 0) >= 0.5 * len(wrong) else "wrong-class"
            problems.append(Problem(code, len(wrong), *_inside_point(wrong, w), names[c - 1]))
            claimed[wrong] = True
    rest = (flat_mask != flat_ref) & ~claimed
    boundary_error = float(rest.sum()) / union if union else 0.0
    boundary = [
        Problem("loose-boundary", len(pixels), *_inside_point(pixels, w), "")
        for pixels in _components(rest.reshape(h, w))[:3]
    ]
    return Assessment(round(iou, 4), class_iou, round(boundary_error, 4), tuple(problems), tuple(boundary), (w, h))


_TEXT = {
    "en": {
        "missing-object": "{label} not labeled here",
        "wrong-class": "wrong class here ({label})",
        "extra-region": "nothing to label here ({label} painted)",
        "loose-boundary": "boundary does not follow the object",
        "ok": "Looks good (IoU {iou:.2f}).",
        "summary": "IoU {iou:.2f} against what I see; {what}.",
        "none": "Nothing is labeled.",
    },
    "ja": {
        "missing-object": "ここの{label}が塗られていない",
        "wrong-class": "ここのクラスが違う ({label})",
        "extra-region": "ここは対象ではない ({label} で塗られている)",
        "loose-boundary": "境界が対象に沿っていない",
        "ok": "問題なし (IoU {iou:.2f})。",
        "summary": "IoU {iou:.2f}。{what}。",
        "none": "何も塗られていない。",
    },
}


class ScriptedAuditor:
    """A simulated auditor (検品) that compares the consolidated mask with the reference.

    Parameters
    ----------
    worker_id, sub, seed, references, reference_labels, clock
        As for :class:`ScriptedLabeler`.
    threshold
        The labeled-pixel IoU an approved mask must reach. Boundary errors (what is wrong outside
        whole missing, wrong or extra regions) over ``1 - threshold`` of the labeled area add the
        reason ``loose-boundary``.
    """

    def __init__(
        self,
        worker_id: str,
        sub: str,
        seed: int,
        *,
        references: str | Path | References | None = None,
        reference_labels: Sequence[str] = DEFAULT_LABELS,
        threshold: float = 0.85,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.sub = sub
        self.seed = seed
        self.threshold = threshold
        self.references = references if isinstance(references, References) else References(references, reference_labels)
        self._timeline = _Timeline(clock)

    def __repr__(self) -> str:
        return f"ScriptedAuditor({self.worker_id!r}, threshold={self.threshold})"

    def work(self, task: Task, s3: Any) -> Answer:
        """Audit one consolidated mask and return the audit template's answer."""
        if task.kind != "audit":
            raise ValueError(f"an auditor cannot do a {task.kind!r} task")
        rng = _task_rng(self.seed, self.worker_id, task)
        ti = task.task_input
        hand_over = task.data_object.get("gtaudit") or {}
        language = "ja" if ti.get("language") == "ja" else "en"
        labels, index_map = _Labels.from_legend(ti.get("legend") or [])
        try:
            data = get_bytes(s3, parse_s3_uri(ti.get("mask") or hand_over.get("mask")))
        except (ClientError, BotoCoreError, InvalidS3UriError):
            accepted, _ = self._timeline.book(rng, 10.0, "returned")
            return Answer("returned", None, accepted, None, 10.0)
        colors = {c.lower(): i for i, c in enumerate(labels.colors, start=1)}
        mask = _read_mask(data, colors, index_map)
        size = (mask.shape[1], mask.shape[0])
        original = ti.get("original") or hand_over.get("original") or task.data_object.get("source-ref")
        reference = self.references.for_task(_stem(original), s3, labels, size)
        content, n_problems = self._judge(mask, reference, labels, language)
        active = 15.0 + 6.0 * n_problems + (20.0 if content["reject"]["on"] else 0.0) + len(labels.names)
        active = round(float(np.clip(active * float(rng.lognormal(0.0, 0.25)), 15.0, 90.0)), 1)
        accepted, submitted = self._timeline.book(rng, active, "submitted")
        return Answer("submitted", content, accepted, submitted, active)

    def _judge(
        self, mask: np.ndarray, reference: np.ndarray | None, labels: _Labels, language: str
    ) -> tuple[dict[str, Any], int]:
        text = _TEXT[language]
        if reference is None:
            empty = not mask.any()
            codes = ["missing-object"] if empty else []
            return _audit_content(codes, text["none"] if empty else "", []), len(codes)
        result = assess(mask, reference, labels.names)
        if result.approved(self.threshold):
            return _audit_content([], text["ok"].format(iou=result.iou), []), 0
        problems = list(result.problems)
        if result.boundary_error > 1 - self.threshold or not problems:
            problems += result.boundary or [Problem("loose-boundary", 0, result.size[0] / 2, result.size[1] / 2, "")]
        codes = [r.code for r in REASONS if any(p.code == r.code for p in problems)]
        pins = sorted(problems, key=lambda p: p.area, reverse=True)[:3]
        w, h = result.size
        notes = [
            {
                "n": n,
                "x": round((p.x + 0.5) / w, 4),
                "y": round((p.y + 0.5) / h, 4),
                "text": text[p.code].format(label=p.label),
            }
            for n, p in enumerate(pins, start=1)
        ]
        what = ", ".join(dict.fromkeys(text[p.code].format(label=p.label) for p in problems)) or text["loose-boundary"]
        return _audit_content(codes, text["summary"].format(iou=result.iou, what=what), notes), len(problems)


def _audit_content(codes: Sequence[str], comment: str, notes: list[dict[str, Any]]) -> dict[str, Any]:
    """The audit template's answerContent: radio buttons, one checkbox per reason, comment, pins."""
    reject = bool(codes)
    content: dict[str, Any] = {"approve": {"on": not reject}, "reject": {"on": reject}}
    for r in REASONS:
        content[f"reason-{r.code}"] = {"on": r.code in codes}
    content["comment"] = comment
    content["region-notes"] = json.dumps(notes, ensure_ascii=False, separators=(",", ":"))
    return content


# ---------------------------------------------------------------- the demo crew


def default_crew(
    seed: int = 0,
    *,
    references: str | Path | None = None,
    reference_labels: Sequence[str] = DEFAULT_LABELS,
    clock: Callable[[], datetime] | None = None,
) -> tuple[list[ScriptedLabeler], list[ScriptedAuditor]]:
    """The default demo crew: labelers careful, average and sloppy (draw two per object) and one auditor.

    Parameters
    ----------
    seed
        Fixes identities and every answer.
    references
        Folder or ``s3://`` prefix of reference masks (``samples/reference``), shared by the crew.
    reference_labels, clock
        As for :class:`ScriptedLabeler`.

    Returns
    -------
    tuple
        ``(labelers, auditors)``.
    """
    shared = References(references, reference_labels)
    labelers = []
    for name in ("careful", "average", "sloppy"):
        worker_id, sub = worker_identity(seed, f"labeler-{name}")
        labelers.append(ScriptedLabeler(worker_id, sub, seed, name, references=shared, clock=clock))
    worker_id, sub = worker_identity(seed, "auditor-1")
    return labelers, [ScriptedAuditor(worker_id, sub, seed, references=shared, clock=clock)]
