"""The demo's crew: three scripted labelers and two auditors of different skill, sharing references.

The skills are set far enough apart that the report ranks the crew in their order on the demo's
12 sample images and its gold objects (``tests/integration/local/test_demo_quality.py``): labelers
careful > average > sloppy by IoU against the gold truth and against the consensus, auditors keen
> lax by the share of seeded defects they catch. Ground Truth hands object *i* of a job to the team
from member *i* mod team size, so with two labelers per object each labeler meets both others, and
with one auditor per object the two auditors take every other object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from gtaudit.labels import DEFAULT_LABELS

from gtaudit_local.workers.auditor import ScriptedAuditor
from gtaudit_local.workers.labeler import ScriptedLabeler
from gtaudit_local.workers.references import References
from gtaudit_local.workers.simulation import worker_identity

LABELER_PROFILES = ("careful", "average", "sloppy")  # best first
AUDITOR_SKILLS = ("keen", "lax")  # best first


def default_crew(
    seed: int = 0,
    *,
    references: str | Path | Sequence[str | Path] | None = None,
    reference_labels: Sequence[str] = DEFAULT_LABELS,
    clock: Callable[[], datetime] | None = None,
) -> tuple[list[ScriptedLabeler], list[ScriptedAuditor]]:
    """The default demo crew: labelers careful, average and sloppy, auditors keen and lax.

    Parameters
    ----------
    seed
        Fixes identities and every answer.
    references
        Folders or ``s3://`` prefixes of reference masks (``samples/reference``, and the gold
        masks for gold images), searched in order and shared by the crew.
    reference_labels, clock
        As for :class:`~gtaudit_local.workers.labeler.ScriptedLabeler`.

    Returns
    -------
    tuple
        ``(labelers, auditors)``, each best first.
    """
    shared = References(references, reference_labels)
    labelers = [
        ScriptedLabeler(*worker_identity(seed, f"labeler-{name}"), seed, name, references=shared, clock=clock)
        for name in LABELER_PROFILES
    ]
    auditors = [
        ScriptedAuditor(*worker_identity(seed, f"auditor-{name}"), seed, skill=name, references=shared, clock=clock)
        for name in AUDITOR_SKILLS
    ]
    return labelers, auditors
