"""The demo crew: who is in it, and stable identities for a seed."""

from __future__ import annotations

import re
import uuid

from gtaudit_local.workers.base import Worker
from gtaudit_local.workers.crew import default_crew

WORKER_ID = re.compile(r"^private\.us-east-1\.[0-9a-f]{16}$")


def test_default_crew_has_three_labelers_one_sloppy_and_one_auditor() -> None:
    labelers, auditors = default_crew(42)
    assert [lab.profile.name for lab in labelers] == ["careful", "average", "sloppy"]
    assert len(auditors) == 1
    crew: list[Worker] = [*labelers, *auditors]
    ids = [w.worker_id for w in crew]
    assert len(set(ids)) == 4 and all(WORKER_ID.match(i) for i in ids)
    assert all(uuid.UUID(w.sub).version == 4 for w in crew)
    assert [w.worker_id for w in default_crew(42)[0]] == ids[:3]  # stable for a seed
    assert default_crew(43)[0][0].worker_id != ids[0]
