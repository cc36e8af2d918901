"""What the team tests share: a roster of two labelers, an auditor and a lead, and tasks as the emulator builds them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gtaudit_local.team.people import Person, Roster
from gtaudit_local.team.seats import Claim, JobSize, Seat, TeamQueue
from gtaudit_local.workers.base import Answer, Task

PEOPLE = (("Ana", "labeler"), ("Ben", "labeler"), ("Chloé", "auditor"), ("Dana", "lead"))


def roster(project: Path) -> Roster:
    """A project folder's roster with ``PEOPLE`` on it."""
    team = Roster(project)
    for name, role in PEOPLE:
        team.add(name, role)
    return team


def task(
    job: str,
    kind: str,
    object_id: str,
    *,
    labelers: list[str] | None = None,
    html: str = "<p>task</p>",
    grants: Callable[[str], bool] | None = None,
) -> Task:
    """A task as ``Workforce.ask`` builds it; an audit's line names its labelers as ``audit_line`` does."""
    data: dict[str, Any] = {"source-ref": f"s3://bkt/images/{object_id}.jpg"}
    if labelers is not None:
        data["source-ref"] = f"s3://bkt/jobs/{job}/overlays/{object_id}.jpg"
        data["gtaudit"] = {"original": f"s3://bkt/images/{object_id}.jpg", "labelers": labelers}
    return Task(job, kind, object_id, data, {}, html, 1, grants)


def jobs(*sizes: JobSize) -> Any:
    """A ``jobs`` callable for :class:`TeamQueue` that returns ``sizes``."""
    return lambda: list(sizes)


def ids(*people: Person) -> list[str]:
    return [p.worker_id for p in people]


class Working:
    """``seat.work(task)`` in a thread of its own, as the emulator's job threads call it; ``answer()`` joins it."""

    def __init__(self, seat: Seat, job_task: Task) -> None:
        self._answers: list[Answer] = []
        self._thread = threading.Thread(target=lambda: self._answers.append(seat.work(job_task, None)), daemon=True)
        self._thread.start()

    def answer(self, timeout: float = 30) -> Answer:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "seat.work() is still waiting"
        return self._answers[0]

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()


def open_offers(queue: TeamQueue) -> int:
    """How many offers are open in the queue, claimed or not."""
    return len(queue.waiting()) + len(queue.claims())


def wait_offers(queue: TeamQueue, n: int, timeout: float = 30) -> None:
    """Wait until ``n`` offers are open in the queue: the seats' threads have posted."""
    deadline = time.monotonic() + timeout
    while open_offers(queue) < n:
        assert time.monotonic() < deadline, f"{n} offers were not posted within {timeout} s"
        time.sleep(0.01)


def offer(queue: TeamQueue, job_task: Task, seat: Seat | None = None) -> Working:
    """``job_task`` worked by ``seat`` (a new one by default), once its offer is in the queue."""
    before = open_offers(queue)
    working = Working(seat or Seat(queue, before + 1), job_task)
    wait_offers(queue, before + 1)
    return working


def claim(queue: TeamQueue, person: Person) -> Claim:
    """The claim ``person`` gets on pressing Start (there must be one)."""
    found = queue.claim_next(person)
    assert found is not None, f"nothing for {person.name}"
    return found
