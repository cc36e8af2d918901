"""Accuracy in the report: labelers against the consensus and the gold truth, auditors against seeded defects.

``gtaudit.quality`` scores one worker's mask of one object at consolidation; the trace table keeps
one ``score`` item per (job, object, worker) with the pixel counts behind each figure
(``class_iou``: ``{class: [inter, union]}``, ``confusion``: ``[[reference, painted, pixels]]``, and
the same against the gold truth under ``gold_*``). This module sums them over a report's items:

- **IoU, micro-averaged.** A labeler's (or a class's) IoU is the sum of ``inter`` over the sum of
  ``union``, over every scored object and, for the overall figure, every class: a large object
  weighs more than a speck, and an object the labeler painted badly cannot be averaged away by
  many easy ones. A pixel of class A painted as B counts in the unions of both A and B, so the
  overall figure is at most the per-object ``iou`` (which counts it once); it is the micro
  average of the per-class Jaccard index (scikit-learn's ``average="micro"``).
- **Confusion**: the off-diagonal pixels summed over the scores (each score keeps its largest 20
  cells, so a long tail of specks may be left out).
- **Auditors**, from their audit task items of seeded objects (``seeded``, ``seeded_outcome``
  written at ingest): a defect is ``caught`` (rejected with its reason code),
  ``caught-other-reason`` (rejected without it) or ``missed`` (approved); the clean truth
  (``none``) is ``passed`` or a ``false-reject``. An answer without a verdict counts as shown
  and nothing else. catch rate = caught / defects shown (a reject for another reason does not
  count: the auditor saw something, not the defect; ``detection_rate`` counts it), false-reject
  rate = false rejects / clean shown.
- **Agreement between auditors**: every pair of auditors who gave a verdict on the same object in
  the same audit job is one pair; an auditor's agreement is the share of their pairs with the
  same verdict (``None`` when never paired). Seeded objects count: they are audits like any
  other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from gtaudit.labels import BACKGROUND


def ratio(num: float, den: float) -> float | None:
    """``num / den`` to four places, ``None`` when ``den`` is zero (nothing to measure)."""
    return round(num / den, 4) if den else None


# The checks below run for every class and confusion cell of up to 100,000 items: exact type
# tests (``type(v) is int`` also refuses ``bool``) and unpacking in ``try`` are the fast ones.


def _pair(value: Any) -> tuple[int, int] | None:
    """An ``[inter, union]`` pixel pair as items store it; ``None`` for anything else."""
    try:
        inter, union = value
    except (TypeError, ValueError):
        return None
    if type(inter) is int and type(union) is int and inter >= 0 and union >= 0:
        return inter, union
    return None


def pair_iou(value: Any) -> float | None:
    """The IoU of one stored ``[inter, union]`` pair; ``None`` when malformed or empty."""
    pair = _pair(value)
    return ratio(*pair) if pair else None


@dataclass
class PixelSums:
    """``inter``/``union`` pixel sums over scores, overall and per class."""

    scores: int = 0  # score items added, including those with no labeled pixel at all
    inter: int = 0
    union: int = 0
    classes: dict[str, list[int]] = field(default_factory=dict)  # name -> [inter, union]

    def add(self, class_iou: Any) -> None:
        """Add one score's ``{class: [inter, union]}`` (malformed entries are skipped)."""
        self.scores += 1
        if not isinstance(class_iou, dict):
            return
        for name, value in class_iou.items():
            pair = _pair(value)
            if pair is None:
                continue
            inter, union = pair
            sums = self.classes.get(name)
            if sums is None:
                self.classes[name] = [inter, union]
            else:
                sums[0] += inter
                sums[1] += union
            self.inter += inter
            self.union += union

    def iou(self) -> float | None:
        """The micro-averaged IoU; ``1.0`` when scores exist but nobody labeled a pixel, ``None`` without scores."""
        if not self.scores:
            return None
        return ratio(self.inter, self.union) if self.union else 1.0

    def class_iou(self) -> dict[str, float | None]:
        """The micro-averaged IoU of each class, by class name."""
        return {name: ratio(i, u) for name, (i, u) in sorted(self.classes.items())}


def _add_confusion(into: dict[tuple[str, str], int], cells: Any) -> None:
    if type(cells) is not list:
        return
    for cell in cells:
        try:
            reference, painted, pixels = cell
        except (TypeError, ValueError):
            continue
        if type(pixels) is int and pixels > 0 and type(reference) is str and type(painted) is str:
            into[(reference, painted)] += pixels


def _confusion_rows(cells: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    ordered = sorted(cells.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"reference": r, "painted": p, "pixels": n} for (r, p), n in ordered if n]


@dataclass
class _Auditor:
    audits: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    defects: int = 0
    clean: int = 0
    pairs: int = 0
    agreeing: int = 0


_OUTCOME_FIELDS = (
    ("caught", "caught"),
    ("caught-other-reason", "caught_other_reason"),
    ("missed", "missed"),
    ("passed", "passed"),
    ("false-reject", "false_rejects"),
)


@dataclass
class QualityTally:
    """Scores and seeded audits, added item by item, read out as the report's accuracy fields."""

    consensus: dict[str, PixelSums] = field(default_factory=lambda: defaultdict(PixelSums))
    gold: dict[str, PixelSums] = field(default_factory=lambda: defaultdict(PixelSums))
    confusion: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    gold_confusion: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    auditors: dict[str, _Auditor] = field(default_factory=lambda: defaultdict(_Auditor))
    # (audit job, object) -> {auditor: verdict}
    verdicts: dict[tuple[str, str], dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def add_score(self, it: dict[str, Any]) -> None:
        """One ``score`` item: the worker against the consensus and/or the gold truth."""
        worker = str(it.get("worker_id") or "unknown")
        if it.get("iou") is not None or it.get("class_iou") is not None:
            self.consensus[worker].add(it.get("class_iou"))
            _add_confusion(self.confusion, it.get("confusion"))
        if it.get("gold_iou") is not None or it.get("gold_class_iou") is not None:
            self.gold[worker].add(it.get("gold_class_iou"))
            _add_confusion(self.gold_confusion, it.get("gold_confusion"))

    def add_audit(self, it: dict[str, Any], worker: str, job: str, obj: str) -> None:
        """One audit ``task`` item: counted for its auditor, seeded or not."""
        a = self.auditors[worker]
        a.audits += 1
        verdict = it.get("verdict")
        if verdict in ("approve", "reject"):
            self.verdicts[(job, obj)][worker] = str(verdict)
        seeded = it.get("seeded")
        if not isinstance(seeded, str):
            return
        if seeded == "none":
            a.clean += 1
        else:
            a.defects += 1
        outcome = it.get("seeded_outcome")
        if isinstance(outcome, str):
            a.outcomes[outcome] += 1

    def labeler_fields(self, worker: str) -> dict[str, Any]:
        """A worker row's accuracy fields (all ``None``/0 for a worker who was never scored)."""
        c, g = self.consensus.get(worker) or PixelSums(), self.gold.get(worker) or PixelSums()
        return {
            **_accuracy(c, g),
            "consensus_class_iou": c.class_iou(),
            "gold_class_iou": g.class_iou(),
        }

    def _pair_up(self) -> None:
        for votes in self.verdicts.values():
            for (a, va), (b, vb) in combinations(sorted(votes.items()), 2):
                for name in (a, b):
                    self.auditors[name].pairs += 1
                    self.auditors[name].agreeing += va == vb
        self.verdicts.clear()

    def auditor_rows(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """One row per worker with an audit task (only ``names`` when given), by worker ID."""
        self._pair_up()
        rows = []
        for name in sorted(self.auditors):
            if names is not None and name not in names:
                continue
            a = self.auditors[name]
            counts = {key: a.outcomes.get(outcome, 0) for outcome, key in _OUTCOME_FIELDS}
            rows.append(
                {
                    "worker_id": name,
                    "audits": a.audits,
                    "seeded_shown": a.defects + a.clean,
                    "defects_shown": a.defects,
                    "clean_shown": a.clean,
                    **counts,
                    "catch_rate": ratio(counts["caught"], a.defects),
                    "detection_rate": ratio(counts["caught"] + counts["caught_other_reason"], a.defects),
                    "false_reject_rate": ratio(counts["false_rejects"], a.clean),
                    "agreement_pairs": a.pairs,
                    "agreeing_pairs": a.agreeing,
                    "agreement": ratio(a.agreeing, a.pairs),
                }
            )
        return rows

    def class_rows(self) -> list[dict[str, Any]]:
        """Per class: agreement (every labeler against the consensus) and gold IoU, micro-averaged."""
        consensus, gold = _merged(self.consensus.values()).classes, _merged(self.gold.values()).classes
        rows = []
        for name in sorted(set(consensus) | set(gold)):
            ci, cu = consensus.get(name, (0, 0))
            gi, gu = gold.get(name, (0, 0))
            rows.append(
                {
                    "class": name,
                    "consensus_iou": ratio(ci, cu),
                    "consensus_inter": ci,
                    "consensus_union": cu,
                    "gold_iou": ratio(gi, gu),
                    "gold_inter": gi,
                    "gold_union": gu,
                }
            )
        return rows

    def confusion_rows(self, *, gold: bool = False) -> list[dict[str, Any]]:
        """The confusion cells, largest first: reference class, painted class, pixels."""
        return _confusion_rows(self.gold_confusion if gold else self.confusion)

    def totals(self) -> dict[str, Any]:
        """Accuracy over every scored worker, and the seeded audits over every auditor."""
        c, g = _merged(self.consensus.values()), _merged(self.gold.values())
        self._pair_up()
        auditors = list(self.auditors.values())
        defects = sum(a.defects for a in auditors)
        clean = sum(a.clean for a in auditors)
        caught = sum(a.outcomes.get("caught", 0) for a in auditors)
        false = sum(a.outcomes.get("false-reject", 0) for a in auditors)
        pairs = sum(a.pairs for a in auditors) // 2  # each pair was counted for both auditors
        agreeing = sum(a.agreeing for a in auditors) // 2
        return {
            **_accuracy(c, g),
            "seeded_shown": defects + clean,
            "seeded_caught": caught,
            "catch_rate": ratio(caught, defects),
            "false_reject_rate": ratio(false, clean),
            "auditor_agreement": ratio(agreeing, pairs),
        }


def _accuracy(consensus: PixelSums, gold: PixelSums) -> dict[str, Any]:
    return {
        "consensus_iou": consensus.iou(),
        "gold_iou": gold.iou(),
        "scored_objects": consensus.scores,
        "gold_objects": gold.scores,
    }


def _merged(sums: Iterable[PixelSums]) -> PixelSums:
    """The sums of several workers as one: every labeler's pixels together."""
    out = PixelSums()
    for s in sums:
        out.scores += s.scores
        out.inter += s.inter
        out.union += s.union
        for name, (i, u) in s.classes.items():
            acc = out.classes.setdefault(name, [0, 0])
            acc[0] += i
            acc[1] += u
    return out


def confusion_axes(rows: list[dict[str, Any]]) -> list[str]:
    """The class names of confusion cells in display order: ``BACKGROUND`` first, then by name."""
    names = {r["reference"] for r in rows} | {r["painted"] for r in rows}
    return sorted(names, key=lambda n: (n != BACKGROUND, n))


def object_scores(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each worker's IoU on one object, from that object's ``score`` items (``gtaudit trace``).

    One row per (job, worker) in job then worker order: the per-object ``consensus_iou`` and
    ``gold_iou`` as consolidation computed them, per class from the stored pixel counts, and
    the defect the audit was shown in place of the vote (``seeded``).
    """
    rows = []
    for it in items:
        if it.get("kind") != "score":
            continue
        classes: dict[str, dict[str, float | None]] = {}
        for key, side in (("class_iou", "consensus"), ("gold_class_iou", "gold")):
            stored = it.get(key)
            for name, pair in stored.items() if isinstance(stored, dict) else ():
                classes.setdefault(str(name), {"consensus": None, "gold": None})[side] = pair_iou(pair)
        rows.append(
            {
                "job": it.get("job"),
                "round": it.get("round"),
                "worker_id": it.get("worker_id"),
                "gold": bool(it.get("gold")),
                "consensus_iou": it.get("iou"),
                "gold_iou": it.get("gold_iou"),
                "classes": dict(sorted(classes.items())),
                "seeded": it.get("seeded"),
            }
        )
    return sorted(rows, key=lambda r: (str(r["job"]), str(r["worker_id"])))
