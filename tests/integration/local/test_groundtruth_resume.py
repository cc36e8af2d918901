"""The GT emulator stopped mid-job and started again on the same records and the same bucket.

One runtime provides moto, the local Lambda service and the dispatcher (the test project of
``gt_project``); each test drives emulators of its own on it: ``first`` is stopped in some phase,
``second`` is made on the same ``state_path``, ``resume()`` runs, and the job must end as if
nothing had happened: every answer once, no worker asked twice, one consolidation request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gt_project import TEAM, job_request, make_project, seed
from gtaudit_local.groundtruth.emulator import GroundTruthEmulator
from gtaudit_local.lambdas import LambdaInvokeError
from gtaudit_local.runtime import LocalRuntime
from gtaudit_local.workers.base import Answer, Task

pytestmark = pytest.mark.xdist_group("local-runtime-gt-resume")

T0 = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)


class Gate:
    """Lets ``limit`` answers through, then holds every task until released (and the task is abandoned)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.given = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def passes(self) -> bool:
        with self._lock:
            if self.limit is None or self.given < self.limit:
                self.given += 1
                return True
        self.holding.set()
        assert self.release.wait(60), "the test never released the gate"
        return False


class Person:
    """Submits the task's object id, unless the gate holds the task; logs every task it was given."""

    def __init__(self, n: int, log: list[tuple[str, str, str]], gate: Gate) -> None:
        self.worker_id = f"private.us-east-1.person{n}"
        self.sub = f"00000000-0000-0000-0000-00000000000{n}"
        self.log = log
        self.gate = gate

    def work(self, task: Task, s3: Any) -> Answer:
        oid = task.task_input["objectId"]
        if not self.gate.passes():
            self.log.append((self.worker_id, oid, "released"))
            return Answer("abandoned", None, T0, None, 1.0)
        self.log.append((self.worker_id, oid, "submitted"))
        return Answer("submitted", {"answer": {"id": oid}}, T0, T0 + timedelta(seconds=30), 25.0)


class Events:
    """The EventBridge client, recording what the emulator publishes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.published: list[tuple[str, str]] = []

    def put_events(self, **kw: Any) -> Any:
        for e in kw["Entries"]:
            self.published.append((e["Resources"][0].rsplit("/", 1)[1], json.loads(e["Detail"])["LabelingJobStatus"]))
        return self.inner.put_events(**kw)


class DyingConsolidation:
    """The Lambda service, where the process dies right after the consolidation Lambda ran once."""

    def __init__(self, inner: Any, post_arn: str, die: GroundTruthEmulator | None = None) -> None:
        self.inner = inner
        self.post_arn = post_arn
        self.die = die
        self.post_calls: list[str] = []

    def exists(self, ref: str) -> bool:
        return bool(self.inner.exists(ref))

    def invoke(self, ref: str, event: Any, **kw: Any) -> Any:
        out = self.inner.invoke(ref, event, **kw)
        if ref == self.post_arn:
            self.post_calls.append(event["payload"]["s3Uri"])
            if self.die is not None:
                self.die.interrupt()  # gone before the response was read
                raise LambdaInvokeError(ref, "Runtime.ExitError", "the process died")
        return out


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    tmp = tmp_path_factory.mktemp("gt-resume")
    with LocalRuntime(make_project(tmp / "proj"), work_dir=tmp / "work", workteams={TEAM: []}) as runtime:
        yield runtime


def emulator(rt: LocalRuntime, state: Path, people: list[Person], lambdas: Any = None) -> GroundTruthEmulator:
    gt = GroundTruthEmulator(
        s3=rt.clients["s3"],
        events=Events(rt.clients["events"]),
        logs=rt.clients["logs"],
        lambdas=lambdas or rt.lambdas,
        workteams={TEAM: people},
        state_path=state,
    )
    return gt.start()


def create(rt: LocalRuntime, gt: GroundTruthEmulator, name: str, ids: list[str], **over: Any) -> None:
    seed(rt, ids)
    s3 = rt.client("s3")
    body = s3.get_object(Bucket=rt.bucket, Key="in/input.manifest")["Body"].read()
    s3.put_object(Bucket=rt.bucket, Key=f"in/{name}.manifest", Body=body)  # its own: other tests seed too
    manifest = f"s3://{rt.bucket}/in/{name}.manifest"
    gt.create_labeling_job(job_request(rt, name, **{"InputConfig.DataSource.S3DataSource.ManifestS3Uri": manifest},
                                       **over))  # fmt: skip


def ended(gt: GroundTruthEmulator, name: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gt.jobs[name].ended and not gt.busy:
            return gt.jobs[name].status
        time.sleep(0.05)
    raise AssertionError(f"{name} did not end within {timeout} s: {gt.jobs[name].status}, {gt.jobs[name].phase}")


def kill(gt: GroundTruthEmulator, gate: Gate) -> None:
    """What the runtime does on shutdown: interrupt, release the workers, stop."""
    gt.interrupt()
    gate.release.set()
    gt.stop()


def keys(rt: LocalRuntime, prefix: str) -> list[str]:
    listed = rt.client("s3").list_objects_v2(Bucket=rt.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def read(rt: LocalRuntime, key: str) -> Any:
    return json.loads(rt.client("s3").get_object(Bucket=rt.bucket, Key=key)["Body"].read())


def output_lines(rt: LocalRuntime, name: str) -> list[dict[str, Any]]:
    body = rt.client("s3").get_object(Bucket=rt.bucket, Key=f"out/{name}/manifests/output/output.manifest")["Body"]
    return [json.loads(x) for x in body.read().decode().splitlines()]


def test_a_job_stopped_mid_annotation_resumes_and_completes_with_every_answer_once(
    rt: LocalRuntime, tmp_path: Path
) -> None:
    name, ids = "resume-annotating", ["a", "b", "c", "d"]
    state = tmp_path / "state" / "groundtruth.sqlite"
    log: list[tuple[str, str, str]] = []
    gate = Gate(limit=3)
    people = [Person(n, log, gate) for n in (1, 2, 3)]
    first = emulator(rt, state, people)
    create(rt, first, name, ids)
    assert gate.holding.wait(60)
    kill(first, gate)
    assert first.jobs[name].status == "InProgress"
    responses = f"out/{name}/annotations/worker-response/iteration-1/"
    before = {k: read(rt, k)["answers"] for k in keys(rt, responses)}
    assert sum(len(a) for a in before.values()) == 3  # every answer given is in the bucket already

    gate.limit = None
    second = emulator(rt, state, people)
    assert second.describe_labeling_job({"LabelingJobName": name})["LabelingJobStatus"] == "InProgress"
    cut = len(log)
    assert second.resume() == [name]
    assert ended(second, name) == "Completed"
    second.stop()

    # One file per object, under the key its first answer got; each answer in it once.
    after = {k: read(rt, k)["answers"] for k in keys(rt, responses)}
    assert len(after) == 4 and set(before) <= set(after)
    for key, answers in after.items():
        workers = [a["workerId"] for a in answers]
        assert len(workers) == 2 == len(set(workers)), key
        assert answers[: len(before.get(key, []))] == before.get(key, [])  # kept as given, first
    # Nobody was handed an object they had answered; the tasks the shutdown released were offered again.
    submitted: set[tuple[str, str]] = set()
    for worker, oid, outcome in log:
        assert (worker, oid) not in submitted, f"{worker} was asked again for {oid}"
        if outcome == "submitted":
            submitted.add((worker, oid))
    released = {oid for _, oid, outcome in log[:cut] if outcome == "released"}
    assert released and all(any(o == oid for _, o, _ in log[cut:]) for oid in released)
    assert len(submitted) == 8
    # One consolidation request for the iteration, holding every object with both its answers.
    [request] = keys(rt, f"out/{name}/annotations/consolidated-annotation/consolidation-request/iteration-1/")
    assert [(b["datasetObjectId"], len(b["annotations"])) for b in read(rt, request)] == [(str(i), 2) for i in range(4)]
    lines = output_lines(rt, name)
    assert [x["object-id"] for x in lines] == ids
    assert all(x["label-r1"]["ids"] == [x["object-id"]] * 2 for x in lines)
    assert first.events.published == [] and second.events.published == [(name, "Completed")]
    desc = second.describe_labeling_job({"LabelingJobName": name})
    assert desc["LabelCounters"]["TotalLabeled"] == 4 and desc["LabelingJobOutput"]["OutputDatasetS3Uri"].endswith(
        f"{name}/manifests/output/output.manifest"
    )


def test_a_job_stopped_while_consolidating_sends_the_same_request_again(rt: LocalRuntime, tmp_path: Path) -> None:
    name, ids = "resume-consolidating", ["a", "b"]
    state = tmp_path / "gt.sqlite"
    log: list[tuple[str, str, str]] = []
    people = [Person(n, log, Gate(None)) for n in (1, 2)]
    post = job_request(rt, name)["HumanTaskConfig"]["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
    dying = DyingConsolidation(rt.lambdas, post)
    first = emulator(rt, state, people, dying)
    dying.die = first
    create(rt, first, name, ids)
    deadline = time.monotonic() + 120
    while first.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    first.stop()
    assert first.jobs[name].status == "InProgress" and first.jobs[name].phase == "consolidating"
    asked = len(log)

    again = DyingConsolidation(rt.lambdas, post)
    second = emulator(rt, state, people, again)
    assert second.resume() == [name]
    assert ended(second, name) == "Completed"
    second.stop()
    assert len(log) == asked == 4  # every object had its answers on record: nobody was asked again
    assert again.post_calls == dying.post_calls  # the same request key, once more
    consolidated = f"out/{name}/annotations/consolidated-annotation/"
    assert len(keys(rt, consolidated + "consolidation-request/iteration-1/")) == 1
    assert len(keys(rt, consolidated + "consolidation-response/iteration-1/")) == 1
    assert [x["label-r1"]["ids"] for x in output_lines(rt, name)] == [["a", "a"], ["b", "b"]]
    assert second.events.published == [(name, "Completed")]


def test_ended_jobs_announce_again_and_a_stopping_job_ends_stopped(rt: LocalRuntime, tmp_path: Path) -> None:
    state = tmp_path / "gt.sqlite"
    log: list[tuple[str, str, str]] = []
    gate = Gate(limit=None)
    people = [Person(n, log, gate) for n in (1, 2)]
    first = emulator(rt, state, people)
    create(rt, first, "resume-done", ["a"])
    assert ended(first, "resume-done") == "Completed"
    gate.limit = gate.given + 1  # the next job: one answer, then the person keeps the task open
    create(rt, first, "resume-stopping", ["a", "b", "c"])
    assert gate.holding.wait(60)
    first.stop_labeling_job({"LabelingJobName": "resume-stopping"})
    kill(first, gate)
    assert first.jobs["resume-stopping"].status == "Stopping"
    asked = len(log)

    second = emulator(rt, state, people)
    assert second.resume() == ["resume-stopping"]
    assert ended(second, "resume-stopping") == "Stopped"
    second.stop()
    assert len(log) == asked  # a stopping job asks no one anything
    assert sorted(second.events.published) == [("resume-done", "Completed"), ("resume-stopping", "Stopped")]
    lines = output_lines(rt, "resume-stopping")
    labeled = [x for x in lines if "label-r1" in x]  # the answer given before the restart is consolidated
    assert len(lines) == 3 and [len(x["label-r1"]["ids"]) for x in labeled] == [1]
    assert all("stopped" in x["label-r1-metadata"]["failure-reason"] for x in lines if x not in labeled)

    third = emulator(rt, state, people)
    assert third.resume() == []  # both ended: announced again, not run
    third.stop()
    assert sorted(third.events.published) == [("resume-done", "Completed"), ("resume-stopping", "Stopped")]
    assert third.describe_labeling_job({"LabelingJobName": "resume-stopping"})["LabelingJobStatus"] == "Stopped"
    assert len(log) == asked
