"""Offering one object's task: the self-audit rule, answers kept across a restart, shutdown, identities."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gtaudit.pipeline.manifests import audit_line
from gtaudit_local.groundtruth.record import LabelingJobRun, ObjectRun
from gtaudit_local.groundtruth.workforce import Interrupted, Workforce
from gtaudit_local.workers.base import Answer, Task

TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/auditors"
T0 = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)


class Person:
    """A worker who submits every task, or behaves as ``then`` says."""

    def __init__(self, name: str, then: Any = None) -> None:
        self.worker_id = f"private.us-east-1.{name}"
        self.sub = f"sub-{name}"
        self.tasks: list[Task] = []
        self.then = then

    def work(self, task: Task, s3: Any) -> Answer:
        self.tasks.append(task)
        if self.then is not None:
            return self.then(task)
        return Answer("submitted", {"by": self.worker_id}, T0, T0 + timedelta(seconds=5), 4.0)


class Logs:
    """The CloudWatch Logs calls the WorkerActivity log makes."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def create_log_group(self, **kw: Any) -> None: ...

    def create_log_stream(self, **kw: Any) -> None: ...

    def put_log_events(self, **kw: Any) -> None:
        self.messages += [e["message"] for e in kw["logEvents"]]


def job(kind: str, want: int = 1) -> LabelingJobRun:
    req = {
        "LabelingJobName": f"gtaudit-{kind}-r1-x",
        "HumanTaskConfig": {"WorkteamArn": TEAM, "NumberOfHumanWorkersPerDataObject": want,
                            "TaskTimeLimitInSeconds": 600},
    }  # fmt: skip
    j = LabelingJobRun(request=req, arn="arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x", created=0.0)
    j.kind = kind
    return j


def audited_object(labelers: list[str], index: int = 0) -> ObjectRun:
    line = audit_line(object_id="cat-1", round_no=1, original="s3://b/cat.jpg", mask="s3://b/m.png",
                      overlay="s3://b/o.jpg", color_map={}, labelers=labelers, agreement=1.0,
                      labeling_job="gtaudit-labeling-r1-x")  # fmt: skip
    return ObjectRun(index, line)


def workforce(team: list[Any], *, logs: Any = None, closing: threading.Event | None = None) -> Workforce:
    return Workforce(None, logs, {TEAM: team}, max_reoffers=3, closing=closing)


def test_an_audit_is_never_offered_to_the_objects_labelers() -> None:
    a, b, c = Person("a"), Person("b"), Person("c")
    for index in range(3):  # whichever worker the object's index starts at
        obj = audited_object([a.worker_id, b.worker_id], index)
        workforce([a, b, c]).ask(job("audit"), obj, "<p>")
        assert [x["workerId"] for x in obj.answers] == [c.worker_id] and obj.failure is None
    assert a.tasks == [] and b.tasks == [] and len(c.tasks) == 3


def test_an_audit_fails_when_no_one_but_its_labelers_is_in_the_team() -> None:
    a, b = Person("a"), Person("b")
    obj = audited_object([a.worker_id, b.worker_id])
    workforce([a, b]).ask(job("audit", want=2), obj, "<p>")
    assert a.tasks == [] and b.tasks == [] and obj.answers == []
    assert obj.failure is not None and "no auditor other than its labelers" in obj.failure
    assert a.worker_id in obj.failure and b.worker_id in obj.failure


def test_the_labelers_of_a_line_bar_no_one_outside_an_audit_job() -> None:
    a = Person("a")
    obj = audited_object([a.worker_id])
    workforce([a]).ask(job("rework"), obj, "<p>")
    assert [x["workerId"] for x in obj.answers] == [a.worker_id]


def test_answers_given_before_a_restart_are_kept_and_their_workers_not_asked_again() -> None:
    a, b, c = Person("a"), Person("b"), Person("c")
    obj = ObjectRun(0, {"source-ref": "s3://b/cat.jpg"})
    earlier = {"workerId": a.worker_id, "answerContent": {"by": "a, before the restart"}}
    obj.answers.append(earlier)
    saved: list[list[str]] = []
    workforce([a, b, c]).ask(job("labeling", want=3), obj, "<p>",
                             on_answer=lambda: saved.append([x["workerId"] for x in obj.answers]))  # fmt: skip
    assert a.tasks == [] and len(b.tasks) == len(c.tasks) == 1
    assert obj.answers[0] is earlier and len(obj.answers) == 3
    # Told of each answer as it came, with every answer so far: the runner writes the file each time.
    assert saved == [[a.worker_id, b.worker_id], [a.worker_id, b.worker_id, c.worker_id]]


def test_an_object_with_enough_answers_is_offered_to_no_one() -> None:
    a = Person("a")
    obj = ObjectRun(0, {"source-ref": "s3://b/cat.jpg"}, answers=[{"workerId": "w", "answerContent": {}}])
    workforce([a]).ask(job("labeling"), obj, "<p>")
    assert a.tasks == [] and obj.failure is None and len(obj.answers) == 1


def test_a_task_released_by_the_shutdown_goes_back_to_the_queue() -> None:
    closing = threading.Event()
    logs = Logs()

    def released(task: Task) -> Answer:
        closing.set()  # the emulator began shutting down while the person had the task open
        return Answer("abandoned", None, T0, None, 1.0)

    a, b = Person("a", then=released), Person("b")
    obj = ObjectRun(0, {"source-ref": "s3://b/cat.jpg"})
    with pytest.raises(Interrupted):
        workforce([a, b], logs=logs, closing=closing).ask(job("labeling", want=2), obj, "<p>")
    assert b.tasks == []  # nothing offered once closing
    assert obj.failure is None and obj.answers == [] and obj.retries == 0
    assert logs.messages == []  # not declined by the person: nothing in WorkerActivity


def test_an_answer_names_the_person_who_did_the_task() -> None:
    logs = Logs()
    person7 = Answer("submitted", {"x": 1}, T0, T0 + timedelta(seconds=3), 2.0,
                     worker_id="private.us-east-1.person7", sub="sub-person7")  # fmt: skip
    seat = Person("seat", then=lambda task: person7)
    plain = Person("plain")
    obj = ObjectRun(0, {"source-ref": "s3://b/cat.jpg"})
    workforce([seat, plain], logs=logs).ask(job("labeling", want=2), obj, "<p>")
    by_seat, by_plain = obj.answers
    assert by_seat["workerId"] == "private.us-east-1.person7"
    assert by_seat["workerMetadata"]["identityData"]["sub"] == "sub-person7"
    assert by_plain["workerId"] == plain.worker_id
    assert by_plain["workerMetadata"]["identityData"]["sub"] == plain.sub
    assert '"worker_id": "private.us-east-1.person7"' in logs.messages[0]
    assert '"cognito_sub_id": "sub-person7"' in logs.messages[0]
    assert f'"worker_id": "{plain.worker_id}"' in logs.messages[1]
