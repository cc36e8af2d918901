"""The emulator's job records in SQLite, and what the emulator does with them on a restart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.groundtruth.emulator import GroundTruthEmulator
from gtaudit_local.groundtruth.record import LabelingJobRun, ObjectRun
from gtaudit_local.groundtruth.store import JobStore, StateVersionError

ARN = "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/"


def job(name: str, status: str = "InProgress", created: float = 1.0) -> LabelingJobRun:
    req = {
        "LabelingJobName": name,
        "LabelAttributeName": "audit-r2",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/in.manifest"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/out"},
        "RoleArn": "arn:aws:iam::123456789012:role/gt",
        "HumanTaskConfig": {"WorkteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t"},
        "Tags": [{"Key": "gtaudit:kind", "Value": "audit"}],
    }
    return LabelingJobRun(request=req, arn=ARN + name.lower(), created=created, modified=created, status=status)


def test_a_job_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "state" / "groundtruth.sqlite"
    store = JobStore(path)
    j = job("Audit-Job")
    j.failure_reason, j.total, j.finished, j.labeled, j.failed = "why", 5, 4, 3, 1
    j.phase, j.stop_requested, j.output_manifest, j.consolidation_stamp = "consolidating", True, "s3://b/o", "stamp"
    store.save(j)
    store.close()
    [back] = JobStore(path).jobs()
    assert back.__dict__ == {**j.__dict__, "kind": "audit", "round": 2}  # kind and round: from the request


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "gt.sqlite"
    JobStore(path).save(job("a"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_finished_objects_are_kept_with_their_jobs_counters(tmp_path: Path) -> None:
    path = tmp_path / "gt.sqlite"
    store = JobStore(path)
    j = job("a")
    store.save(j)
    j.finished = 2
    store.object_done(j, ObjectRun(0, {}, retries=1))
    store.object_done(j, ObjectRun(3, {}, failure="ClientError: expired", retries=3))
    store.object_done(job("other"), ObjectRun(0, {}, failure="elsewhere"))
    again = JobStore(path)
    assert again.done_objects(j) == {0: (None, 1), 3: ("ClientError: expired", 3)}
    assert {x.name: x.finished for x in again.jobs()} == {"a": 2, "other": 0}


def test_writes_from_many_threads_all_land(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "gt.sqlite")
    j = job("a")
    store.save(j)

    def work(start: int) -> None:
        for i in range(start, start + 50):
            store.object_done(j, ObjectRun(i, {}))

    threads = [threading.Thread(target=work, args=(n * 50,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.done_objects(j)) == 200


def test_records_of_a_newer_schema_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "gt.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StateVersionError, match="schema 99"):
        JobStore(path)


def test_a_write_after_close_is_dropped_not_raised(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "gt.sqlite")
    store.close()
    store.save(job("late"))  # a runner thread that outlived the shutdown
    assert store.jobs() == []


class Events:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0}


def emulator(path: Path, events: Events) -> GroundTruthEmulator:
    return GroundTruthEmulator(s3=None, events=events, logs=None, lambdas=None, workteams={},  # type: ignore[arg-type]
                               state_path=path)  # fmt: skip


def test_on_resume_an_ended_job_is_announced_again_once_and_keeps_its_status(tmp_path: Path) -> None:
    path = tmp_path / "gt.sqlite"
    store = JobStore(path)
    for name, status, t in (("done", "Completed", 1.0), ("halted", "Stopped", 2.0), ("broken", "Failed", 3.0)):
        store.save(job(name, status, t))
    store.close()
    events = Events()
    gt = emulator(path, events)
    assert gt.describe_labeling_job({"LabelingJobName": "HALTED"})["LabelingJobStatus"] == "Stopped"
    assert gt.resume() == [] and gt.resume() == []
    assert [(e["Resources"], e["Detail"]) for e in events.entries] == [
        ([ARN + "done"], '{"LabelingJobStatus": "Completed"}'),
        ([ARN + "halted"], '{"LabelingJobStatus": "Stopped"}'),
        ([ARN + "broken"], '{"LabelingJobStatus": "Failed"}'),
    ]
    assert not gt.busy and {j.status for j in gt.jobs.values()} == {"Completed", "Stopped", "Failed"}
    listed = gt.list_labeling_jobs({"StatusEquals": "Stopped"})["LabelingJobSummaryList"]
    assert [x["LabelingJobName"] for x in listed] == ["halted"]
    gt.stop()


def test_a_name_on_record_stays_taken(tmp_path: Path) -> None:
    path = tmp_path / "gt.sqlite"
    JobStore(path).save(job("Taken", "Completed"))
    gt = emulator(path, Events())
    assert "taken" in gt.jobs and gt.jobs["taken"].name == "Taken"
    gt.stop()


def test_without_a_state_path_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    gt = GroundTruthEmulator(s3=None, events=Events(), logs=None, lambdas=None, workteams={})  # type: ignore[arg-type]
    gt.store.save(job("a"))
    assert [j.name for j in gt.store.jobs()] == ["a"]
    gt.stop()
    assert list(tmp_path.iterdir()) == []
