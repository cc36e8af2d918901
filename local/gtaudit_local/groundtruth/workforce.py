"""The private workforce: offering one object's task to workers, GT's time limit, and the WorkerActivity log.

A task goes to ``NumberOfHumanWorkersPerDataObject`` workers of the job's workteam, starting at a
worker that depends on the object's index so that the work spreads over the team. A returned or
abandoned task (or a worker that raises) is offered to the next worker, up to ``max_reoffers``
extra offers. An answer submitted after ``TaskTimeLimitInSeconds`` counts as abandoned, as GT takes
the task back when its time runs out. Each worker works one task at a time, across all jobs.

Nobody audits their own labels: an audit job's object is never offered to a worker its line names
among ``gtaudit.labelers`` (the line :func:`gtaudit.pipeline.manifests.audit_line` writes); with
no one else in the team the object fails, with a reason that says so.

Each answer becomes a worker-response entry in GT's format (times to the millisecond, the Cognito
identity of the private workforce: the Worker's, or the person's an :class:`Answer` names), and
each task, submitted or not, one WorkerActivity log entry as private workforces log them
(reference section 6). The runner is told of each answer as it comes, to make it durable.

When the emulator shuts down (``closing``), no task is offered any more and a task a worker was
released from goes back to the queue: :class:`Interrupted` tells the runner to leave the job as
it is, to be resumed after a restart (where answers already given are kept and their workers not
asked again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from gtaudit.manifest import GTAUDIT_KEY
from gtaudit.trace.activity import ACTIVITY_LOG_GROUP

from gtaudit_local.aws import REGION
from gtaudit_local.groundtruth.record import LabelingJobRun, ObjectRun
from gtaudit_local.workers.base import Answer, Task, Worker

log = logging.getLogger(__name__)

COGNITO_POOL = f"{REGION}_gtauditLocal"


def _iso_ms(dt: datetime) -> str:
    """``2026-11-24T09:58:01.123Z``, GT's worker-response time format."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _activity_time(dt: datetime) -> str:
    """``Wed Aug 14 16:00:59 UTC 2019``, the WorkerActivity log's time format."""
    return dt.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


class Workforce:
    """The workteams and their workers, as GT hands them tasks.

    Parameters
    ----------
    s3
        The boto3 S3 client the workers read through.
    logs
        The boto3 CloudWatch Logs client for the WorkerActivity log, or ``None`` for no log.
    teams
        ``{WorkteamArn: [Worker, ...]}``.
    max_reoffers
        How many times a returned or abandoned task is offered to another worker.
    grants
        Whether a link is one the emulator granted (handed to the workers with each task).
    closing
        Set when the emulator shuts down: no task is offered any more, and an open one goes back
        to the queue.
    """

    def __init__(
        self,
        s3: Any,
        logs: Any | None,
        teams: Mapping[str, Sequence[Worker]],
        max_reoffers: int,
        grants: Callable[[str], bool] | None = None,
        closing: threading.Event | None = None,
    ) -> None:
        self.s3 = s3
        self.closing = closing or threading.Event()
        self.grants = grants
        self.logs = logs
        self.teams = teams
        self.max_reoffers = max_reoffers
        self._lock = threading.Lock()
        self._worker_locks: dict[int, threading.Lock] = {}
        self._log_stream_ready: set[str] = set()

    def ask(self, job: LabelingJobRun, obj: ObjectRun, html: str, on_answer: Callable[[], None] | None = None) -> None:
        """Offer the object's task until enough workers answered; fill ``obj.answers`` or ``obj.failure``.

        ``obj.answers`` may already hold answers (a job resumed after a restart): only the missing
        ones are asked for, and never of a worker who already gave one. ``on_answer`` is called
        after each answer is added, before the next offer (the runner makes the answer durable).

        Raises
        ------
        Interrupted
            The emulator began shutting down before enough workers answered.
        """
        htc = job.request["HumanTaskConfig"]
        team = list(self.teams[htc["WorkteamArn"]])
        want = int(htc["NumberOfHumanWorkersPerDataObject"])
        task = Task(
            job_name=job.name,
            kind=job.kind,
            dataset_object_id=str(obj.index),
            data_object=obj.line,
            task_input=obj.task_input or {},
            html=html,
            iteration=1,
            grants=self.grants,
        )
        start = obj.index % len(team) if team else 0
        labelers = judged_labelers(job, obj)
        eligible = [w for w in team[start:] + team[:start] if w.worker_id not in labelers]
        answered = {a.get("workerId") for a in obj.answers}
        candidates = [w for w in eligible if w.worker_id not in answered]
        missing = want - len(obj.answers)
        offers = 0
        not_done: dict[str, int] = {}
        for worker in candidates:
            if len(obj.answers) >= want or offers >= missing + self.max_reoffers:
                break
            if job.stop_requested or self.closing.is_set():
                break
            offers += 1
            try:
                with self._worker_lock(worker):  # a person works one task at a time
                    answer = worker.work(task, self.s3)
            except Exception as exc:
                log.warning("gt-emulator: worker %s raised on %s/%d: %s", worker.worker_id, job.name, obj.index, exc)
                not_done["abandoned"] = not_done.get("abandoned", 0) + 1
                continue
            if answer.status == "abandoned" and self.closing.is_set():
                break  # released by the shutdown, not given up by the worker: the task goes back to the queue
            limit = float(htc["TaskTimeLimitInSeconds"])
            if answer.status == "submitted" and answer.submitted_at is not None:
                took = (answer.submitted_at - answer.accepted_at).total_seconds()
                if took > limit:  # GT takes the task back when its time limit runs out
                    answer = dataclasses.replace(answer, status="abandoned", content=None, submitted_at=None)
            self._activity(job, worker, answer)
            if answer.status == "submitted" and answer.content is not None:
                obj.answers.append(_response_entry(worker, answer))
                if on_answer is not None:
                    on_answer()
                kept = getattr(worker, "answer_kept", None)  # a team seat tells its person now
                if callable(kept):
                    kept(task)
            else:
                not_done[answer.status] = not_done.get(answer.status, 0) + 1
        if self.closing.is_set() and len(obj.answers) < want:
            raise Interrupted(f"{job.name} object {obj.index}: the emulator is shutting down")
        obj.retries = sum(not_done.values())
        if obj.answers:
            return
        if team and not eligible:
            who = ", ".join(sorted(labelers))
            obj.failure = f"ClientError: no auditor other than its labelers ({who}) is in the workteam"
        else:
            detail = ", ".join(f"{n} {status}" for status, n in sorted(not_done.items())) or "no worker available"
            obj.failure = f"ClientError: the task expired: no worker submitted an annotation ({detail})"

    def _worker_lock(self, worker: Worker) -> threading.Lock:
        with self._lock:
            return self._worker_locks.setdefault(id(worker), threading.Lock())

    def _activity(self, job: LabelingJobRun, worker: Worker, answer: Answer) -> None:
        """One WorkerActivity log entry per task, as private workforces log them."""
        if self.logs is None:
            return
        team = job.request["HumanTaskConfig"]["WorkteamArn"]
        stream = team.rsplit("/", 1)[-1]
        entry: dict[str, Any] = {
            "worker_id": answer.worker_id or worker.worker_id,
            "cognito_user_pool_id": COGNITO_POOL,
            "cognito_sub_id": answer.sub or worker.sub,
            "task_accepted_time": _activity_time(answer.accepted_at),
            "workteam_arn": team,
            "labeling_job_arn": job.arn,
        }
        end = answer.submitted_at or answer.accepted_at
        if answer.status == "submitted":
            entry["task_submitted_time"], entry["event_type"] = _activity_time(end), "TasksSubmitted"
        elif answer.status == "returned":
            entry["task_returned_time"], entry["event_type"] = _activity_time(end), "TasksReturned"
        else:  # abandoned: accepted, then never submitted before the time limit
            entry["task_declined_time"], entry["event_type"] = _activity_time(end), "TasksDeclined"
        entry["event_timestamp"] = _activity_time(end)
        try:
            with self._lock:
                if stream not in self._log_stream_ready:
                    with contextlib.suppress(ClientError):
                        self.logs.create_log_group(logGroupName=ACTIVITY_LOG_GROUP)
                    with contextlib.suppress(ClientError):
                        self.logs.create_log_stream(logGroupName=ACTIVITY_LOG_GROUP, logStreamName=stream)
                    self._log_stream_ready.add(stream)
                self.logs.put_log_events(
                    logGroupName=ACTIVITY_LOG_GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": int(end.timestamp() * 1000), "message": json.dumps(entry)}],
                )
        except ClientError as exc:
            log.warning("gt-emulator: WorkerActivity log failed: %s", exc)


def judged_labelers(job: LabelingJobRun, obj: ObjectRun) -> frozenset[str]:
    """The workers an audit object's line names as its labelers (``gtaudit.labelers``); none for other jobs.

    Nobody audits their own labels: these workers are never offered the object's audit task.
    """
    if job.kind != "audit":
        return frozenset()
    hand_over = obj.line.get(GTAUDIT_KEY)
    labelers = hand_over.get("labelers") if isinstance(hand_over, dict) else None
    return frozenset(w for w in labelers if isinstance(w, str)) if isinstance(labelers, list) else frozenset()


class Interrupted(Exception):
    """The emulator is shutting down: an open task goes back to the queue, its job resumes after a restart."""


def _response_entry(worker: Worker, answer: Answer) -> dict[str, Any]:
    """One entry of a worker-response file's ``answers``, in GT's format."""
    submitted = answer.submitted_at or answer.accepted_at
    return {
        "acceptanceTime": _iso_ms(answer.accepted_at),
        "answerContent": answer.content,
        "submissionTime": _iso_ms(submitted),
        "timeSpentInSeconds": round(float(answer.active_seconds), 3),
        "workerId": answer.worker_id or worker.worker_id,
        "workerMetadata": {
            "identityData": {
                "identityProviderType": "Cognito",
                "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{COGNITO_POOL}",
                "sub": answer.sub or worker.sub,
            }
        },
    }
