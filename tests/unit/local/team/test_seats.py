"""Seats and the team queue: who may take which task, what an answer carries, and "n of m left"."""

from __future__ import annotations

from pathlib import Path

import pytest
from gtaudit_local.team.ledger import LEDGER_FILE, Ledger
from gtaudit_local.team.people import Person, Roster
from gtaudit_local.team.seats import (
    ClaimGone,
    History,
    JobSize,
    NotYourClaim,
    QueueCount,
    TeamQueue,
    image_name,
    make_seats,
    why_not,
)
from gtaudit_local.workers.base import Task
from team_support import claim, jobs, offer, roster, task

LABELING = JobSize("proj-r1-labeling", "labeling", 3, 2)
AUDIT = JobSize("proj-r1-audit", "audit", 2, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def team(tmp_path: Path) -> Roster:
    return roster(tmp_path)


def queue_of(team: Roster, *sizes: JobSize, clock: Clock | None = None, ledger: Ledger | None = None) -> TeamQueue:
    return TeamQueue(team, jobs(*sizes), heartbeat_timeout=60, clock=clock or Clock(), ledger=ledger)


def test_a_role_takes_only_its_kinds_of_task(team: Roster) -> None:
    ana, chloe, dana = team.person("Ana"), team.person("Chloé"), team.person("Dana")
    labeling, rework, audit = task("j", "labeling", "0"), task("j", "rework", "0"), task("j", "audit", "0", labelers=[])
    assert why_not(ana, labeling, History(), leads_work=False) is None
    assert why_not(ana, rework, History(), leads_work=False) is None
    assert why_not(ana, audit, History(), leads_work=False) == "a labeler does not take audit tasks"
    assert why_not(chloe, audit, History(), leads_work=False) is None
    assert why_not(chloe, labeling, History(), leads_work=False) is not None
    assert all(why_not(dana, t, History(), leads_work=False) is not None for t in (labeling, rework, audit))
    assert all(why_not(dana, t, History(), leads_work=True) is None for t in (labeling, rework, audit))


def test_nobody_audits_an_object_they_labeled(team: Roster) -> None:
    chloe, dana = team.person("Chloé"), team.person("Dana")
    audit = task("j", "audit", "0", labelers=[dana.worker_id, "private.us-east-1.0123456789abcdef"])
    assert why_not(dana, audit, History(), leads_work=True) == "labeled this object"
    assert why_not(chloe, audit, History(), leads_work=False) is None


def test_nobody_answers_one_object_twice_nor_takes_back_what_they_returned(team: Roster) -> None:
    ana = team.person("Ana")
    assert why_not(ana, task("j", "labeling", "0"), History(answered={ana.worker_id}), leads_work=False)
    assert why_not(ana, task("j", "labeling", "0"), History(returned={ana.worker_id}), leads_work=False)


def labeling(object_id: str) -> Task:
    return task(LABELING.name, "labeling", object_id)


def test_two_answers_per_object_come_from_two_people_in_their_own_names(team: Roster) -> None:
    queue = queue_of(team, LABELING)
    first, second = make_seats(queue, 2)
    ana, ben = team.person("Ana"), team.person("Ben")
    working = offer(queue, labeling("0"), first)
    mine = claim(queue, ana)
    assert queue.claim_next(ana) is mine  # one task at a time
    assert queue.claim_next(ben) is None  # the only task is Ana's now
    queue.submit(ana, mine.id, {"crowd-semantic-segmentation": {}}, 12.5)
    answer = working.answer()
    assert (answer.status, answer.worker_id, answer.sub) == ("submitted", ana.worker_id, ana.sub)
    assert answer.content == {"crowd-semantic-segmentation": {}} and answer.submitted_at is not None
    assert answer.active_seconds <= (answer.submitted_at - answer.accepted_at).total_seconds()
    working = offer(queue, labeling("0"), second)  # the emulator asks the next seat
    assert queue.claim_next(ana) is None
    queue.submit(ben, claim(queue, ben).id, {}, None)
    assert working.answer().worker_id == ben.worker_id


def test_a_person_cannot_answer_or_keep_alive_anothers_claim(team: Roster) -> None:
    queue = queue_of(team, LABELING)
    working = offer(queue, labeling("0"))
    ana, ben = team.person("Ana"), team.person("Ben")
    held = claim(queue, ana)
    with pytest.raises(NotYourClaim):
        queue.submit(ben, held.id, {}, None)
    with pytest.raises(NotYourClaim):
        queue.heartbeat(ben, held.id)
    with pytest.raises(ClaimGone):
        queue.submit(ana, held.id + 1000, {}, None)
    queue.submit(ana, held.id, {}, None)
    with pytest.raises(ClaimGone):  # answered once only
        queue.submit(ana, held.id, {}, None)
    assert working.answer().worker_id == ana.worker_id


def test_a_claim_without_heartbeat_goes_back_to_the_queue(team: Roster) -> None:
    clock = Clock()
    queue = queue_of(team, LABELING, clock=clock)
    working = offer(queue, labeling("0"))
    ana, ben = team.person("Ana"), team.person("Ben")
    held = claim(queue, ana)
    clock.now += 59
    queue.heartbeat(ana, held.id)
    clock.now += 59
    assert queue.claim_next(ben) is None  # the heartbeat kept it Ana's
    clock.now += 30
    assert queue.current(ana) is held  # her home page asks (it polls): that is no sign of the task's tab
    clock.now += 31  # Ana closed the tab
    taken = claim(queue, ben)
    assert taken.offer is held.offer
    with pytest.raises(ClaimGone):
        queue.submit(ana, held.id, {}, None)
    queue.submit(ben, taken.id, {}, None)
    assert working.answer().worker_id == ben.worker_id


def test_signing_out_puts_the_claim_back_and_returning_ends_the_seats_work(team: Roster) -> None:
    queue = queue_of(team, LABELING)
    working = offer(queue, labeling("0"))
    ana, ben = team.person("Ana"), team.person("Ben")
    claim(queue, ana)
    queue.leave(ana)
    assert working.waiting
    queue.give_back(ben, claim(queue, ben).id, 3.0)
    answer = working.answer()
    assert (answer.status, answer.content, answer.worker_id) == ("returned", None, ben.worker_id)
    working = offer(queue, labeling("0"))  # offered to the next seat
    assert queue.claim_next(ben) is None  # he returned it: someone else's now
    queue.submit(ana, claim(queue, ana).id, {}, None)
    assert working.answer().status == "submitted"


def test_closing_abandons_waiting_tasks_and_refuses_later_ones(team: Roster) -> None:
    queue = queue_of(team, LABELING)
    one, two = make_seats(queue, 2)
    first, second = offer(queue, labeling("0"), one), offer(queue, labeling("1"), two)
    ana = team.person("Ana")
    claim(queue, ana)
    one.close()
    closed = [first.answer()]
    assert second.waiting
    queue.close()
    closed.append(second.answer())
    assert [a.status for a in closed] == ["abandoned", "abandoned"]
    assert {a.worker_id for a in closed} == {ana.worker_id, None}  # the claimed one names its person
    assert two.work(labeling("2"), None).status == "abandoned"  # at once
    assert queue.claim_next(ana) is None


def test_an_auditor_is_never_offered_what_they_labeled_even_when_it_waits_first(team: Roster) -> None:
    team.set_leads_work(True)
    queue = queue_of(team, AUDIT)
    dana, chloe = team.person("Dana"), team.person("Chloé")
    own = offer(queue, task(AUDIT.name, "audit", "0", labelers=[dana.worker_id]))
    other = offer(queue, task(AUDIT.name, "audit", "1", labelers=["private.us-east-1.0123456789abcdef"]))
    held = claim(queue, dana)
    assert held.offer.task.dataset_object_id == "1"
    queue.submit(dana, held.id, {}, None)
    assert queue.claim_next(dana) is None
    assert [(w.image, w.takers) for w in queue.waiting()] == [("0.jpg", ("Chloé",))]
    queue.submit(chloe, claim(queue, chloe).id, {}, None)
    assert (own.answer().worker_id, other.answer().worker_id) == (chloe.worker_id, dana.worker_id)


def test_counts_follow_the_definition(team: Roster) -> None:
    queue = queue_of(team, LABELING, AUDIT)
    ana, ben, chloe, dana = (team.person(n) for n in ("Ana", "Ben", "Chloé", "Dana"))
    assert queue.counts(ana) == QueueCount(3, 3)  # the labeling job's three objects; the audit is not hers
    assert queue.counts(chloe) == QueueCount(2, 2)
    assert queue.counts(dana) == QueueCount(0, 0)  # a lead who does not work

    def answer(person: Person, object_id: str, *, give_back: bool = False) -> None:
        working = offer(queue, labeling(object_id))
        held = claim(queue, person)
        if give_back:
            queue.give_back(person, held.id, None)
        else:
            queue.submit(person, held.id, {}, None)
        working.answer()

    answer(ana, "0")
    assert (queue.counts(ana), queue.counts(ben)) == (QueueCount(2, 3), QueueCount(3, 3))
    answer(ben, "0")  # object 0 has its two answers
    assert (queue.counts(ana), queue.counts(ben)) == (QueueCount(2, 3), QueueCount(2, 3))
    answer(ana, "1", give_back=True)  # closed to Ana; still open for Ben
    assert (queue.counts(ana), queue.counts(ben)) == (QueueCount(1, 2), QueueCount(2, 3))


def test_counts_take_the_jobs_own_finished_count_and_known_labelers(team: Roster) -> None:
    team.set_leads_work(True)
    dana = team.person("Dana")
    queue = queue_of(team, JobSize(AUDIT.name, "audit", 4, 1, finished=1))
    assert queue.counts(dana) == QueueCount(3, 4)
    working = offer(queue, task(AUDIT.name, "audit", "2", labelers=[dana.worker_id]))
    assert queue.counts(dana) == QueueCount(2, 3)  # object 2 turned out to be hers to stay away from
    queue.close()
    working.answer()


def test_who_answered_what_survives_a_restart(tmp_path: Path) -> None:
    team = roster(tmp_path)
    ana, ben = team.person("Ana"), team.person("Ben")
    ledger = Ledger(tmp_path / LEDGER_FILE)
    queue = queue_of(team, LABELING, ledger=ledger)
    working = offer(queue, labeling("0"))
    queue.submit(ana, claim(queue, ana).id, {}, None)
    working.answer()
    ledger.close()
    restarted = queue_of(Roster(tmp_path), LABELING, ledger=Ledger(tmp_path / LEDGER_FILE))
    working = offer(restarted, labeling("0"))  # asked again after the restart
    assert restarted.claim_next(ana) is None
    assert restarted.counts(ana) == QueueCount(2, 3)
    restarted.submit(ben, claim(restarted, ben).id, {}, None)
    assert working.answer().worker_id == ben.worker_id


def test_an_image_is_named_after_its_original() -> None:
    assert image_name(task("j", "labeling", "cat").data_object) == "cat.jpg"
    assert image_name(task("j", "audit", "cat", labelers=[]).data_object) == "cat.jpg"  # not the overlay
    assert image_name({"object-id": "x-1"}) == "x-1"
    assert image_name({"source-ref": "not a uri"}, "object 3") == "object 3"
