"""The demo's crew: three scripted labelers of different skill and one auditor, sharing references."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from gtaudit.labels import DEFAULT_LABELS

from gtaudit_local.workers.auditor import ScriptedAuditor
from gtaudit_local.workers.labeler import ScriptedLabeler
from gtaudit_local.workers.references import References
from gtaudit_local.workers.simulation import worker_identity


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
        As for :class:`~gtaudit_local.workers.labeler.ScriptedLabeler`.

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
