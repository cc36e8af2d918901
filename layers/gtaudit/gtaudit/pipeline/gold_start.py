"""Gold objects at a run's start: which the run takes, which test the auditors, where they go.

``start_run`` hands over the gold objects a lead supplied (``gtaudit.gold.GoldObject``) and the
run's own images; this module decides and writes the rest, deterministically from the run ID, so
a retried start writes the same keys with the same bytes:

* **Checked** (:func:`check_gold`): an image Ground Truth's segmentation tool takes (``.jpg``,
  ``.jpeg``, ``.png``), readable, a truth that is a 2-D class array of the run's labels at the
  size the image is *displayed* at (EXIF orientation applied). A bad one is refused with the
  reason; the run goes on without it.
* **How many** (:func:`gold_count`): ``G`` of the labeling job is gold, so ``G / (1 - G)`` times
  the run's objects, at least one when ``G > 0``, at most what there is; which ones, by a
  SHA-256 draw of ``run : name`` (another run of the same pool takes others first).
* **Seeded** (:func:`seeded_count`): ``S`` of the round-1 audit job is seeded, so ``S / (1 - S)``
  times the objects expected in it (all of the run's under ``AuditPolicy=all``, the base sample
  rate's share under ``sample``), at least one when ``S > 0``, at most the gold taken. Seeded
  objects are labeled like the others (the labelers are scored on them too); the audit is then
  shown a mask made from the truth (``gtaudit.defects``), the defects taken in the order of
  ``DEFECT_CYCLE`` (missing-object, wrong-class, loose-boundary, extra-region, none), the next
  one where a truth cannot show a defect (no object to remove, a single label).
* **Where**: each image beside the run's images in ``inputs/<run>/images/`` under its own file
  name (tagged ``-<4 hex>`` where one of the run's images has it), the truth and the shown mask
  under ``runs/<run>/gold/`` (``gtaudit.gold``), ``index.json`` last.
* **In the manifest**: each gold line (``source-ref`` + ``object-id``, like every other line) goes
  before the run's object at a position drawn from ``run : object id`` (:func:`mixed`), so
  gold is spread through the job, not appended to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from gtaudit.defects import make_defect
from gtaudit.exceptions import GtauditError
from gtaudit.gold import (
    DEFECT_CYCLE,
    Defect,
    GoldEntry,
    GoldIndex,
    GoldObject,
    shown_uri,
    truth_uri,
    write_index,
)
from gtaudit.labeling.masks import encode_mask
from gtaudit.labeling.post import MAX_IMAGE_BYTES
from gtaudit.labeling.pre import IMAGE_EXTENSIONS
from gtaudit.labels import BACKGROUND_COLOR, LabelSet
from gtaudit.names import name_candidates, stem_of
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.sampling import draw
from gtaudit.pipeline.start import content_type
from gtaudit.pipeline.start_audit import _size_problem
from gtaudit.s3io import put_bytes
from gtaudit.s3uri import S3Uri


@dataclass(frozen=True, slots=True, eq=False)
class ChosenGold:
    """A gold object the run takes: its file name in the images folder and, if seeded, what the audit sees."""

    obj: GoldObject
    file_name: str
    defect: Defect | None = None
    shown: np.ndarray | None = None


def check_gold(obj: GoldObject, n_labels: int) -> str | None:
    """Why a gold object cannot serve a run of ``n_labels`` labels, or ``None`` when it can."""
    suffix = PurePosixPath(obj.name).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        takes = ", ".join(IMAGE_EXTENSIONS)
        return f"image type {suffix or '(none)'!r}: Ground Truth's segmentation tool takes {takes}"
    if len(obj.image) > MAX_IMAGE_BYTES:
        return f"image too large: {len(obj.image)} bytes, the limit is {MAX_IMAGE_BYTES}"
    truth = obj.truth
    if not isinstance(truth, np.ndarray) or truth.ndim != 2 or truth.dtype != np.uint8:
        got = f"{truth.ndim}-D {truth.dtype}" if isinstance(truth, np.ndarray) else type(truth).__name__
        return f"mask: need a 2-D uint8 class array, got {got}"
    top = int(truth.max()) if truth.size else 0
    if top > n_labels:
        return f"mask: class index {top}, but the run has {n_labels} label{'' if n_labels == 1 else 's'}"
    try:
        return _size_problem(truth, obj.image)
    except (GtauditError, OSError, SyntaxError, ValueError) as exc:
        return f"image cannot be read: {exc}"


def sort_out(gold: Sequence[GoldObject], n_labels: int) -> tuple[list[GoldObject], list[dict[str, str]]]:
    """``(usable, refused)``: the objects that pass :func:`check_gold`, and ``{"name", "reason"}`` of the rest."""
    usable, refused = [], []
    for obj in gold:
        problem = check_gold(obj, n_labels)
        if problem:
            refused.append({"name": obj.name, "reason": problem})
        else:
            usable.append(obj)
    return usable, refused


def gold_count(objects: int, available: int, share: float) -> int:
    """Gold lines in a labeling job of ``objects`` of the run's own, so that ``share`` of it is gold."""
    if share <= 0 or available == 0 or objects == 0:
        return 0
    return min(available, max(1, round(share / (1 - share) * objects)))


def expected_audited(config: PipelineConfig, objects: int) -> float:
    """How many of the run's objects the round-1 audit is expected to hold."""
    return float(objects) if config.audit_policy == "all" else objects * config.sample_rate


def seeded_count(expected: float, gold: int, share: float) -> int:
    """Seeded objects, so that ``share`` of an audit of ``expected`` objects is seeded; at most ``gold``."""
    if share <= 0 or gold == 0 or expected <= 0:
        return 0
    return min(gold, max(1, round(share / (1 - share) * expected)))


def check_share(value: float, what: str) -> float:
    """``value`` if it is in [0, 1); else ``ValueError`` naming ``what``."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return value


def file_names(names: Sequence[str], taken: set[str]) -> list[str]:
    """File names for gold images in a folder where ``taken`` (case-folded) are the run's own.

    Each keeps its name; one that is taken (ignoring case, as a case-insensitive copy of the
    folder would) takes the first free of ``gtaudit.names.name_candidates``.
    """
    used = set(taken)
    out = []
    for name in names:
        suffix = PurePosixPath(name).suffix
        chosen = next(
            f"{stem}{suffix}"
            for stem in name_candidates(stem_of(name), f"gold:{name}")
            if f"{stem}{suffix}".casefold() not in used
        )
        used.add(chosen.casefold())
        out.append(chosen)
    return out


def _seeded(obj: GoldObject, turn: int, n_labels: int) -> tuple[Defect, np.ndarray]:
    """The defect of the ``turn``-th seeded object, the next in the cycle where its truth cannot show one."""
    for step in range(len(DEFECT_CYCLE)):
        defect = DEFECT_CYCLE[(turn + step) % len(DEFECT_CYCLE)]
        shown = make_defect(obj.truth, defect, n_labels)
        if shown is not None:
            return defect, shown
    raise AssertionError("the clean truth ('none') is always possible")  # pragma: no cover


def choose(
    run_id: str,
    gold: Sequence[GoldObject],
    *,
    count: int,
    seeded: int,
    n_labels: int,
    taken: set[str],
) -> list[ChosenGold]:
    """The ``count`` gold objects the run takes, the first ``seeded`` of them with their shown masks."""
    order = sorted(range(len(gold)), key=lambda i: draw(run_id, f"gold:{gold[i].name}", 1))[:count]
    picked = [gold[i] for i in order]
    names = file_names([g.name for g in picked], taken)
    out = []
    for turn, (obj, name) in enumerate(zip(picked, names, strict=True)):
        if turn < seeded:
            defect, shown = _seeded(obj, turn, n_labels)
            out.append(ChosenGold(obj, name, defect, shown))
        else:
            out.append(ChosenGold(obj, name))
    return out


def positions(run_id: str, object_ids: Sequence[str], objects: int) -> list[int]:
    """Where each gold line goes: before the run's ``i``-th line, ``i`` in ``0..objects`` (``objects``: last)."""
    return [min(objects, int(draw(run_id, f"gold-position:{oid}", 1) * (objects + 1))) for oid in object_ids]


def mixed[T](run_id: str, own: Sequence[tuple[T, str]], gold: Sequence[tuple[T, str]]) -> Iterator[tuple[T, str]]:
    """The labeling manifest's ``(image, object id)`` in order: the run's own, each gold one before
    the own one at its drawn position (:func:`positions`)."""
    before: dict[int, list[tuple[T, str]]] = {}
    for entry, at in zip(gold, positions(run_id, [oid for _, oid in gold], len(own)), strict=True):
        before.setdefault(at, []).append(entry)
    for i, entry in enumerate(own):
        yield from before.pop(i, [])
        yield entry
    yield from before.pop(len(own), [])


def write_gold(
    s3: Any,
    bucket: str,
    run_id: str,
    label_set: LabelSet,
    chosen: Sequence[ChosenGold],
    uris: Sequence[S3Uri],
    object_ids: Sequence[str],
) -> GoldIndex:
    """Write the images, truths and shown masks, then ``index.json``; return the index."""
    colors = [BACKGROUND_COLOR, *(lb.color for lb in label_set.labels)]
    entries = []
    for gold, uri, oid in zip(chosen, uris, object_ids, strict=True):
        put_bytes(s3, uri, gold.obj.image, content_type(uri.name))
        truth = truth_uri(bucket, run_id, oid)
        put_bytes(s3, truth, encode_mask(gold.obj.truth, colors), "image/png")
        shown = None
        if gold.shown is not None:
            shown = shown_uri(bucket, run_id, oid)
            put_bytes(s3, shown, encode_mask(gold.shown, colors), "image/png")
        entries.append(
            GoldEntry.model_validate(
                {
                    "source-ref": str(uri),
                    "object-id": oid,
                    "truth-ref": str(truth),
                    "role": "seeded" if gold.defect else "label-only",
                    "defect": gold.defect,
                    "shown-ref": str(shown) if shown else None,
                }
            )
        )
    index = GoldIndex(labels=label_set.names, entries=entries)
    write_index(s3, bucket, run_id, index)
    return index


def seeded_total(chosen: Sequence[ChosenGold]) -> int:
    """How many of the chosen are seeded."""
    return sum(g.defect is not None for g in chosen)
