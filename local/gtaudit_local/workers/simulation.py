"""What makes a scripted worker deterministic: seeded identities, per-task randomness, simulated time.

An identity and every random draw come from a SHA-256 digest of the seed and what they concern
(the worker's name; or the worker, the job, the kind of task, the object and the iteration), so a
run can be repeated pixel for pixel. Times are simulated on a :class:`Timeline` per worker and
never slept.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from gtaudit.names import parse_job_name

from gtaudit_local.workers.base import Task

REGION = "us-east-1"  # the region in GT's private workforce worker ids


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


def worker_identity(seed: int, name: str) -> tuple[str, str]:
    """A stable ``(worker_id, sub)`` pair for a named worker: ``private.us-east-1.<16 hex>`` and a UUID."""
    worker_id = f"private.{REGION}.{_digest('worker', seed, name).hex()[:16]}"
    sub = str(uuid.UUID(bytes=_digest("sub", seed, name)[:16], version=4))
    return worker_id, sub


def task_rng(seed: int, worker_id: str, task: Task) -> np.random.Generator:
    """The generator for one worker on one task: the same inputs always draw the same numbers."""
    object_id = task.task_input.get("objectId") or task.data_object.get("object-id") or ""
    # The job's stage and round, not its name: a name carries the run's random ID, and the seed must
    # fix every answer of every run (the fault drills and the skill ordering rely on it).
    parts = parse_job_name(task.job_name)
    job = f"{parts.kind}-r{parts.round}" if parts is not None else task.job_name
    key = _digest(seed, worker_id, job, task.kind, task.dataset_object_id, object_id, task.iteration)
    return np.random.default_rng([int(v) for v in np.frombuffer(key, dtype=np.uint32)])


class Timeline:
    """A worker's simulated clock: tasks follow one another, starting no earlier than ``clock()``."""

    def __init__(self, clock: Callable[[], datetime] | None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._free_at: datetime | None = None

    def book(self, rng: np.random.Generator, active: float, status: str) -> tuple[datetime, datetime | None]:
        """Book one task of ``active`` seconds: ``(accepted_at, submitted_at or None)``."""
        now = self._clock()
        start = max(now, self._free_at) if self._free_at else now
        accepted = start + timedelta(seconds=float(rng.uniform(2.0, 30.0)))
        # Wall time: the active time plus pauses (reading, hesitating, a glance at another tab).
        wall = active * float(rng.uniform(1.05, 1.6)) + float(rng.uniform(0.0, 45.0))
        end = accepted + timedelta(seconds=wall)
        self._free_at = end
        return accepted, (end if status == "submitted" else None)
