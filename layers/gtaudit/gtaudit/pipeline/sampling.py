"""Which labeled objects go to the audit: everything, or a per-labeler sample plus low agreement.

Rule (``AuditPolicy=sample``):

* an object is audited if its labelers' agreement is below ``AgreementThreshold``;
* otherwise it is audited if ``u < rate``, where ``u`` is a deterministic draw in [0, 1) from a
  SHA-256 of ``run id : object id : round`` (the same run always samples the same objects, so a
  retried step writes the same manifests), and ``rate`` is the highest rate among its labelers;
* a labeler's rate is ``base + (1 - base) * min(1, max(2 q, s))``:

  - ``q`` is the labeler's rejection rate over the earlier audits of the run: a labeler with no
    rejections stays at the base rate, one rejected on half of their audited objects is audited
    on everything from the next round on;
  - ``s = (T - a) / (1 - T)`` when the labeler's accuracy ``a`` is below ``T``
    (``GoldAccuracyThreshold``), else 0; ``T = 1`` makes any ``a < 1`` count as ``s = 1``. At the
    threshold a labeler stays at the base rate; one whose error ``1 - a`` is twice the tolerated
    ``1 - T`` (IoU 0.6 under ``T = 0.8``) is audited on everything;
  - ``a`` is the labeler's **gold IoU** where the run has scored them on gold objects, else their
    **consensus IoU** (against the vote of the object's labelers, scored on objects with two or
    more usable masks), else unknown (``s = 0``). Both are micro averages over the run's labeling
    and rework jobs up to and including the one being decided: ``sum(inter) / sum(union)`` of
    the per-class pixel counts (``ClassScore.inter``, ``.union``) of every object the labeler
    painted, so a large object weighs more than a speck and an object both left empty counts
    for nothing. Each job keeps its own sums in the pipeline table (``labeler_scores``).

Objects not sampled are accepted without audit and recorded as ``not-audited``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gtaudit.models.stages import ConsolidatedLabel, WorkerScore


def draw(run_id: str, object_id: str, round_no: int) -> float:
    """A deterministic, uniform number in [0, 1) for one object in one round of one run."""
    digest = hashlib.sha256(f"{run_id}:{object_id}:{round_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def shortfall(accuracy: float | None, threshold: float) -> float:
    """``s``: how far an accuracy falls below the threshold, as a share of the tolerated error (see above)."""
    if accuracy is None or accuracy >= threshold:
        return 0.0
    if threshold >= 1.0:
        return 1.0
    return min(1.0, (threshold - accuracy) / (1.0 - threshold))


def labeler_rate(
    base: float, audited: int, rejected: int, accuracy: float | None = None, threshold: float = 0.8
) -> float:
    """A labeler's sample rate from their audit history and accuracy (see the module docstring)."""
    q = rejected / audited if audited > 0 else 0.0
    return min(1.0, base + (1.0 - base) * min(1.0, max(2.0 * q, shortfall(accuracy, threshold))))


@dataclass
class IoUSum:
    """One labeler's pixel sums against one kind of reference: ``inter / union`` is their micro IoU."""

    inter: int = 0
    union: int = 0
    objects: int = 0

    def add(self, score: WorkerScore) -> None:
        """Add one object's score."""
        self.inter += sum(c.inter for c in score.classes.values())
        self.union += sum(c.union for c in score.classes.values())
        self.objects += 1

    @property
    def iou(self) -> float | None:
        """The micro-averaged IoU, ``None`` before any labeled pixel."""
        return self.inter / self.union if self.union else None

    def dump(self) -> dict[str, int]:
        """The pipeline table's form."""
        return {"inter": self.inter, "union": self.union, "objects": self.objects}


@dataclass
class LabelerAccuracy:
    """Per-labeler IoU sums against the vote (``consensus``) and against gold truths (``gold``)."""

    consensus: dict[str, IoUSum] = field(default_factory=dict)
    gold: dict[str, IoUSum] = field(default_factory=dict)

    def add_label(self, label: ConsolidatedLabel) -> None:
        """Add the scores a consolidated label carries (``scores``, ``gold.scores``)."""
        for worker, score in (label.scores or {}).items():
            self.consensus.setdefault(worker, IoUSum()).add(score)
        for worker, score in (label.gold.scores if label.gold else {}).items():
            self.gold.setdefault(worker, IoUSum()).add(score)

    def accuracy(self, worker: str) -> float | None:
        """``a``: the gold IoU where there is one, else the consensus IoU, else ``None``."""
        gold = self.gold.get(worker)
        if gold is not None and gold.iou is not None:
            return gold.iou
        consensus = self.consensus.get(worker)
        return consensus.iou if consensus is not None else None

    def below(self, threshold: float) -> dict[str, float]:
        """``{worker: gold IoU}`` of the labelers whose gold IoU is below ``threshold``, in worker order."""
        return {w: s.iou for w, s in sorted(self.gold.items()) if s.iou is not None and s.iou < threshold}

    def dump(self) -> dict[str, dict[str, dict[str, int]]]:
        """A job item's ``labeler_scores``: ``{worker: {"consensus"|"gold": {"inter", "union", "objects"}}}``."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for kind, sums in (("consensus", self.consensus), ("gold", self.gold)):
            for worker, s in sums.items():
                out.setdefault(worker, {})[kind] = s.dump()
        return dict(sorted(out.items()))

    @classmethod
    def merge(cls, per_job: Iterable[Mapping[str, Mapping[str, Any]]]) -> LabelerAccuracy:
        """Sum ``dump()`` maps (one per job) and accuracies."""
        total = cls()
        for job in per_job:
            for worker, kinds in job.items():
                for kind, sums in ((k, getattr(total, k)) for k in ("consensus", "gold")):
                    got = kinds.get(kind) if isinstance(kinds, Mapping) else None
                    if isinstance(got, Mapping):
                        s = sums.setdefault(worker, IoUSum())
                        s.inter += int(got.get("inter", 0))
                        s.union += int(got.get("union", 0))
                        s.objects += int(got.get("objects", 0))
        return total


@dataclass
class LabelerStats:
    """Per-labeler audit counts: ``{worker: (audited, rejected)}``, summed over earlier audit jobs."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, worker: str, audited: int, rejected: int) -> None:
        """Add one job's counts of one labeler."""
        a, r = self.counts.get(worker, (0, 0))
        self.counts[worker] = (a + audited, r + rejected)

    @classmethod
    def merge(cls, per_job: Iterable[Mapping[str, Mapping[str, int]]]) -> LabelerStats:
        """Sum the ``{worker: {"audited", "rejected"}}`` maps that audit jobs recorded."""
        stats = cls()
        for job in per_job:
            for worker, c in job.items():
                stats.add(worker, int(c.get("audited", 0)), int(c.get("rejected", 0)))
        return stats


@dataclass(frozen=True)
class AuditPolicy:
    """The stack's audit policy for one run."""

    mode: str  # "all" | "sample"
    base_rate: float
    agreement_threshold: float
    run_id: str
    stats: LabelerStats = field(default_factory=LabelerStats)
    accuracy: LabelerAccuracy = field(default_factory=LabelerAccuracy)
    accuracy_threshold: float = 0.8

    def rate_for(self, labelers: Iterable[str]) -> float:
        """The sample rate of an object: the highest of its labelers' rates."""
        rates = [
            labeler_rate(
                self.base_rate,
                *self.stats.counts.get(w, (0, 0)),
                accuracy=self.accuracy.accuracy(w),
                threshold=self.accuracy_threshold,
            )
            for w in labelers
        ]
        return max(rates, default=self.base_rate)

    def decide(self, object_id: str, round_no: int, labelers: list[str], agreement: float | None) -> str | None:
        """Why the object is audited (``"policy-all"``, ``"low-agreement"``, ``"sampled"``), or ``None``."""
        if self.mode == "all":
            return "policy-all"
        if agreement is not None and agreement < self.agreement_threshold:
            return "low-agreement"
        if draw(self.run_id, object_id, round_no) < self.rate_for(labelers):
            return "sampled"
        return None
