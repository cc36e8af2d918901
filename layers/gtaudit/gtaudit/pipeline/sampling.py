"""Which labeled objects go to the audit: everything, or a per-labeler sample plus low agreement.

Rule (``AuditPolicy=sample``):

* an object is audited if its labelers' agreement is below ``AgreementThreshold``;
* otherwise it is audited if ``u < rate``, where ``u`` is a deterministic draw in [0, 1) from a
  SHA-256 of ``run id : object id : round`` (the same run always samples the same objects, so a
  retried step writes the same manifests), and ``rate`` is the highest rate among its labelers;
* a labeler's rate is ``base + (1 - base) * min(1, 2 q)``, with ``q`` the labeler's rejection rate
  over the earlier audits of the run: a labeler with no rejections stays at the base rate, one
  rejected on half of their audited objects is audited on everything from the next round on.

Objects not sampled are accepted without audit and recorded as ``not-audited``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def draw(run_id: str, object_id: str, round_no: int) -> float:
    """A deterministic, uniform number in [0, 1) for one object in one round of one run."""
    digest = hashlib.sha256(f"{run_id}:{object_id}:{round_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def labeler_rate(base: float, audited: int, rejected: int) -> float:
    """A labeler's sample rate from their audit history (see the module docstring)."""
    q = rejected / audited if audited > 0 else 0.0
    return min(1.0, base + (1.0 - base) * min(1.0, 2.0 * q))


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

    def rate_for(self, labelers: Iterable[str]) -> float:
        """The sample rate of an object: the highest of its labelers' rates."""
        rates = [labeler_rate(self.base_rate, *self.stats.counts.get(w, (0, 0))) for w in labelers]
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
