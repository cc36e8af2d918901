"""The emulator's worker interface: what a worker is handed, what it gives back, what it must be.

The Ground Truth emulator (:mod:`gtaudit_local.groundtruth`) and every kind of worker (scripted,
or a person at a browser) import this module and nothing else of each other, so it depends on the
standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Task:
    """One task handed to one worker."""

    job_name: str
    kind: str  # "labeling" | "audit" | "rework"
    dataset_object_id: str
    data_object: dict[str, Any]
    task_input: dict[str, Any]
    html: str  # the rendered Liquid page
    iteration: int
    # Whether a ``/s3/...?...`` path and query is a link the emulator granted (a text on the page that
    # merely looks like one is not); None: no links to check.
    grants: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class Answer:
    """A worker's outcome: ``content`` is the answerContent when ``status`` is ``submitted``.

    ``worker_id`` and ``sub`` name the person who actually did the task when that is not the
    :class:`Worker` itself (a seat several people share); ``None`` means the Worker's own. They go
    into the worker-response entry and the WorkerActivity log entry.
    """

    status: str  # "submitted" | "returned" | "abandoned"
    content: dict[str, Any] | None
    accepted_at: datetime
    submitted_at: datetime | None
    active_seconds: float
    worker_id: str | None = None
    sub: str | None = None


class Worker(Protocol):
    """What the emulator needs of a worker."""

    worker_id: str  # e.g. "private.us-east-1.3f9c0a..."
    sub: str  # Cognito sub (uuid)

    def work(self, task: Task, s3: Any) -> Answer: ...
