"""The scripted auditor (検品): :func:`assess` compares a mask with its reference, :class:`ScriptedAuditor` answers.

:func:`assess` sorts the disagreement into whole regions (a reference region the mask does not
cover with its class is missing or of the wrong class; a mask region with little support in the
reference is extra) and what is left, the boundary error. How much of that an auditor sees is its
:class:`Skill`, as people differ:

* each whole-region problem is **noticed** with the skill's ``notice`` chance (drawn per problem
  from the task's generator), and a noticed one is rejected with its reason code;
* the boundaries are judged against the skill's ``threshold``: a boundary error over
  ``1 - threshold`` of the labeled area is a ``loose-boundary`` (with nothing else wrong, that is
  a labeled-pixel IoU below the threshold); a keen eye also sees a narrow band along an outline
  (``band``): the error goes ``stray`` pixels deep from its edge, and a band at least ``band``
  of the image's longer side wide (and never one or two pixels) is a ``loose-boundary`` too,
  however small a share of the area it is;
* a mask in which it saw nothing wrong is still rejected with the ``false_reject`` chance, as a
  ``loose-boundary`` it imagines, pinned on the largest boundary difference it can find.

A reject answers the audit template with the reason codes, a short comment (English or Japanese,
as the task asks) and one to three pins on the largest of the problems it saw.

The auditor judges only the mask it is shown against its reference for the image, as a person
judges against the photo: it never reads what the pipeline knows about the object (a gold
object's truth, the defect seeded into it). That is what makes its catch rate a measurement.

======== ========= ===== ====== ============ ==============================================
skill    threshold band  notice false_reject who
======== ========= ===== ====== ============ ==============================================
exact    0.85      -     1.0    0.0          the default: :func:`assess` as it is (tests)
keen     0.85      1 %   0.95   0.04         the demo's careful auditor: slower, sees nearly
                                             every defect (``gtaudit.defects``' 1.5 % band)
lax      0.70      -     0.15   0.06         the demo's hurried auditor: passes most defects
======== ========= ===== ====== ============ ==============================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.labels import DEFAULT_LABELS
from gtaudit.reasons import REASONS
from gtaudit.s3io import get_bytes
from gtaudit.s3uri import parse_s3_uri
from scipy import ndimage

from gtaudit_local.workers.base import Answer, Task
from gtaudit_local.workers.morphology import components
from gtaudit_local.workers.references import References, TaskLabels, image_stem, read_mask
from gtaudit_local.workers.simulation import Timeline, task_rng


@dataclass(frozen=True, slots=True)
class Skill:
    """How an auditor judges: what it notices of a wrong mask, and how often it rejects a good one."""

    name: str
    threshold: float  # a boundary error over 1 - threshold of the labeled area is a loose boundary
    band: float  # so is a stray band this wide (share of the image's longer side); 0: it does not look
    notice: float  # chance to notice each whole-region problem (missing, wrong class, extra)
    false_reject: float  # chance to reject a mask in which it noticed nothing wrong
    pace: float  # multiplies the active time (a keen auditor looks longer)


EXACT = Skill("exact", 0.85, 0.0, 1.0, 0.0, 1.0)
KEEN = Skill("keen", 0.85, 0.01, 0.95, 0.04, 1.3)
LAX = Skill("lax", 0.70, 0.0, 0.15, 0.06, 0.6)
SKILLS: dict[str, Skill] = {s.name: s for s in (EXACT, KEEN, LAX)}


def _skill(value: Skill | str) -> Skill:
    if isinstance(value, str) and value not in SKILLS:
        raise ValueError(f"skill must be one of {sorted(SKILLS)}, got {value!r}")
    return SKILLS[value] if isinstance(value, str) else value


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
    stray: int = 0  # how deep the widest stray of that error goes: half its width, in pixels
    problems: tuple[Problem, ...] = field(default=())  # whole regions missing, wrong or extra
    boundary: tuple[Problem, ...] = field(default=())  # the largest remaining error regions
    size: tuple[int, int] = (0, 0)  # (width, height)


def _inside_point(pixels: np.ndarray, width: int) -> tuple[float, float]:
    """A point of the region nearest its centroid (the centroid of an arc can lie outside it)."""
    ys, xs = np.divmod(pixels, width)
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return float(xs[k]), float(ys[k])


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
        for pixels in components(reference == c):
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
        for pixels in components(mask == c):
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
    # Steps of a 4-neighbour erosion the error survives (the frame edge erodes nothing, as in
    # ``morphology.erode``): a band w pixels wide goes ceil(w / 2) deep.
    stray = int(ndimage.distance_transform_cdt(rest.reshape(h, w), metric="taxicab").max()) if rest.any() else 0
    boundary = [
        Problem("loose-boundary", len(pixels), *_inside_point(pixels, w), "")
        for pixels in components(rest.reshape(h, w))[:3]
    ]
    return Assessment(
        round(iou, 4), class_iou, round(boundary_error, 4), stray, tuple(problems), tuple(boundary), (w, h)
    )


_TEXT = {
    "en": {
        "missing-object": "{label} not labeled here",
        "wrong-class": "wrong class here ({label})",
        "extra-region": "nothing to label here ({label} painted)",
        "loose-boundary": "boundary does not follow the object",
        "ok": "Looks good (IoU {iou:.2f}).",
        "fine": "Looks good.",
        "summary": "IoU {iou:.2f} against what I see; {what}.",
        "none": "Nothing is labeled.",
    },
    "ja": {
        "missing-object": "ここの{label}が塗られていない",
        "wrong-class": "ここのクラスが違う ({label})",
        "extra-region": "ここは対象ではない ({label} で塗られている)",
        "loose-boundary": "境界が対象に沿っていない",
        "ok": "問題なし (IoU {iou:.2f})。",
        "fine": "問題なし。",
        "summary": "IoU {iou:.2f}。{what}。",
        "none": "何も塗られていない。",
    },
}


class ScriptedAuditor:
    """A simulated auditor (検品) that compares the consolidated mask with the reference.

    Parameters
    ----------
    worker_id, sub, seed, references, reference_labels, clock
        As for :class:`~gtaudit_local.workers.labeler.ScriptedLabeler`.
    skill
        ``"exact"`` (the default), ``"keen"``, ``"lax"`` or a :class:`Skill`.
    threshold
        Overrides the skill's ``threshold``: boundary errors (what is wrong outside whole missing,
        wrong or extra regions) over ``1 - threshold`` of the labeled area add the reason
        ``loose-boundary``.
    """

    def __init__(
        self,
        worker_id: str,
        sub: str,
        seed: int,
        *,
        skill: Skill | str = EXACT,
        references: str | Path | References | None = None,
        reference_labels: Sequence[str] = DEFAULT_LABELS,
        threshold: float | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.sub = sub
        self.seed = seed
        self.skill = _skill(skill) if threshold is None else replace(_skill(skill), threshold=threshold)
        self.references = references if isinstance(references, References) else References(references, reference_labels)
        self._timeline = Timeline(clock)

    @property
    def threshold(self) -> float:
        """The boundary threshold of the auditor's skill."""
        return self.skill.threshold

    def __repr__(self) -> str:
        return f"ScriptedAuditor({self.worker_id!r}, skill={self.skill.name!r}, threshold={self.threshold})"

    def work(self, task: Task, s3: Any) -> Answer:
        """Audit one consolidated mask and return the audit template's answer."""
        if task.kind != "audit":
            raise ValueError(f"an auditor cannot do a {task.kind!r} task")
        rng = task_rng(self.seed, self.worker_id, task)
        ti = task.task_input
        # What the page shows: the mask and the original. Nothing else of the hand-over is read (a
        # seeded object's line also says what was seeded; a person never sees that, nor does this).
        hand_over = task.data_object.get("gtaudit") or {}
        language = "ja" if ti.get("language") == "ja" else "en"
        labels, index_map = TaskLabels.from_legend(ti.get("legend") or [])
        try:
            data = get_bytes(s3, parse_s3_uri(ti.get("mask") or hand_over.get("mask")))
        except (ClientError, BotoCoreError, InvalidS3UriError):
            accepted, _ = self._timeline.book(rng, 10.0, "returned")
            return Answer("returned", None, accepted, None, 10.0)
        colors = {c.lower(): i for i, c in enumerate(labels.colors, start=1)}
        mask = read_mask(data, colors, index_map)
        size = (mask.shape[1], mask.shape[0])
        original = ti.get("original") or hand_over.get("original") or task.data_object.get("source-ref")
        reference = self.references.for_task(image_stem(original), s3, labels, size)
        content, n_problems = self._judge(mask, reference, labels, language, rng)
        active = 15.0 + 6.0 * n_problems + (20.0 if content["reject"]["on"] else 0.0) + len(labels.names)
        active *= self.skill.pace
        active = round(float(np.clip(active * float(rng.lognormal(0.0, 0.25)), 15.0, 90.0)), 1)
        accepted, submitted = self._timeline.book(rng, active, "submitted")
        return Answer("submitted", content, accepted, submitted, active)

    def _judge(
        self,
        mask: np.ndarray,
        reference: np.ndarray | None,
        labels: TaskLabels,
        language: str,
        rng: np.random.Generator,
    ) -> tuple[dict[str, Any], int]:
        text = _TEXT[language]
        if reference is None:
            empty = not mask.any()
            codes = ["missing-object"] if empty else []
            return _audit_content(codes, text["none"] if empty else "", []), len(codes)
        result = assess(mask, reference, labels.names)
        skill = self.skill
        # Each problem it could find is noticed, or not, by its own draw from the task's generator.
        problems = [
            p for p, draw in zip(result.problems, rng.random(len(result.problems)), strict=True) if draw < skill.notice
        ]
        # A band is seen when it goes deep enough, and never one or two pixels wide.
        seen = skill.band and result.stray >= max(2, math.ceil(skill.band * max(result.size) / 2))
        if seen or result.boundary_error > 1 - skill.threshold:
            problems += result.boundary or [_centre(result.size)]
        if not problems and rng.random() < skill.false_reject:
            # Nothing is wrong that it saw, yet it rejects: an edge that looks off to it.
            problems = [*result.boundary[:1]] or [_centre(result.size)]
        if not problems:  # the IoU would give away what it overlooked
            comment = text["fine"] if result.problems else text["ok"].format(iou=result.iou)
            return _audit_content([], comment, []), 0
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
        what = ", ".join(dict.fromkeys(text[p.code].format(label=p.label) for p in problems))
        return _audit_content(codes, text["summary"].format(iou=result.iou, what=what), notes), len(problems)


def _centre(size: tuple[int, int]) -> Problem:
    """A loose-boundary pin in the middle of the frame, when there is no boundary difference to point at."""
    return Problem("loose-boundary", 0, size[0] / 2, size[1] / 2, "")


def _audit_content(codes: Sequence[str], comment: str, notes: list[dict[str, Any]]) -> dict[str, Any]:
    """The audit template's answerContent: radio buttons, one checkbox per reason, comment, pins."""
    reject = bool(codes)
    content: dict[str, Any] = {"approve": {"on": not reject}, "reject": {"on": reject}}
    for r in REASONS:
        content[f"reason-{r.code}"] = {"on": r.code in codes}
    content["comment"] = comment
    content["region-notes"] = json.dumps(notes, ensure_ascii=False, separators=(",", ":"))
    return content
