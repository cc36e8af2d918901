"""Seats: the emulator's workers for a team, and the shared queue from which people pull tasks.

The emulator offers one object's task to the workers of the job's workteam one after another
(``Workforce.ask``: ``worker.work(task, s3) -> Answer``, blocking, one task at a time per worker)
until ``NumberOfHumanWorkersPerDataObject`` have answered. A team does not fit that as one worker
per person: people come and go, and nobody should wait for one colleague who went to lunch. So the
workteam gets *seats* instead, as many as tasks may be open at a time (:func:`make_seats`), and a
seat's task is done by whichever person may do it and asks first::

    Workforce.ask ─▶ Seat.work(task) ─▶ TeamQueue.serve: posts an Offer, waits
    person: claim_next ─▶ Claim on the oldest offer they may take, kept alive by heartbeats
            submit     ─▶ Answer("submitted", worker_id=<the person's>, sub=...)  ─▶ work() returns
            give_back  ─▶ Answer("returned", ...): the emulator offers the next seat
            tab closed (no heartbeat for ``heartbeat_timeout`` s) or signed out ─▶ back in the queue
    Seat.close / TeamQueue.close ─▶ Answer("abandoned")

Who may take an offer (:func:`why_not`): the person's role fits the task's kind (labeler:
labeling and rework; auditor: audit; a lead either, only when the roster says ``leads_work``); the
person has not already answered this object in this job (two labelers per object means two
seats asking in turn, and the second must be someone else), nor returned it (as in Ground Truth,
a returned task goes to someone else); and, for an audit, the person is not among the object's
labelers (``data_object["gtaudit"]["labelers"]``, Ground Truth worker IDs). Who answered or
returned what is kept in the :class:`~gtaudit_local.team.ledger.Ledger`, so a restart keeps it.

A person's queue, "n of m left" (:meth:`TeamQueue.counts`), covers the running jobs whose kind
the person's role may do (``jobs``, a callable the runtime gives). For one such job with ``T``
objects wanting ``k`` answers each, an object is *closed* to the person when they returned it or
labeled it (for an audit: known once one of its tasks was posted); *complete* when it has ``k``
answers, or as many objects as the job reports finished, if more; and *not for them* when it is
not complete but they answered, returned or labeled it. Then, summed over those jobs::

    m = T - closed                       the objects this person could take part in
    n = T - complete - not for them      those still needing an answer this person could give

So ``n`` falls as anyone's answers complete objects and as the person answers, and ``m`` only
when an object turns out to be closed to them. Objects skipped by the pre-annotation Lambda count
as complete once the job reports them finished.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gtaudit.exceptions import InvalidS3UriError
from gtaudit.manifest import GTAUDIT_KEY, OBJECT_ID_KEY
from gtaudit.s3uri import parse_s3_uri

from gtaudit_local.aws import REGION
from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.team.ledger import Ledger
from gtaudit_local.team.people import Person, Roster
from gtaudit_local.workers.base import Answer, Task

DEFAULT_HEARTBEAT_TIMEOUT = 120.0
"""Seconds without a heartbeat before a claim goes back to the queue. A task page beats every
``DEFAULT_HEARTBEAT_TIMEOUT / 6`` s; a browser may slow a hidden tab's timers to once a minute."""

ROLE_KINDS: dict[str, frozenset[str]] = {
    "labeler": frozenset({"labeling", "rework"}),
    "auditor": frozenset({"audit"}),
    "lead": frozenset(),
}


KEPT_TIMEOUT = 30.0  # seconds a submit waits for its answer to be written


class ClaimGone(Exception):
    """The claim is no longer open: submitted, returned, timed out, or its seat closed."""


class NotYourClaim(Exception):
    """The claim belongs to another person."""


def kinds_for(role: str, *, leads_work: bool) -> frozenset[str]:
    """The task kinds a role may do (a lead: all of them when ``leads_work``, else none)."""
    if role == "lead" and leads_work:
        return ROLE_KINDS["labeler"] | ROLE_KINDS["auditor"]
    return ROLE_KINDS.get(role, frozenset())


def labelers(data_object: Mapping[str, Any]) -> frozenset[str]:
    """The GT worker IDs that labeled an audit object (``gtaudit.labelers`` of its manifest line)."""
    info = data_object.get(GTAUDIT_KEY)
    found = info.get("labelers") if isinstance(info, dict) else None
    return frozenset(str(w) for w in found) if isinstance(found, list) else frozenset()


def image_name(line: Mapping[str, Any], fallback: str = "") -> str:
    """The name a person knows an object by: its original image's file name.

    The original is ``gtaudit.original`` (an audit line's ``source-ref`` is the overlay), else
    ``source-ref``; without either, the object ID, else ``fallback``.
    """
    info = line.get(GTAUDIT_KEY)
    for uri in (info.get("original") if isinstance(info, dict) else None, line.get("source-ref")):
        try:
            return parse_s3_uri(uri).name
        except InvalidS3UriError:
            continue
    return str(line.get(OBJECT_ID_KEY) or fallback)


@dataclass
class History:
    """What the queue knows of one object of one job: who answered, who returned it, who labeled it."""

    answered: set[str] = field(default_factory=set)
    returned: set[str] = field(default_factory=set)
    labelers: frozenset[str] = frozenset()


def why_not(person: Person, task: Task, history: History, *, leads_work: bool) -> str | None:
    """Why ``person`` may not take ``task`` (see the module docstring), or ``None`` when they may."""
    if task.kind not in kinds_for(person.role, leads_work=leads_work):
        return f"a {person.role} does not take {task.kind} tasks"
    if person.worker_id in history.answered:
        return "already answered this object"
    if person.worker_id in history.returned:
        return "returned this object"
    if task.kind == "audit" and person.worker_id in labelers(task.data_object):
        return "labeled this object"
    return None


@dataclass(frozen=True)
class JobSize:
    """A running job as the queue counts it: its kind, objects, answers wanted per object, objects finished."""

    name: str
    kind: str
    objects: int
    answers_per_object: int
    finished: int = 0


def running_jobs(records: Iterable[LabelingJobRun]) -> list[JobSize]:
    """The emulator's job records that are in progress, as :class:`JobSize` (``jobs`` of :class:`TeamQueue`)."""
    return [
        JobSize(
            job.name,
            job.kind,
            job.total,
            int(job.request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"]),
            job.finished,
        )
        for job in records
        if job.status == "InProgress"
    ]


@dataclass(frozen=True)
class QueueCount:
    """A person's queue: ``left`` of ``of`` (see the module docstring)."""

    left: int
    of: int


@dataclass(eq=False)
class Offer:
    """One seat's task, waiting in the queue until a person claims and answers it."""

    id: int
    task: Task
    seat: Seat
    posted: datetime
    claim: Claim | None = None
    answer: Answer | None = None
    # Set once the emulator kept the answer in its worker-response file (Seat.answer_kept).
    kept: threading.Event = field(default_factory=threading.Event)

    @property
    def image(self) -> str:
        return image_name(self.task.data_object, f"object {self.task.dataset_object_id}")


@dataclass(eq=False)
class Claim:
    """A person at work on an offer; ``seen`` is the queue's clock at the last heartbeat."""

    id: int
    person: Person
    offer: Offer
    since: datetime
    seen: float


@dataclass(frozen=True)
class Waiting:
    """An offer nobody has claimed, and who on the roster may take it (none: it waits for good)."""

    job: str
    kind: str
    image: str
    posted: datetime
    takers: tuple[str, ...]


class Seat:
    """A worker of the emulator's workteam that any eligible person of the team fills, task by task.

    Its own ``worker_id`` and ``sub`` name the seat, never a person: an answer carries the
    identity of the person who gave it (``Answer.worker_id``, ``Answer.sub``).
    """

    def __init__(self, queue: TeamQueue, number: int) -> None:
        self.queue = queue
        self.number = number
        self.worker_id = f"private.{REGION}.{number:016x}"
        self.sub = str(uuid.UUID(int=number))
        self.closed = False
        self.last: Offer | None = None  # the offer of the task this seat handed back last

    def work(self, task: Task, s3: Any) -> Answer:
        """Put ``task`` in the queue and wait until a person answers or returns it, or the seat closes."""
        return self.queue.serve(self, task)

    def answer_kept(self, task: Task) -> None:
        """The emulator wrote this seat's last answer to its worker-response file: the person may hear so."""
        offer = self.last
        if offer is not None and offer.task is task:
            offer.kept.set()

    def close(self) -> None:
        """Abandon this seat's waiting task and refuse later ones; safe from any thread, twice."""
        self.queue.close_seat(self)


def make_seats(queue: TeamQueue, n: int) -> list[Seat]:
    """``n`` seats on ``queue``: the workteam's workers, ``n`` tasks open at a time."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return [Seat(queue, i + 1) for i in range(n)]


def _now() -> datetime:
    return datetime.now(UTC)


class TeamQueue:
    """The offers of all seats of a team, and the claims people hold on them (thread-safe).

    Parameters
    ----------
    roster
        The team (roles, identities, ``leads_work``).
    jobs
        The running jobs, for the counts (:func:`running_jobs` of the emulator's records).
    heartbeat_timeout
        Seconds without a heartbeat before a claim goes back to the queue.
    ledger
        Where who-answered-what is kept across restarts (``None``: in memory only).
    clock
        Monotonic seconds for heartbeats (tests pass their own).
    await_kept
        Answer a submit only once the emulator kept the answer (``Seat.answer_kept``; the runtime's
        workforce calls it), at most ``KEPT_TIMEOUT`` seconds.
    """

    def __init__(
        self,
        roster: Roster,
        jobs: Callable[[], Iterable[JobSize]],
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.monotonic,
        await_kept: bool = False,
    ) -> None:
        self.roster = roster
        self.await_kept = await_kept
        self.jobs = jobs
        self.heartbeat_timeout = heartbeat_timeout
        self.ledger = ledger
        self.clock = clock
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._offers: dict[int, Offer] = {}  # in posting order: the oldest is offered first
        self._claims: dict[int, Claim] = {}
        self._history: dict[tuple[str, str], History] = {}
        self._closed = False
        for job, obj, worker_id, outcome in ledger.rows() if ledger is not None else ():
            history = self._object(job, obj)
            (history.answered if outcome == "submitted" else history.returned).add(worker_id)

    def _object(self, job: str, object_id: str) -> History:
        return self._history.setdefault((job, object_id), History())

    def _why_not(self, person: Person, offer: Offer) -> str | None:
        history = self._object(offer.task.job_name, offer.task.dataset_object_id)
        return why_not(person, offer.task, history, leads_work=self.roster.leads_work)

    def serve(self, seat: Seat, task: Task) -> Answer:
        """Post ``task`` for ``seat`` and block until it is answered, returned, or abandoned."""
        with self._cond:
            if self._closed or seat.closed:
                return Answer("abandoned", None, _now(), None, 0.0)
            offer = Offer(next(self._ids), task, seat, _now())
            self._object(task.job_name, task.dataset_object_id).labelers = labelers(task.data_object)
            self._offers[offer.id] = offer
            self._cond.wait_for(lambda: offer.answer is not None)
            del self._offers[offer.id]
            seat.last = offer
            assert offer.answer is not None
            return offer.answer

    def claim_next(self, person: Person) -> Claim | None:
        """The person's open claim, else a claim on the oldest offer they may take, else ``None``."""
        with self._cond:
            self._sweep()
            mine = self.current(person)
            if mine is not None:
                mine.seen = self.clock()  # "Continue": the person is back for it
            if mine is not None or self._closed:
                return mine
            for offer in self._offers.values():
                if offer.claim is None and offer.answer is None and self._why_not(person, offer) is None:
                    claim = Claim(next(self._ids), person, offer, _now(), self.clock())
                    offer.claim = self._claims[claim.id] = claim
                    return claim
            return None

    def current(self, person: Person) -> Claim | None:
        """The claim ``person`` holds, or ``None`` (only the task's own page keeps it alive: :meth:`heartbeat`)."""
        with self._cond:
            return next((c for c in self._claims.values() if c.person.worker_id == person.worker_id), None)

    def available(self, person: Person) -> bool:
        """Whether an offer is waiting that ``person`` may claim now."""
        with self._cond:
            self._sweep()
            return any(
                o.claim is None and o.answer is None and self._why_not(person, o) is None for o in self._offers.values()
            )

    def _own(self, person: Person, claim_id: int) -> Claim:
        claim = self._claims.get(claim_id)
        if claim is None:
            raise ClaimGone("this task is no longer yours to answer: it was answered, returned or timed out")
        if claim.person.worker_id != person.worker_id:
            raise NotYourClaim("another person holds this task")
        return claim

    def heartbeat(self, person: Person, claim_id: int) -> None:
        """The claim's page is still open.

        Raises
        ------
        ClaimGone, NotYourClaim
        """
        with self._cond:
            self._own(person, claim_id).seen = self.clock()

    def submit(self, person: Person, claim_id: int, content: dict[str, Any], active_seconds: float | None) -> Answer:
        """Answer a claim: its seat's ``work`` returns the answer, in the person's name.

        Raises
        ------
        ClaimGone, NotYourClaim
        """
        return self._end(person, claim_id, "submitted", content, active_seconds)

    def give_back(self, person: Person, claim_id: int, active_seconds: float | None) -> Answer:
        """Return a claim unanswered (Ground Truth's "Release task"): the emulator offers it to the next seat.

        Raises
        ------
        ClaimGone, NotYourClaim
        """
        return self._end(person, claim_id, "returned", None, active_seconds)

    def _end(
        self, person: Person, claim_id: int, status: str, content: dict[str, Any] | None, active: float | None
    ) -> Answer:
        with self._cond:
            claim = self._own(person, claim_id)
            offer, task = claim.offer, claim.offer.task
            history = self._object(task.job_name, task.dataset_object_id)
            (history.answered if status == "submitted" else history.returned).add(person.worker_id)
            now = _now()
            wall = (now - claim.since).total_seconds()
            seconds = wall if active is None else min(max(0.0, active), wall)
            answer = Answer(status, content, claim.since, now, seconds, worker_id=person.worker_id, sub=person.sub)
            self._settle(offer, answer)
        # The person hears "submitted" only once the answer is in its worker-response file: a kill
        # in between would otherwise lose an answer the ledger says was given, and the object
        # would never be offered to that person again.
        if status == "submitted" and self.await_kept:
            offer.kept.wait(timeout=KEPT_TIMEOUT)
        if self.ledger is not None:  # before the answer's reply leaves: a restart must know who gave it
            self.ledger.add(task.job_name, task.dataset_object_id, person.worker_id, status)
        return answer

    def _settle(self, offer: Offer, answer: Answer) -> None:
        """Give the offer its outcome and wake its seat (the lock is held)."""
        if offer.claim is not None:
            self._claims.pop(offer.claim.id, None)
        offer.claim, offer.answer = None, answer
        self._cond.notify_all()

    def _unclaim(self, claim: Claim) -> None:
        """Put a claimed offer back in the queue (the lock is held)."""
        self._claims.pop(claim.id, None)
        if claim.offer.claim is claim:
            claim.offer.claim = None

    def leave(self, person: Person) -> None:
        """The person signed out: what they held goes back to the queue."""
        with self._cond:
            for claim in [c for c in self._claims.values() if c.person.worker_id == person.worker_id]:
                self._unclaim(claim)

    def _sweep(self) -> None:
        """Put back the claims whose page stopped beating (the lock is held)."""
        limit = self.clock() - self.heartbeat_timeout
        for claim in [c for c in self._claims.values() if c.seen < limit]:
            self._unclaim(claim)

    def _abandon(self, offer: Offer) -> None:
        claim, now = offer.claim, _now()
        accepted = claim.since if claim is not None else offer.posted
        wall = (now - accepted).total_seconds()
        if claim is None:
            answer = Answer("abandoned", None, accepted, None, wall)
        else:
            answer = Answer("abandoned", None, accepted, None, wall, claim.person.worker_id, claim.person.sub)
        self._settle(offer, answer)

    def close_seat(self, seat: Seat) -> None:
        """Abandon ``seat``'s waiting task; the seat refuses later ones."""
        with self._cond:
            seat.closed = True
            for offer in [o for o in self._offers.values() if o.seat is seat and o.answer is None]:
                self._abandon(offer)

    def close(self) -> None:
        """Abandon every waiting task and refuse later ones (the project is stopping); safe twice."""
        with self._cond:
            self._closed = True
            for offer in [o for o in self._offers.values() if o.answer is None]:
                self._abandon(offer)

    def claims(self) -> list[Claim]:
        """The open claims, oldest first (who is working on what)."""
        with self._cond:
            self._sweep()
            return sorted(self._claims.values(), key=lambda c: c.since)

    def waiting(self) -> list[Waiting]:
        """The offers nobody holds, oldest first, each with who on the roster may take it."""
        people = self.roster.people
        with self._cond:
            self._sweep()
            return [
                Waiting(
                    offer.task.job_name,
                    offer.task.kind,
                    offer.image,
                    offer.posted,
                    tuple(p.name for p in people if self._why_not(p, offer) is None),
                )
                for offer in self._offers.values()
                if offer.claim is None and offer.answer is None
            ]

    def counts(self, person: Person) -> QueueCount:
        """``n of m left`` for ``person`` (defined in the module docstring)."""
        kinds = kinds_for(person.role, leads_work=self.roster.leads_work)
        jobs = [job for job in self.jobs() if job.kind in kinds]  # outside the lock: it may take the emulator's
        me = person.worker_id
        left = total = 0
        with self._cond:
            for job in jobs:
                want = max(1, job.answers_per_object)
                known = [h for (name, _), h in self._history.items() if name == job.name]
                closed = sum(1 for h in known if me in h.returned or me in h.labelers)
                complete = max(job.finished, sum(1 for h in known if len(h.answered) >= want))
                not_mine = sum(
                    1
                    for h in known
                    if len(h.answered) < want and (me in h.answered or me in h.returned or me in h.labelers)
                )
                total += max(0, job.objects - closed)
                left += max(0, job.objects - complete - not_mine)
        return QueueCount(min(left, total), total)
