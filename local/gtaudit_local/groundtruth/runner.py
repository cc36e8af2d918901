"""The job runner: one labeling job from its input manifest to its state change event, as GT runs it.

Per job (reference sections 1, 2, 4, 6, 7): read the input manifest; call the pre-annotation
Lambda per object; render the Liquid template from ``UiTemplateS3Uri``; hand each task to
``NumberOfHumanWorkersPerDataObject`` workers of the workteam (a returned or abandoned task is
offered to another worker, up to ``max_reoffers`` times: :mod:`gtaudit_local.groundtruth.workforce`);
write the worker-response files; write the consolidation request and call the consolidation Lambda;
write the consolidation response and ``manifests/output/output.manifest``; publish the job state
change event to the default bus.

Nothing a person did is lost when the process dies, and no step is done twice in a way anyone can
tell. Each answer is written as it comes: the object's one worker-response file
(``iteration-1/<index>/<stamp>.json``, stamped at its first answer) is rewritten with every answer
so far, so a ``PutObject`` that returned holds it. The job's records
(:mod:`~gtaudit_local.groundtruth.store`) hold the phase, each finished object's outcome, the
consolidation request's stamp (recorded before the request is written) and the final status
(recorded before the event is published). A job run again after a restart (``resumed``) reads the
manifest again, takes back each object's answers from its file and the recorded outcomes, works
only the objects whose work had not ended (the pre-annotation Lambda again, then only the missing
answers, never of a worker who gave one), sends the same consolidation request key again (the
consolidation Lambdas write the same keys for the same request), rewrites the output manifest and
publishes the event. When the emulator shuts down the job is left as it stands (``Interrupted``).

Choices where GT's behaviour is not documented:

- An object whose pre-annotation Lambda returns ``isHumanAnnotationRequired: false`` is not sent to
  workers and appears in the output manifest with a ``failure-reason`` (and the ``skipReason`` the
  Lambda gave), so every input object is accounted for.
- An object that got fewer answers than requested (workers returned or abandoned it) is
  consolidated with the answers it has; with none it fails with a ``failure-reason``.
- Objects go to the consolidation Lambda in batches of ``MaxConcurrentTaskCount`` (default 1,000),
  the job's batch size: AWS's CreateLabelingJob reference calls that count the batch size, and
  Ground Truth "divides the total number of tasks into smaller batches" (docs/contracts.md cites
  both). Batch *k* is named ``<the job's stamp + k seconds>.json``, so its masks' names differ.
  The request is written as a stream from each object's worker-response file: the runtime holds
  no answer of a finished object in memory, whatever the job's size.
- A pre- or post-annotation Lambda call that fails (the handler raises, times out or its process
  dies) is tried ``LAMBDA_ATTEMPTS`` times in all, each on a fresh execution environment when the last
  one died; Ground Truth's documentation does not say how often it retries these synchronous calls
  (docs/local-runtime.md). After the last attempt the objects fail with the Lambda's error; the
  worker-response files stay in S3, so no submitted answer is lost.
- One object's failure never sinks the job; a job-level failure (no manifest, a bad line, a
  template over 128,000 characters) fails the job with a ``FailureReason`` and a ``Failed`` event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.s3.transfer import TransferConfig
from gtaudit import layout
from gtaudit.manifest import BadLine, dumps_line, iter_manifest
from gtaudit.models.jobs import STATE_CHANGE
from gtaudit.s3io import get_bytes, get_json, iter_lines, put_bytes, put_json
from gtaudit.s3uri import S3Uri, parse_s3_uri

from gtaudit_local.groundtruth.api import dig
from gtaudit_local.groundtruth.record import LabelingJobRun, ObjectRun
from gtaudit_local.groundtruth.store import JobStore
from gtaudit_local.groundtruth.workforce import Interrupted, Workforce
from gtaudit_local.lambdas import LambdaInvokeError, LambdaService, UnknownFunctionError
from gtaudit_local.liquid import render_task

log = logging.getLogger(__name__)

DEFAULT_BATCH = 1000  # MaxConcurrentTaskCount's default
_SPOOL_BYTES = 8 * 1024 * 1024  # a consolidation request is spilled to disk above this
_PARTS = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, use_threads=False)
_ITERATION = 1  # the emulator runs one iteration per job: no automated labeling, no re-annotation
LAMBDA_ATTEMPTS = 3  # tries of a pre- or post-annotation Lambda call (see the module docstring)
_RETRY_DELAY = 0.5  # seconds before the next try, times the try's number


def _file_stamp(dt: datetime) -> str:
    """``2026-11-24_10:00:00``, GT's file-name time format."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d_%H:%M:%S")


def _batch_stamp(stamp: str, k: int) -> str:
    """The request name of a job's batch ``k``: the job's stamp plus ``k`` seconds."""
    if k == 0:
        return stamp
    base = datetime.strptime(stamp, "%Y-%m-%d_%H:%M:%S").replace(tzinfo=UTC)
    return _file_stamp(base + timedelta(seconds=k))


def _slim(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its content (the worker's mask): who answered, and when."""
    return {k: v for k, v in answer.items() if k != "answerContent"}


class JobRunner:
    """Runs labeling jobs against the local services.

    Parameters
    ----------
    s3, events
        boto3 clients on the embedded AWS (what GT itself would use under its execution role).
    lambdas
        The local Lambda service.
    workforce
        Who answers the tasks.
    url_for
        ``grant_read_access``: the signed link to an S3 object, for the rendered pages.
    concurrency
        Data objects of one job worked at the same time.
    lock
        Guards the job records, which the API threads read while a job runs.
    listeners
        Called with each job once it has finished (after its state change event).
    store
        The job records (:mod:`~gtaudit_local.groundtruth.store`).
    closing
        Set when the emulator shuts down: the job is left as it stands, to be resumed.
    """

    def __init__(
        self,
        *,
        s3: Any,
        events: Any,
        lambdas: LambdaService,
        workforce: Workforce,
        url_for: Callable[[str], str],
        concurrency: int,
        lock: threading.Lock,
        listeners: Sequence[Callable[[LabelingJobRun], None]],
        store: JobStore,
        closing: threading.Event,
    ) -> None:
        self.s3 = s3
        self.events = events
        self.lambdas = lambdas
        self.workforce = workforce
        self.url_for = url_for
        self.concurrency = concurrency
        self._lock = lock
        self.listeners = listeners
        self.store = store
        self.closing = closing

    def run(self, job: LabelingJobRun, *, resumed: bool = False) -> None:
        """Run ``job`` to ``Completed``, ``Stopped`` or ``Failed``; never raises.

        ``resumed``: the job ran before a restart; its objects' answers are read back from their
        worker-response files and the objects whose work had ended keep their recorded outcome.
        If the emulator shuts down meanwhile, the job is left as it stands (``InProgress`` in its
        records), to be resumed after a restart.
        """
        try:
            self._run(job, resumed)
        except Interrupted:
            log.info("gt-emulator: job %s interrupted while %s; it resumes after a restart", job.name, job.phase)
        except Exception as exc:  # a job-level failure: the job fails with a reason, as in GT
            if self.closing.is_set():  # a service closing under the job is no failure of the job
                log.info("gt-emulator: job %s interrupted while %s (%s)", job.name, job.phase, exc)
                return
            log.warning("gt-emulator: job %s failed: %s", job.name, exc)
            log.debug("%s", traceback.format_exc())
            self._finish(job, "Failed", f"{type(exc).__name__}: {exc}")

    def _run(self, job: LabelingJobRun, resumed: bool) -> None:
        req = job.request
        htc = req["HumanTaskConfig"]
        attr = req["LabelAttributeName"]
        root = layout.job_root(req["OutputConfig"]["S3OutputPath"], job.name)
        self._phase(job, "reading manifest")
        manifest_uri = parse_s3_uri(req["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])
        lines: list[dict[str, Any]] = []
        for item in iter_manifest(iter_lines(self.s3, manifest_uri)):
            if isinstance(item, BadLine):
                raise ValueError(f"ClientError: input manifest line {item.number}: {item.reason}")
            lines.append(item.data)
        if not lines:
            raise ValueError("ClientError: the input manifest has no data objects")
        template = get_bytes(self.s3, parse_s3_uri(htc["UiConfig"]["UiTemplateS3Uri"])).decode("utf-8")
        if len(template) > 128_000:
            raise ValueError("ClientError: the UI template is longer than 128,000 characters")
        categories = None
        if req.get("LabelCategoryConfigS3Uri"):
            config = get_json(self.s3, parse_s3_uri(req["LabelCategoryConfigS3Uri"]))
            categories = [c.get("label") for c in config.get("labels", []) if isinstance(c, dict)]
        job.total = len(lines)
        objects = [ObjectRun(i, line) for i, line in enumerate(lines)]
        if resumed:
            self._restore(job, objects, root)
        self._phase(job, "annotating")
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"gt-{job.name[:20]}") as pool:
            list(pool.map(lambda obj: self._work_object(job, obj, template, root), objects))
        if self.closing.is_set() and not all(obj.done for obj in objects):
            raise Interrupted(f"{job.name}: the emulator is shutting down")
        if job.stop_requested:
            for obj in objects:
                if not obj.done and not obj.answers:  # answers given before a restart are consolidated
                    obj.failure = "ClientError: the labeling job was stopped before this object was annotated"
        self._phase(job, "consolidating")
        batch = [obj for obj in objects if obj.answers and obj.failure is None]
        size = int(job.request["HumanTaskConfig"].get("MaxConcurrentTaskCount") or DEFAULT_BATCH)
        for k, start in enumerate(range(0, len(batch), size)):
            self._consolidate(job, batch[start : start + size], root, categories, k)
        self._phase(job, "writing output")
        out_uri = layout.output_manifest(root)
        now = datetime.now(UTC)
        body = "".join(dumps_line(_output_line(job, obj, attr, now)) for obj in objects)
        put_bytes(self.s3, out_uri, body.encode("utf-8"), "application/jsonlines")
        with self._lock:
            job.output_manifest = str(out_uri)
            job.labeled = sum(1 for obj in objects if obj.label is not None)
            job.failed = len(objects) - job.labeled
            job.finished = len(objects)
        self._finish(job, "Stopped" if job.stop_requested else "Completed")

    def _phase(self, job: LabelingJobRun, phase: str) -> None:
        with self._lock:
            job.phase = phase
        self.store.save(job)

    def _restore(self, job: LabelingJobRun, objects: list[ObjectRun], root: S3Uri) -> None:
        """Take back what a job had before a restart: each object's answers, and the outcomes on record."""
        responses = read_responses(self.s3, root, _ITERATION)
        done = self.store.done_objects(job)
        for obj in objects:
            if obj.index in responses:
                obj.response_stamp, obj.answers = responses[obj.index]
            if obj.index in done:
                obj.failure, obj.retries = done[obj.index]
                obj.done = True
                obj.answers = [_slim(a) for a in obj.answers]
        with self._lock:
            job.finished = sum(1 for obj in objects if obj.done)

    def _invoke(self, arn: str, event: dict[str, Any]) -> Any:
        """Call a task Lambda synchronously, trying a failed call again (``LAMBDA_ATTEMPTS`` in all)."""
        for attempt in range(1, LAMBDA_ATTEMPTS + 1):
            try:
                return self.lambdas.invoke(arn, event)
            except LambdaInvokeError as exc:
                if attempt == LAMBDA_ATTEMPTS or self.closing.is_set():
                    raise
                log.warning("gt-emulator: %s failed (attempt %d of %d): %s", arn, attempt, LAMBDA_ATTEMPTS, exc)
                time.sleep(_RETRY_DELAY * attempt)
        raise AssertionError("unreachable")

    def _pre(self, job: LabelingJobRun, obj: ObjectRun) -> bool:
        """Call the pre-annotation Lambda; return whether the object goes to workers."""
        pre = job.request["HumanTaskConfig"]["PreHumanTaskLambdaArn"]
        event = {"version": "2018-10-16", "labelingJobArn": job.arn, "dataObject": obj.line}
        try:
            resp = self._invoke(pre, event)
        except (LambdaInvokeError, UnknownFunctionError) as exc:
            if self.closing.is_set():  # the Lambda service closing under the call
                raise Interrupted(f"{job.name} object {obj.index}: the emulator is shutting down") from exc
            obj.failure = f"ClientError: the pre-annotation Lambda failed: {exc}"[:1024]
            return False
        if not isinstance(resp, dict) or not isinstance(resp.get("taskInput"), dict):
            obj.failure = "ClientError: the pre-annotation Lambda did not return a taskInput object"
            return False
        obj.task_input = resp["taskInput"]
        required = resp.get("isHumanAnnotationRequired", True)
        if isinstance(required, str):
            required = required.strip().lower() != "false"
        if required is False:
            skip = obj.task_input.get("skipReason")
            obj.failure = "ClientError: the pre-annotation Lambda set isHumanAnnotationRequired to false" + (
                f": {skip}" if skip else ""
            )
            return False
        return True

    def _work_object(self, job: LabelingJobRun, obj: ObjectRun, template: str, root: S3Uri) -> None:
        if obj.done or job.stop_requested or self.closing.is_set():
            return
        want = int(job.request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"])
        try:
            if len(obj.answers) < want and self._pre(job, obj):
                assert obj.task_input is not None
                html = render_task(template, obj.task_input, self.url_for)
                self.workforce.ask(job, obj, html, on_answer=lambda: self._save_answers(obj, root))
        except Interrupted:
            return  # the open task goes back to the queue: the object is worked again on resume
        except Exception as exc:  # one object's failure never sinks the job
            if self.closing.is_set():
                return
            log.warning("gt-emulator: %s object %d failed: %s", job.name, obj.index, exc)
            obj.failure = f"ClientError: {type(exc).__name__}: {exc}"[:1024]
        obj.done = True
        obj.answers = [_slim(a) for a in obj.answers]  # the masks are in the object's worker-response file
        with self._lock:
            job.finished += 1
            job.modified = time.time()
        self.store.object_done(job, obj)

    def _save_answers(self, obj: ObjectRun, root: S3Uri) -> None:
        """Write the object's worker-response file with every answer so far, under one key per object."""
        if obj.response_stamp is None:
            obj.response_stamp = _file_stamp(datetime.now(UTC))
        uri = layout.worker_response(root, _ITERATION, obj.index, obj.response_stamp)
        put_json(self.s3, uri, {"answers": obj.answers})

    def _write_request(self, uri: S3Uri, batch: list[ObjectRun], root: S3Uri) -> None:
        """Write a consolidation request as GT does, one object at a time through a spooled file.

        A finished object's answers are read back from its worker-response file (its masks are
        not kept in memory: :func:`_slim`).
        """
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as buf:
            buf.write(b"[")
            for n, obj in enumerate(batch):
                answers = obj.answers
                if any("answerContent" not in a for a in answers):
                    saved = get_json(
                        self.s3, layout.worker_response(root, _ITERATION, obj.index, obj.response_stamp or "")
                    )
                    answers = saved.get("answers", []) if isinstance(saved, dict) else []
                src = obj.line.get("source-ref")
                data_object = {"s3Uri": src} if isinstance(src, str) else {"content": obj.line.get("source")}
                entry = {
                    "datasetObjectId": str(obj.index),
                    "dataObject": data_object,
                    "annotations": [
                        {"workerId": a["workerId"], "annotationData": {"content": json.dumps(a["answerContent"])}}
                        for a in answers
                        if isinstance(a, dict) and "answerContent" in a
                    ],
                }
                buf.write((b"," if n else b"") + json.dumps(entry, ensure_ascii=False).encode("utf-8"))
            buf.write(b"]")
            buf.seek(0)
            # In parts of 16 MB from that size on: the request of a 1,000-object batch of 12 MP masks
            # is about 0.8 GB, and S3 (moto) holds a single PUT's body whole in memory.
            self.s3.upload_fileobj(buf, uri.bucket, uri.key, ExtraArgs={"ContentType": "application/json"},
                                   Config=_PARTS)  # fmt: skip

    def _consolidate(
        self, job: LabelingJobRun, batch: list[ObjectRun], root: S3Uri, categories: list[Any] | None, k: int = 0
    ) -> None:
        req = job.request
        attr = req["LabelAttributeName"]
        htc = req["HumanTaskConfig"]
        if job.consolidation_stamp is None:  # on record before the request exists: one request key per job
            with self._lock:
                job.consolidation_stamp = _file_stamp(datetime.now(UTC))
            self.store.save(job)
        stamp = _batch_stamp(job.consolidation_stamp, k)
        request_uri = layout.consolidation_request(root, _ITERATION, stamp)
        self._write_request(request_uri, batch, root)
        event: dict[str, Any] = {
            "version": "2018-10-16",
            "labelingJobArn": job.arn,
            "labelCategories": categories,
            "labelAttributeName": attr,
            "roleArn": req["RoleArn"],
            "payload": {"s3Uri": str(request_uri)},
            "outputConfig": str(root.join("annotations")),
            "maxHumanWorkersPerDataObject": int(htc["NumberOfHumanWorkersPerDataObject"]),
        }
        post = htc["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
        try:
            resp = self._invoke(post, event)
        except (LambdaInvokeError, UnknownFunctionError) as exc:
            if self.closing.is_set():  # the Lambda service closing under the call
                raise Interrupted(f"{job.name}: the emulator is shutting down") from exc
            for obj in batch:
                obj.failure = f"ClientError: the annotation consolidation Lambda failed: {exc}"[:1024]
            return
        put_json(self.s3, layout.consolidation_response(root, _ITERATION, stamp), resp)
        by_id: dict[str, Any] = {}
        if isinstance(resp, list):
            for entry in resp:
                if isinstance(entry, dict) and "datasetObjectId" in entry:
                    by_id[str(entry["datasetObjectId"])] = entry
        for obj in batch:
            entry = by_id.get(str(obj.index))
            content = dig(entry, "consolidatedAnnotation.content") if isinstance(entry, dict) else None
            if not isinstance(content, dict) or not content:
                obj.failure = "ClientError: the annotation consolidation Lambda returned no annotation for this object"
                continue
            obj.label = content

    def _finish(self, job: LabelingJobRun, status: str, reason: str | None = None) -> None:
        """Record the final status, publish the state change event, then tell the listeners."""
        with self._lock:
            job.status = status
            job.failure_reason = reason
            job.modified = time.time()
            job.phase = status.lower()
        self.store.save(job)  # before the event: a restart in between publishes it (again) from the records
        self.publish(job)
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(job)

    def publish(self, job: LabelingJobRun) -> None:
        """Publish the job's state change event (its status now) to the default bus."""
        try:
            resp = self.events.put_events(
                Entries=[
                    {
                        "Source": "aws.sagemaker",
                        "DetailType": STATE_CHANGE,
                        "Detail": json.dumps({"LabelingJobStatus": job.status}),
                        "Resources": [job.arn],
                        "EventBusName": "default",
                        "Time": datetime.now(UTC),
                    }
                ]
            )
            if resp.get("FailedEntryCount"):
                log.warning("gt-emulator: state change event of %s was not accepted: %s", job.name, resp)
        except Exception as exc:  # ClientError, or moto already gone during shutdown
            log.warning("gt-emulator: could not publish the state change of %s: %s", job.name, exc)


def read_responses(s3: Any, root: S3Uri, iteration: int) -> dict[int, tuple[str, list[dict[str, Any]]]]:
    """``{index: (stamp, answers)}`` from a job's worker-response files, one listing for the job.

    Each object has one file (its stamp is kept, so the file is rewritten, not multiplied); should
    there be several, their answers are merged in key order, one per worker.
    """
    prefix = root.join("annotations", "worker-response", f"iteration-{iteration}").key + "/"
    out: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=root.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            index, _, name = item["Key"][len(prefix) :].partition("/")
            if not index.isdigit() or "/" in name or not name.endswith(".json"):
                continue
            doc = get_json(s3, S3Uri(root.bucket, item["Key"]))
            answers = doc.get("answers") if isinstance(doc, dict) else None
            _, kept = out.setdefault(int(index), (name[: -len(".json")], []))
            seen = {a.get("workerId") for a in kept}
            for answer in answers if isinstance(answers, list) else []:
                if isinstance(answer, dict) and "answerContent" in answer and answer.get("workerId") not in seen:
                    kept.append(answer)
                    seen.add(answer.get("workerId"))
    return out


def _output_line(job: LabelingJobRun, obj: ObjectRun, attr: str, now: datetime) -> dict[str, Any]:
    """The object's output manifest line: its input line, the label (or why not) and the metadata."""
    line = dict(obj.line)
    meta: dict[str, Any] = {
        "type": "groundtruth/custom",
        "job-name": f"labeling-job/{job.name.lower()}",
        "human-annotated": "yes" if obj.answers else "no",
        "creation-date": now.strftime("%Y-%m-%dT%H:%M:%S.%f"),
    }
    if obj.label is not None and obj.failure is None:
        line.update(obj.label)
    else:
        meta["failure-reason"] = obj.failure or "ClientError: the object was not annotated"
        meta["retry-count"] = obj.retries
    line[f"{attr}-metadata"] = meta
    return line
