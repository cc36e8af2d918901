"""The emulator as one object: the API server, the job records and a runner thread per job.

:class:`GroundTruthEmulator` owns the state the parts share (the job records by lower-case name,
one lock for them, the signed-link secret, the workforce with its per-worker locks) and wires the
parts together: :mod:`~gtaudit_local.groundtruth.server` answers HTTP,
:mod:`~gtaudit_local.groundtruth.api` answers each operation, and
:mod:`~gtaudit_local.groundtruth.runner` runs each job in a thread of its own.

Its life on a project folder, across restarts::

    GroundTruthEmulator(..., state_path=<project>/state/groundtruth.sqlite)
        loads the records: every job answers Describe and List at once, names stay taken
    .start()                     the API server
    (attach the Lambda service; start the event dispatcher)
    .resume()                    jobs InProgress or Stopping run again from their records;
                                 ended jobs publish their state change event once more
    ...
    .interrupt()                 no task is offered any more; running jobs stay as they are
    (release the workers waiting for a person, e.g. BrowserWorker.close)
    .stop()                      the API server stops, runner threads are joined, records closed

A job's records are written as they change (:mod:`~gtaudit_local.groundtruth.store`), its answers
go to the bucket as they come (:mod:`~gtaudit_local.groundtruth.runner`), so a ``kill -9`` at any
point loses no answer, and ``resume()`` carries on from there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gtaudit_local.aws import ACCOUNT_ID, REGION
from gtaudit_local.groundtruth import api
from gtaudit_local.groundtruth.api import ApiError
from gtaudit_local.groundtruth.record import LabelingJobRun, kind_and_round
from gtaudit_local.groundtruth.runner import JobRunner
from gtaudit_local.groundtruth.server import SignedLinks, start_server
from gtaudit_local.groundtruth.store import JobStore
from gtaudit_local.groundtruth.workforce import Workforce
from gtaudit_local.lambdas import LambdaService
from gtaudit_local.workers.base import Worker

log = logging.getLogger(__name__)


class GroundTruthEmulator:
    """The emulator: an HTTP API server plus a runner thread per job.

    Parameters
    ----------
    s3, events, logs
        boto3 clients on the embedded AWS (what GT itself would use under its execution role).
    lambdas
        The local Lambda service; Lambda ARNs in requests must exist there. It may be attached
        after :meth:`start` (the functions need the emulator's URL first), before any job is created.
    workteams
        ``{WorkteamArn: [Worker, ...]}``: the private workforces and their (scripted) workers.
    max_reoffers
        How many times a returned or abandoned task is offered to another worker.
    concurrency
        Data objects of one job worked at the same time.
    state_path
        The SQLite file of the job records (``<project>/state/groundtruth.sqlite``), loaded here;
        ``None`` keeps them in memory, for this process only.
    """

    def __init__(
        self,
        *,
        s3: Any,
        events: Any,
        logs: Any | None,
        lambdas: LambdaService,
        workteams: Mapping[str, Sequence[Worker]],
        max_reoffers: int = 3,
        concurrency: int = 2,
        state_path: Path | str | None = None,
    ) -> None:
        self.s3 = s3
        self.events = events
        self.logs = logs
        self.lambdas = lambdas
        self.workteams: dict[str, list[Worker]] = {k: list(v) for k, v in workteams.items()}
        self.concurrency = concurrency
        self.jobs: dict[str, LabelingJobRun] = {}  # by lower-case name
        self.listeners: list[Callable[[LabelingJobRun], None]] = []
        self._links = SignedLinks(s3)
        self._closing = threading.Event()
        self.workforce = Workforce(
            s3, logs, self.workteams, max_reoffers, grants=self._links.grants, closing=self._closing
        )
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._active = 0
        self.store = JobStore(state_path)
        # The jobs on record when this process started: resume() runs or announces them once.
        self._recorded = self.store.jobs()
        self.jobs.update((job.name.lower(), job) for job in self._recorded)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` once started, else ``""``."""
        return self._links.endpoint

    def start(self) -> GroundTruthEmulator:
        """Serve on ``127.0.0.1`` on a free port; ``endpoint`` is then its URL."""
        self._server, thread = start_server(self.handle, self._links.serve)
        self._links.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._threads.append(thread)
        return self

    def resume(self) -> list[str]:
        """Carry on after a restart on the same records: run the unfinished jobs again, re-announce the ended.

        Call once, after :meth:`start` with the Lambda service attached and the event dispatcher
        running (a resumed job calls its Lambdas and publishes its event). A job that was
        ``InProgress`` or ``Stopping`` runs again from its records (see
        :mod:`~gtaudit_local.groundtruth.runner`); a job that had ended publishes its state change
        event once more, as EventBridge may deliver an event twice: a step the kill interrupted
        runs, a step already done is a duplicate its consumer ignores. Later calls do nothing.

        Returns
        -------
        list of str
            The names of the jobs run again.
        """
        with self._lock:
            recorded, self._recorded = self._recorded, []
        again = []
        for job in recorded:
            if job.ended:
                self._runner().publish(job)
            else:
                self._start(job, resumed=True)
                again.append(job.name)
        return again

    def interrupt(self) -> None:
        """Offer no task any more and leave running jobs as they stand (``InProgress``), to be resumed.

        A worker still working a task may then be released (``BrowserWorker.close``): its task
        goes back to the queue. :meth:`stop` calls this first.
        """
        self._closing.set()

    def stop(self) -> None:
        """Interrupt the jobs, stop the API server, wait briefly for the runner threads, close the records."""
        self.interrupt()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        deadline = time.monotonic() + 10  # a job blocked on a person at a browser must not hold shutdown
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self.store.close()

    @property
    def busy(self) -> bool:
        """Whether a job is still running (its state change event not yet published)."""
        with self._lock:
            return self._active > 0

    def url_for(self, uri: str, expires_in: int = 3600) -> str:
        """A short-lived local URL streaming the S3 object ``uri`` (what ``grant_read_access`` gives)."""
        return self._links.url_for(uri, expires_in)

    def handle(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Dispatch one API call; return (HTTP status, JSON body)."""
        op = target.rsplit(".", 1)[-1]
        try:
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError("SerializationException", f"body is not JSON: {exc}") from exc
            handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
                "CreateLabelingJob": self.create_labeling_job,
                "DescribeLabelingJob": self.describe_labeling_job,
                "ListLabelingJobs": self.list_labeling_jobs,
                "StopLabelingJob": self.stop_labeling_job,
            }
            if op not in handlers:
                raise ApiError("UnknownOperationException", f"{op} is not emulated locally")
            return 200, handlers[op](body)
        except ApiError as exc:
            return 400, {"__type": exc.code, "message": exc.message}
        except Exception as exc:  # an emulator bug must answer as AWS would, not hang the client
            log.exception("gt-emulator: %s failed", op)
            return 500, {"__type": "InternalFailure", "message": f"{type(exc).__name__}: {exc}"}

    def create_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``CreateLabelingJob``: validate, register, start the runner (names are unique case-insensitively)."""
        api.validate_create(req, self.workteams, self.lambdas)
        if self._closing.is_set():
            raise ApiError("ServiceUnavailable", "the emulator is shutting down")
        name = req["LabelingJobName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:labeling-job/{name.lower()}"
        now = time.time()
        job = LabelingJobRun(request=req, arn=arn, created=now, modified=now)
        job.kind, job.round = kind_and_round(req)
        with self._lock:
            if name.lower() in self.jobs:
                raise ApiError("ResourceInUse", f"Labeling job {name} already exists (names are case-insensitive)")
            self.jobs[name.lower()] = job
        self.store.save(job)
        self._start(job, resumed=False)
        return {"LabelingJobArn": arn}

    def _runner(self) -> JobRunner:
        # Built per job, from the services as they are now: the Lambda service is attached after start().
        return JobRunner(
            s3=self.s3,
            events=self.events,
            lambdas=self.lambdas,
            workforce=self.workforce,
            url_for=self.url_for,
            concurrency=self.concurrency,
            lock=self._lock,
            listeners=self.listeners,
            store=self.store,
            closing=self._closing,
        )

    def _start(self, job: LabelingJobRun, *, resumed: bool) -> None:
        """Run ``job`` in a thread of its own."""
        with self._lock:
            self._active += 1
        t = threading.Thread(
            target=self._run, args=(self._runner(), job, resumed), name=f"gt-job-{job.name}", daemon=True
        )
        self._threads.append(t)
        t.start()

    def _run(self, runner: JobRunner, job: LabelingJobRun, resumed: bool) -> None:
        try:
            runner.run(job, resumed=resumed)
        finally:
            with self._lock:
                self._active -= 1

    def _job(self, name: Any) -> LabelingJobRun:
        if not isinstance(name, str):
            raise api.validation("LabelingJobName is required")
        with self._lock:
            job = self.jobs.get(name.lower())
        if job is None:
            raise ApiError("ResourceNotFound", f"Could not find labeling job {name}")
        return job

    def describe_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``DescribeLabelingJob``."""
        return api.describe(self._job(req.get("LabelingJobName")))

    def list_labeling_jobs(self, req: dict[str, Any]) -> dict[str, Any]:
        """``ListLabelingJobs`` with its filters, sorting and paging."""
        with self._lock:
            jobs = list(self.jobs.values())
        return api.list_jobs(jobs, req)

    def stop_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``StopLabelingJob``: an in-progress job becomes ``Stopping``, then ``Stopped``."""
        job = self._job(req.get("LabelingJobName"))
        with self._lock:
            stopping = job.status == "InProgress"
            if stopping:
                job.status = "Stopping"
                job.modified = time.time()
                job.stop_requested = True
        if stopping:
            self.store.save(job)
        return {}
