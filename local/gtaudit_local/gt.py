"""A Ground Truth emulator: SageMaker's labeling-job API over HTTP, and a job runner that acts as GT does.

API (JSON 1.1, ``X-Amz-Target: SageMaker.<Operation>``, so an unmodified boto3 ``sagemaker`` client
with ``AWS_ENDPOINT_URL_SAGEMAKER`` talks to it): ``CreateLabelingJob``, ``DescribeLabelingJob``,
``ListLabelingJobs``, ``StopLabelingJob``. ``CreateLabelingJob`` applies GT's validation: name and
label attribute name rules, required fields, value ranges, S3 URIs, role and workteam ARNs, Lambda
ARNs that exist in the local Lambda service, and job names unique case-insensitively.

The runner, per job (reference sections 1, 2, 4, 6, 7): read the input manifest; call the
pre-annotation Lambda per object; render the Liquid template from ``UiTemplateS3Uri``; hand each
task to ``NumberOfHumanWorkersPerDataObject`` workers of the workteam (a returned or abandoned task
is offered to another worker, up to ``max_reoffers`` times); write the worker-response files; write
the consolidation request and call the consolidation Lambda; write the consolidation response and
``manifests/output/output.manifest``; publish the job state change event to the default bus.

Choices where GT's behaviour is not documented:
- An object whose pre-annotation Lambda returns ``isHumanAnnotationRequired: false`` is not sent to
  workers and appears in the output manifest with a ``failure-reason`` (and the ``skipReason`` the
  Lambda gave), so every input object is accounted for.
- An object that got fewer answers than requested (workers returned or abandoned it) is
  consolidated with the answers it has; with none it fails with a ``failure-reason``.
- All objects of a job go to the consolidation Lambda in one batch.
- The same HTTP server serves ``grant_read_access`` URLs: HMAC-signed, expiring
  ``http://127.0.0.1:<port>/s3/<bucket>/<key>`` links that stream the S3 object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from botocore.exceptions import ClientError
from gtaudit import layout
from gtaudit.exceptions import InvalidNameError, InvalidS3UriError
from gtaudit.manifest import BadLine, dumps_line, iter_manifest
from gtaudit.names import parse_job_name, validate_attribute_name, validate_job_name
from gtaudit.s3io import get_bytes, get_json, iter_lines, put_bytes, put_json
from gtaudit.s3uri import S3Uri, parse_s3_uri

from gtaudit_local.aws import ACCOUNT_ID, REGION
from gtaudit_local.lambdas import LambdaInvokeError, LambdaService, UnknownFunctionError
from gtaudit_local.liquid import render_task

log = logging.getLogger(__name__)

STATE_CHANGE = "SageMaker Ground Truth Labeling Job State Change"
ACTIVITY_LOG_GROUP = "/aws/sagemaker/groundtruth/WorkerActivity"
COGNITO_POOL = f"{REGION}_gtauditLocal"
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_WORKTEAM_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:workteam/.+$")
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z\-]*:lambda:[a-z0-9\-]*:[0-9]{12}:function:.+$")
_TERMINAL = {"Completed", "Failed", "Stopped"}


class ApiError(Exception):
    """An API error answered as ``{"__type": code, "message": ...}`` with HTTP 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def _iso_ms(dt: datetime) -> str:
    """``2026-11-24T09:58:01.123Z``, GT's worker-response time format."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _file_stamp(dt: datetime) -> str:
    """``2026-11-24_10:00:00``, GT's file-name time format."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d_%H:%M:%S")


def _activity_time(dt: datetime) -> str:
    """``Wed Aug 14 16:00:59 UTC 2019``, the WorkerActivity log's time format."""
    return dt.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


@dataclass
class ObjectResult:
    """What became of one data object in one job."""

    index: int
    line: dict[str, Any]
    task_input: dict[str, Any] | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    retries: int = 0
    label: dict[str, Any] | None = None  # the consolidated content (``{attr: ...}``)
    done: bool = False


@dataclass
class Job:
    """One labeling job: its request, status and progress."""

    request: dict[str, Any]
    arn: str
    created: float
    status: str = "InProgress"
    modified: float = 0.0
    failure_reason: str | None = None
    total: int = 0
    finished: int = 0
    labeled: int = 0
    failed: int = 0
    phase: str = "queued"
    stop_requested: bool = False
    output_manifest: str | None = None
    kind: str = "labeling"
    round: int = 1

    @property
    def name(self) -> str:
        return str(self.request["LabelingJobName"])

    def counters(self) -> dict[str, int]:
        return {
            "TotalLabeled": self.labeled,
            "HumanLabeled": self.labeled,
            "MachineLabeled": 0,
            "FailedNonRetryableError": self.failed,
            "Unlabeled": max(0, self.total - self.labeled - self.failed),
        }


def _get(d: Mapping[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _outcome(job: Job) -> dict[str, Any]:
    """The ``FailureReason`` and ``LabelingJobOutput`` that Describe and List report once known."""
    out: dict[str, Any] = {}
    if job.failure_reason:
        out["FailureReason"] = job.failure_reason
    if job.output_manifest:
        out["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.output_manifest}
    return out


class GroundTruthEmulator:
    """The emulator: an HTTP API server plus a runner thread per job.

    Parameters
    ----------
    s3, events, logs
        boto3 clients on the embedded AWS (what GT itself would use under its execution role).
    lambdas
        The local Lambda service; Lambda ARNs in requests must exist there.
    workteams
        ``{WorkteamArn: [Worker, ...]}``: the private workforces and their (scripted) workers.
    max_reoffers
        How many times a returned or abandoned task is offered to another worker.
    concurrency
        Data objects of one job worked at the same time.
    """

    def __init__(
        self,
        *,
        s3: Any,
        events: Any,
        logs: Any | None,
        lambdas: LambdaService,
        workteams: Mapping[str, Sequence[Any]],
        max_reoffers: int = 3,
        concurrency: int = 2,
    ) -> None:
        self.s3 = s3
        self.events = events
        self.logs = logs
        self.lambdas = lambdas
        self.workteams: dict[str, list[Any]] = {k: list(v) for k, v in workteams.items()}
        self.max_reoffers = max_reoffers
        self.concurrency = concurrency
        self.jobs: dict[str, Job] = {}  # by lower-case name
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._active = 0
        self._closing = threading.Event()
        self._log_stream_ready: set[str] = set()
        self._worker_locks: dict[int, threading.Lock] = {}
        self.endpoint = ""
        self.listeners: list[Callable[[Job], None]] = []

    # ------------------------------------------------------------------ server
    def start(self) -> GroundTruthEmulator:
        """Serve on ``127.0.0.1`` on a free port; ``endpoint`` is then its URL."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("gt-emulator: " + format, *args)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                target = self.headers.get("X-Amz-Target", "")
                status, payload = emulator.handle(target, raw)
                body = json.dumps(payload, default=str).encode("utf-8")
                self._send(status, body, "application/x-amz-json-1.1")

            def do_GET(self) -> None:
                status, body, ctype = emulator.serve_object(self.path)
                self._send(status, body, ctype)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        t = threading.Thread(target=self._server.serve_forever, name="gt-emulator", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop the API server, ask running jobs to stop, and wait briefly for them."""
        self._closing.set()
        with self._lock:
            for job in self.jobs.values():
                job.stop_requested = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        deadline = time.monotonic() + 10  # a job blocked on a person at a browser must not hold shutdown
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def busy(self) -> bool:
        """Whether a job is still running (its state change event not yet published)."""
        with self._lock:
            return self._active > 0

    # ------------------------------------------------------------------ grant_read_access
    def url_for(self, uri: str, expires_in: int = 3600) -> str:
        """A short-lived local URL streaming the S3 object ``uri`` (what ``grant_read_access`` gives)."""
        parsed = parse_s3_uri(uri)
        expires = int(time.time()) + expires_in
        path = f"/s3/{parsed.bucket}/{quote(parsed.key)}"
        sig = hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{self.endpoint}{path}?X-Amz-Expires={expires}&X-Amz-Signature={sig}"

    def serve_object(self, raw_path: str) -> tuple[int, bytes, str]:
        """Answer a GET of a ``url_for`` link: the object, or 403/404."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if not parts.path.startswith("/s3/"):
            return 404, b"not found", "text/plain"
        try:
            expires = int(query["X-Amz-Expires"][0])
            sig = query["X-Amz-Signature"][0]
        except (KeyError, ValueError, IndexError):
            return 403, b"missing signature", "text/plain"
        want = hmac.new(self._secret, f"{parts.path}\n{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig) or expires < time.time():
            return 403, b"signature invalid or expired", "text/plain"
        bucket, _, key = parts.path[4:].partition("/")
        try:
            resp = self.s3.get_object(Bucket=bucket, Key=unquote(key))
        except ClientError:
            return 404, b"no such object", "text/plain"
        body: bytes = resp["Body"].read()
        return 200, body, str(resp.get("ContentType") or "application/octet-stream")

    # ------------------------------------------------------------------ API
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

    def validate_create(self, req: dict[str, Any]) -> None:
        """GT's checks on ``CreateLabelingJob``; raise ``ApiError`` on the first failure."""
        required = (
            "LabelingJobName",
            "LabelAttributeName",
            "InputConfig.DataSource",
            "OutputConfig.S3OutputPath",
            "RoleArn",
            "HumanTaskConfig.WorkteamArn",
            "HumanTaskConfig.UiConfig",
            "HumanTaskConfig.TaskTitle",
            "HumanTaskConfig.TaskDescription",
            "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
            "HumanTaskConfig.TaskTimeLimitInSeconds",
        )
        for path in required:
            if _get(req, path) is None:
                raise _validation(f"Missing required field: {path}")
        try:
            validate_job_name(req["LabelingJobName"])
            validate_attribute_name(req["LabelAttributeName"], custom=True)
        except InvalidNameError as exc:
            raise _validation(str(exc)) from exc
        manifest = _get(req, "InputConfig.DataSource.S3DataSource.ManifestS3Uri")
        if manifest is None:
            raise _validation("InputConfig.DataSource: only S3DataSource.ManifestS3Uri is emulated (no SNS streaming)")
        uris = {"ManifestS3Uri": manifest, "S3OutputPath": req["OutputConfig"]["S3OutputPath"]}
        ui = req["HumanTaskConfig"]["UiConfig"]
        if "UiTemplateS3Uri" not in ui:
            raise _validation("UiConfig: only UiTemplateS3Uri (a custom template) is emulated, not HumanTaskUiArn")
        uris["UiTemplateS3Uri"] = ui["UiTemplateS3Uri"]
        if req.get("LabelCategoryConfigS3Uri") is not None:
            uris["LabelCategoryConfigS3Uri"] = req["LabelCategoryConfigS3Uri"]
        for key, uri in uris.items():
            try:
                if key == "S3OutputPath":
                    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) > 1024:
                        raise InvalidS3UriError(f"not an s3:// URI: {uri!r}")
                    parse_s3_uri(uri.rstrip("/") + "/x")
                else:
                    parse_s3_uri(uri)
            except InvalidS3UriError as exc:
                raise _validation(f"{key}: {exc}") from exc
        if not isinstance(req["RoleArn"], str) or not _ROLE_ARN.match(req["RoleArn"]):
            raise _validation(f"RoleArn {req['RoleArn']!r} is not an IAM role ARN")
        htc = req["HumanTaskConfig"]
        if not _WORKTEAM_ARN.match(str(htc["WorkteamArn"])):
            raise _validation(f"WorkteamArn {htc['WorkteamArn']!r} is not a workteam ARN")
        if htc["WorkteamArn"] not in self.workteams:
            raise _validation(f"Workteam {htc['WorkteamArn']} does not exist")
        self._range(htc, "TaskTitle", 1, 128, length=True)
        self._range(htc, "TaskDescription", 1, 255, length=True)
        self._range(htc, "NumberOfHumanWorkersPerDataObject", 1, 9)
        self._range(htc, "TaskTimeLimitInSeconds", 30, 28_800)
        self._range(htc, "TaskAvailabilityLifetimeInSeconds", 60, 864_000)
        self._range(htc, "MaxConcurrentTaskCount", 1, 5_000)
        keywords = htc.get("TaskKeywords")
        if keywords is not None and (
            not isinstance(keywords, list)
            or not 1 <= len(keywords) <= 5
            or any(not isinstance(k, str) or not 1 <= len(k) <= 30 for k in keywords)
        ):
            raise _validation("TaskKeywords: 1-5 keywords of 1-30 characters")
        pre = htc.get("PreHumanTaskLambdaArn")
        post = _get(htc, "AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn")
        for key, arn in (("PreHumanTaskLambdaArn", pre), ("AnnotationConsolidationLambdaArn", post)):
            if arn is None:
                raise _validation(f"{key} is required for a custom task type")
            if not isinstance(arn, str) or not _LAMBDA_ARN.match(arn):
                raise _validation(f"{key} {arn!r} is not a Lambda function ARN")
            if not self.lambdas.exists(arn):
                raise _validation(f"{key}: function {arn} does not exist")
        tags = req.get("Tags") or []
        if len(tags) > 50:
            raise _validation("Tags: at most 50")

    @staticmethod
    def _range(d: Mapping[str, Any], key: str, lo: int, hi: int, *, length: bool = False) -> None:
        if key not in d:
            return
        value = d[key]
        n = len(value) if length and isinstance(value, str) else value
        if not isinstance(n, int) or isinstance(n, bool) or not lo <= n <= hi:
            what = "length" if length else "value"
            raise _validation(f"{key}: {what} must be between {lo} and {hi}, got {value!r}")

    def create_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``CreateLabelingJob``: validate, register, start the runner."""
        self.validate_create(req)
        if self._closing.is_set():
            raise ApiError("ServiceUnavailable", "the emulator is shutting down")
        name = req["LabelingJobName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:labeling-job/{name.lower()}"
        now = time.time()
        job = Job(request=req, arn=arn, created=now, modified=now)
        job.kind, job.round = _kind_and_round(req)
        with self._lock:
            if name.lower() in self.jobs:
                raise ApiError("ResourceInUse", f"Labeling job {name} already exists (names are case-insensitive)")
            self.jobs[name.lower()] = job
            self._active += 1
        t = threading.Thread(target=self._run_guarded, args=(job,), name=f"gt-job-{name}", daemon=True)
        self._threads.append(t)
        t.start()
        return {"LabelingJobArn": arn}

    def _job(self, name: Any) -> Job:
        if not isinstance(name, str):
            raise _validation("LabelingJobName is required")
        with self._lock:
            job = self.jobs.get(name.lower())
        if job is None:
            raise ApiError("ResourceNotFound", f"Could not find labeling job {name}")
        return job

    def describe_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``DescribeLabelingJob``."""
        job = self._job(req.get("LabelingJobName"))
        r = job.request
        out: dict[str, Any] = {
            "LabelingJobStatus": job.status,
            "LabelCounters": job.counters(),
            "CreationTime": job.created,
            "LastModifiedTime": job.modified,
            "JobReferenceCode": hashlib.sha256(job.arn.encode()).hexdigest()[:16],
            "LabelingJobName": job.name,
            "LabelingJobArn": job.arn,
            "LabelAttributeName": r["LabelAttributeName"],
            "InputConfig": r["InputConfig"],
            "OutputConfig": r["OutputConfig"],
            "RoleArn": r["RoleArn"],
            "HumanTaskConfig": r["HumanTaskConfig"],
        }
        for key in ("LabelCategoryConfigS3Uri", "StoppingConditions", "Tags"):
            if key in r:
                out[key] = r[key]
        return {**out, **_outcome(job)}

    def list_labeling_jobs(self, req: dict[str, Any]) -> dict[str, Any]:
        """``ListLabelingJobs`` with its filters, sorting and paging."""
        with self._lock:
            jobs = list(self.jobs.values())
        if req.get("NameContains"):
            jobs = [j for j in jobs if str(req["NameContains"]).lower() in j.name.lower()]
        if req.get("StatusEquals"):
            jobs = [j for j in jobs if j.status == req["StatusEquals"]]
        for key, attr, after in (
            ("CreationTimeAfter", "created", True),
            ("CreationTimeBefore", "created", False),
            ("LastModifiedTimeAfter", "modified", True),
            ("LastModifiedTimeBefore", "modified", False),
        ):
            if req.get(key) is not None:
                limit = float(req[key])
                jobs = [j for j in jobs if (getattr(j, attr) > limit) == after]
        sort_by = req.get("SortBy", "CreationTime")
        keyf: Callable[[Job], Any] = {
            "Name": lambda j: j.name,
            "Status": lambda j: j.status,
        }.get(sort_by, lambda j: j.created)
        jobs.sort(key=keyf, reverse=req.get("SortOrder", "Ascending") == "Descending")
        max_results = int(req.get("MaxResults") or 10)
        if not 1 <= max_results <= 100:
            raise _validation("MaxResults must be between 1 and 100")
        start = int(req["NextToken"]) if str(req.get("NextToken") or "").isdigit() else 0
        page = jobs[start : start + max_results]
        out: dict[str, Any] = {"LabelingJobSummaryList": [self._summary(j) for j in page]}
        if start + max_results < len(jobs):
            out["NextToken"] = str(start + max_results)
        return out

    @staticmethod
    def _summary(job: Job) -> dict[str, Any]:
        htc = job.request["HumanTaskConfig"]
        s: dict[str, Any] = {
            "LabelingJobName": job.name,
            "LabelingJobArn": job.arn,
            "CreationTime": job.created,
            "LastModifiedTime": job.modified,
            "LabelingJobStatus": job.status,
            "LabelCounters": job.counters(),
            "WorkteamArn": htc["WorkteamArn"],
            "PreHumanTaskLambdaArn": htc.get("PreHumanTaskLambdaArn", ""),
            "InputConfig": job.request["InputConfig"],
        }
        post = _get(htc, "AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn")
        if post:
            s["AnnotationConsolidationLambdaArn"] = post
        return {**s, **_outcome(job)}

    def stop_labeling_job(self, req: dict[str, Any]) -> dict[str, Any]:
        """``StopLabelingJob``: an in-progress job becomes ``Stopping``, then ``Stopped``."""
        job = self._job(req.get("LabelingJobName"))
        with self._lock:
            if job.status == "InProgress":
                job.status = "Stopping"
                job.modified = time.time()
                job.stop_requested = True
        return {}

    # ------------------------------------------------------------------ runner
    def _run_guarded(self, job: Job) -> None:
        try:
            self._run(job)
        except Exception as exc:  # a job-level failure: the job fails with a reason, as in GT
            log.warning("gt-emulator: job %s failed: %s", job.name, exc)
            log.debug("%s", traceback.format_exc())
            self._finish(job, "Failed", f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active -= 1

    def _finish(self, job: Job, status: str, reason: str | None = None) -> None:
        with self._lock:
            job.status = status
            job.failure_reason = reason
            job.modified = time.time()
            job.phase = status.lower()
        detail = {"LabelingJobStatus": status}
        try:
            resp = self.events.put_events(
                Entries=[
                    {
                        "Source": "aws.sagemaker",
                        "DetailType": STATE_CHANGE,
                        "Detail": json.dumps(detail),
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
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(job)

    def _run(self, job: Job) -> None:
        req = job.request
        htc = req["HumanTaskConfig"]
        attr = req["LabelAttributeName"]
        root = layout.job_root(req["OutputConfig"]["S3OutputPath"], job.name)
        job.phase = "reading manifest"
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
        results = [ObjectResult(i, line) for i, line in enumerate(lines)]
        job.phase = "annotating"
        workers = self.workteams[htc["WorkteamArn"]]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"gt-{job.name[:20]}") as pool:
            list(pool.map(lambda r: self._work_object(job, r, template, workers, root), results))
        iteration = 1
        if job.stop_requested:
            for r in results:
                if not r.done:
                    r.failure = "ClientError: the labeling job was stopped before this object was annotated"
        job.phase = "consolidating"
        batch = [r for r in results if r.answers and r.failure is None]
        if batch:
            self._consolidate(job, batch, root, iteration, categories)
        job.phase = "writing output"
        out_uri = layout.output_manifest(root)
        now = datetime.now(UTC)
        body = "".join(dumps_line(self._output_line(job, r, attr, now)) for r in results)
        put_bytes(self.s3, out_uri, body.encode("utf-8"), "application/jsonlines")
        job.output_manifest = str(out_uri)
        job.labeled = sum(1 for r in results if r.label is not None)
        job.failed = len(results) - job.labeled
        job.finished = len(results)
        self._finish(job, "Stopped" if job.stop_requested else "Completed")

    def _pre(self, job: Job, r: ObjectResult) -> bool:
        """Call the pre-annotation Lambda; return whether the object goes to workers."""
        pre = job.request["HumanTaskConfig"]["PreHumanTaskLambdaArn"]
        event = {"version": "2018-10-16", "labelingJobArn": job.arn, "dataObject": r.line}
        try:
            resp = self.lambdas.invoke(pre, event)
        except (LambdaInvokeError, UnknownFunctionError) as exc:
            r.failure = f"ClientError: the pre-annotation Lambda failed: {exc}"[:1024]
            return False
        if not isinstance(resp, dict) or not isinstance(resp.get("taskInput"), dict):
            r.failure = "ClientError: the pre-annotation Lambda did not return a taskInput object"
            return False
        r.task_input = resp["taskInput"]
        required = resp.get("isHumanAnnotationRequired", True)
        if isinstance(required, str):
            required = required.strip().lower() != "false"
        if required is False:
            skip = r.task_input.get("skipReason")
            r.failure = "ClientError: the pre-annotation Lambda set isHumanAnnotationRequired to false" + (
                f": {skip}" if skip else ""
            )
            return False
        return True

    def _work_object(self, job: Job, r: ObjectResult, template: str, workers: list[Any], root: S3Uri) -> None:
        if job.stop_requested:
            return
        try:
            if not self._pre(job, r):
                return
            assert r.task_input is not None
            html = render_task(template, r.task_input, self.url_for)
            self._ask_workers(job, r, html, workers, root)
        except Exception as exc:  # one object's failure never sinks the job
            log.warning("gt-emulator: %s object %d failed: %s", job.name, r.index, exc)
            r.failure = f"ClientError: {type(exc).__name__}: {exc}"[:1024]
        finally:
            r.done = True
            with self._lock:
                job.finished += 1
                job.modified = time.time()

    def _ask_workers(self, job: Job, r: ObjectResult, html: str, workers: list[Any], root: S3Uri) -> None:
        from gtaudit_local.workers import Task  # the worker interface; imported late, it is a sibling's module

        htc = job.request["HumanTaskConfig"]
        want = int(htc["NumberOfHumanWorkersPerDataObject"])
        iteration = 1
        task = Task(
            job_name=job.name,
            kind=job.kind,
            dataset_object_id=str(r.index),
            data_object=r.line,
            task_input=r.task_input or {},
            html=html,
            iteration=iteration,
        )
        start = r.index % len(workers) if workers else 0
        candidates = workers[start:] + workers[:start]
        offers = 0
        not_done: dict[str, int] = {}
        for worker in candidates:
            if len(r.answers) >= want or offers >= want + self.max_reoffers or job.stop_requested:
                break
            offers += 1
            try:
                with self._worker_lock(worker):  # a person works one task at a time
                    answer = worker.work(task, self.s3)
            except Exception as exc:
                log.warning("gt-emulator: worker %s raised on %s/%d: %s", worker.worker_id, job.name, r.index, exc)
                not_done["abandoned"] = not_done.get("abandoned", 0) + 1
                continue
            limit = float(htc["TaskTimeLimitInSeconds"])
            if answer.status == "submitted" and answer.submitted_at is not None:
                took = (answer.submitted_at - answer.accepted_at).total_seconds()
                if took > limit:  # GT takes the task back when its time limit runs out
                    answer = dataclasses.replace(answer, status="abandoned", content=None, submitted_at=None)
            self._activity(job, worker, answer)
            if answer.status == "submitted" and answer.content is not None:
                submitted = answer.submitted_at or answer.accepted_at
                r.answers.append(
                    {
                        "acceptanceTime": _iso_ms(answer.accepted_at),
                        "answerContent": answer.content,
                        "submissionTime": _iso_ms(submitted),
                        "timeSpentInSeconds": round(float(answer.active_seconds), 3),
                        "workerId": worker.worker_id,
                        "workerMetadata": {
                            "identityData": {
                                "identityProviderType": "Cognito",
                                "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{COGNITO_POOL}",
                                "sub": worker.sub,
                            }
                        },
                    }
                )
            else:
                not_done[answer.status] = not_done.get(answer.status, 0) + 1
        r.retries = sum(not_done.values())
        if r.answers:
            stamp = _file_stamp(datetime.now(UTC))
            put_json(self.s3, layout.worker_response(root, iteration, r.index, stamp), {"answers": r.answers})
        else:
            detail = ", ".join(f"{n} {status}" for status, n in sorted(not_done.items())) or "no worker available"
            r.failure = f"ClientError: the task expired: no worker submitted an annotation ({detail})"

    def _worker_lock(self, worker: Any) -> threading.Lock:
        with self._lock:
            return self._worker_locks.setdefault(id(worker), threading.Lock())

    def _activity(self, job: Job, worker: Any, answer: Any) -> None:
        """One WorkerActivity log entry per task, as private workforces log them."""
        if self.logs is None:
            return
        team = job.request["HumanTaskConfig"]["WorkteamArn"]
        stream = team.rsplit("/", 1)[-1]
        entry: dict[str, Any] = {
            "worker_id": worker.worker_id,
            "cognito_user_pool_id": COGNITO_POOL,
            "cognito_sub_id": worker.sub,
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

    def _consolidate(
        self, job: Job, batch: list[ObjectResult], root: S3Uri, iteration: int, categories: list[Any] | None
    ) -> None:
        req = job.request
        attr = req["LabelAttributeName"]
        htc = req["HumanTaskConfig"]
        stamp = _file_stamp(datetime.now(UTC))
        request_uri = layout.consolidation_request(root, iteration, stamp)
        payload = []
        for r in batch:
            src = r.line.get("source-ref")
            data_object = {"s3Uri": src} if isinstance(src, str) else {"content": r.line.get("source")}
            payload.append(
                {
                    "datasetObjectId": str(r.index),
                    "dataObject": data_object,
                    "annotations": [
                        {"workerId": a["workerId"], "annotationData": {"content": json.dumps(a["answerContent"])}}
                        for a in r.answers
                    ],
                }
            )
        put_json(self.s3, request_uri, payload)
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
            resp = self.lambdas.invoke(post, event)
        except (LambdaInvokeError, UnknownFunctionError) as exc:
            for r in batch:
                r.failure = f"ClientError: the annotation consolidation Lambda failed: {exc}"[:1024]
            return
        put_json(self.s3, layout.consolidation_response(root, iteration, stamp), resp)
        by_id: dict[str, Any] = {}
        if isinstance(resp, list):
            for entry in resp:
                if isinstance(entry, dict) and "datasetObjectId" in entry:
                    by_id[str(entry["datasetObjectId"])] = entry
        for r in batch:
            entry = by_id.get(str(r.index))
            content = _get(entry, "consolidatedAnnotation.content") if isinstance(entry, dict) else None
            if not isinstance(content, dict) or not content:
                r.failure = "ClientError: the annotation consolidation Lambda returned no annotation for this object"
                continue
            r.label = content

    @staticmethod
    def _output_line(job: Job, r: ObjectResult, attr: str, now: datetime) -> dict[str, Any]:
        line = dict(r.line)
        meta: dict[str, Any] = {
            "type": "groundtruth/custom",
            "job-name": f"labeling-job/{job.name.lower()}",
            "human-annotated": "yes" if r.answers else "no",
            "creation-date": now.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        }
        if r.label is not None and r.failure is None:
            line.update(r.label)
        else:
            meta["failure-reason"] = r.failure or "ClientError: the object was not annotated"
            meta["retry-count"] = r.retries
        line[f"{attr}-metadata"] = meta
        return line


def _kind_and_round(req: Mapping[str, Any]) -> tuple[str, int]:
    """The job's stage (labeling, audit or rework) and round: from tags, else the job name, else the attribute."""
    tags = {str(t.get("Key")): str(t.get("Value")) for t in req.get("Tags") or [] if isinstance(t, dict)}
    kind = tags.get("gtaudit:kind")
    rnd = tags.get("gtaudit:round")
    parts = parse_job_name(str(req.get("LabelingJobName", "")))
    if kind is None and parts is not None:
        kind = parts.kind
    if rnd is None and parts is not None:
        rnd = str(parts.round)
    attr = str(req.get("LabelAttributeName", ""))
    m = re.search(r"-r(\d+)$", attr)
    if rnd is None and m:
        rnd = m.group(1)
    if kind is None:
        kind = "audit" if attr.startswith("audit") else ("rework" if rnd and int(rnd) > 1 else "labeling")
    return kind, int(rnd) if rnd and rnd.isdigit() else 1
