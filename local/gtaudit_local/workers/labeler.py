"""The scripted labeler: skill profiles and :class:`ScriptedLabeler`.

A labeler starts from the reference mask and makes the mistakes its :class:`Profile` allows (see
:mod:`gtaudit_local.workers.painting`); in a rework it starts from the previous mask and fixes
wrong regions, more surely where the auditor pinned a note. Its active time grows with the number
of regions and the length of the outline, and a careful person is slower.

People err in a direction of their own, and the profiles say which (``edge_bias``): the
average labeler paints over the object's edge onto the background, the sloppy one falls short of
it, leaves regions out and now and then gives one a wrong class, the careful one strays a pixel
or two either way. That keeps their mistakes apart, which is what lets the consensus (the
per-pixel vote of the demo's three labelers per object) tell them apart: a pixel is voted wrong
only where two labelers err the same way at once, so each labeler's IoU against the vote measures
its own mistakes, in the order of its skill, as its IoU against a gold truth does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.labels import DEFAULT_LABELS
from gtaudit.s3io import get_bytes
from gtaudit.s3uri import parse_s3_uri
from PIL import Image, UnidentifiedImageError

from gtaudit_local.workers.base import Answer, Task
from gtaudit_local.workers.morphology import class_edge, components, dilate
from gtaudit_local.workers.painting import (
    WORK_SIDE,
    central_blob,
    extra_blob,
    fix,
    jitter,
    miss_region,
    render_answer_png,
    smooth_field,
    wrong_class,
)
from gtaudit_local.workers.references import References, TaskLabels, displayed_size, image_stem, read_mask
from gtaudit_local.workers.simulation import Timeline, task_rng

SEGMENTATION_ELEMENT = "crowd-semantic-segmentation"
_ELEMENT_NAME = re.compile(r"<crowd-semantic-segmentation\b[^>]*?\bname\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)


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
    # Which way its outline errs: > 0 only over the edge onto the background (that share of its other
    # outline errors is undone), < 0 only short of the edge (that share of its spills is undone), 0
    # both ways alike.
    edge_bias: float = 0.0


CAREFUL = Profile("careful", 2, 0.3, 0.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.97, 1.4)
AVERAGE = Profile("average", 8, 0.8, 0.05, 0.0, 0.15, 0.5, 0.0, 0.0, 0.85, 1.0, edge_bias=1.0)
SLOPPY = Profile("sloppy", 12, 0.9, 0.4, 0.1, 0.3, 0.7, 0.05, 0.03, 0.55, 0.6, edge_bias=-1.0)
PROFILES: dict[str, Profile] = {p.name: p for p in (CAREFUL, AVERAGE, SLOPPY)}


def _profile(value: Profile | str) -> Profile:
    if isinstance(value, Profile):
        return value
    try:
        return PROFILES[value]
    except KeyError:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {value!r}") from None


def _element_name(html: str) -> str:
    """The segmentation element's ``name`` in the rendered page (answers are keyed by it)."""
    m = _ELEMENT_NAME.search(html or "")
    return m.group(1) if m else SEGMENTATION_ELEMENT


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


class ScriptedLabeler:
    """A simulated labeler with a skill profile.

    Parameters
    ----------
    worker_id, sub
        The worker's identity (see :func:`~gtaudit_local.workers.simulation.worker_identity`).
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
        self._timeline = Timeline(clock)

    def __repr__(self) -> str:
        return f"ScriptedLabeler({self.worker_id!r}, profile={self.profile.name!r})"

    def work(self, task: Task, s3: Any) -> Answer:
        """Do one labeling or rework task and return the answer (or a returned/abandoned task)."""
        if task.kind not in {"labeling", "rework"}:
            raise ValueError(f"a labeler cannot do a {task.kind!r} task")
        rng = task_rng(self.seed, self.worker_id, task)
        p = self.profile
        roll = rng.random()
        if roll < p.p_return + p.p_abandon:
            status = "returned" if roll < p.p_return else "abandoned"
            return self._give_up(rng, status)
        ti = task.task_input
        image_uri = ti.get("taskObject") or task.data_object.get("source-ref")
        try:
            size = displayed_size(get_bytes(s3, parse_s3_uri(image_uri)))
        except (ClientError, BotoCoreError, InvalidS3UriError, UnidentifiedImageError, OSError):
            return self._give_up(rng, "returned")  # the picture will not load: a person returns the task
        labels = TaskLabels.from_task_input(ti)
        reference = self.references.for_task(image_stem(image_uri), s3, labels, size)
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
        self, reference: np.ndarray | None, rng: np.random.Generator, labels: TaskLabels, size: tuple[int, int]
    ) -> np.ndarray:
        p = self.profile
        if reference is None:
            return central_blob(size)
        classes = reference
        if rng.random() < p.p_wrong_class:
            classes = wrong_class(classes, rng, len(labels.names))
        if rng.random() < p.p_miss:
            classes = miss_region(classes, rng)
        if rng.random() < p.p_extra:
            classes = extra_blob(classes, rng, len(labels.names))
        painted = jitter(classes, rng, p.boundary_px, p.boundary_share)
        if p.edge_bias:
            changed = painted != classes
            kept = classes == 0 if p.edge_bias > 0 else painted == 0  # onto the background / left unpainted
            undone = changed & ~kept & (smooth_field(rng, size) <= abs(p.edge_bias))
            painted[undone] = classes[undone]
        return painted

    def _rework(
        self, previous: np.ndarray, reference: np.ndarray | None, rng: np.random.Generator, pins: np.ndarray
    ) -> np.ndarray:
        if reference is None:
            return previous
        p = self.profile
        fixed = fix(previous, reference, rng, p.rework_fix, pins)
        # Repainting disturbs the outline near what was repainted (half as much as labeling from
        # scratch); the rest of the previous mask is left exactly as it was.
        near = dilate(fixed != previous, max(1, p.boundary_px))
        touched = jitter(fixed, rng, max(1, p.boundary_px // 2), p.boundary_share / 2)
        return np.where(near, touched, fixed)

    def _previous(
        self, initial: Mapping[str, Any], labels: TaskLabels, s3: Any, size: tuple[int, int]
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
        classes = read_mask(data, colors)
        if (classes.shape[1], classes.shape[0]) != size:
            classes = np.asarray(Image.fromarray(classes).resize(size, Image.Resampling.NEAREST))
        return classes

    def _active_seconds(self, rng: np.random.Generator, classes: np.ndarray, *, rework: bool) -> float:
        """Simulated active time: more regions and more outline take longer; careful is slower."""
        step = -(-max(classes.shape) // WORK_SIDE)  # the effort does not depend on the resolution
        classes = classes[::step, ::step]
        edge, _ = class_edge(classes)
        outline = float(edge.sum()) / max(1, int(np.sqrt(classes.size)))  # outline length in frame widths
        regions = sum(min(8, len(components(classes == c))) for c in np.unique(classes) if c)
        base = 45.0 + 14.0 * regions + 9.0 * outline
        seconds = base * self.profile.pace * float(rng.lognormal(0.0, 0.2))
        if rework:
            return round(float(np.clip(seconds * 0.45, 25.0, 240.0)), 1)
        return round(float(np.clip(seconds, 60.0, 400.0)), 1)
