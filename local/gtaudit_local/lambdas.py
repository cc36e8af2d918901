"""A local Lambda service: each template function runs in warm worker subprocesses.

Every worker gets exactly its function's environment: the template's variables (``Globals``
merged), the variables Lambda itself sets, and ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``
pointing at the embedded services, so handlers run unchanged. A wrong ``Handler`` or ``CodeUri``
fails at the first invoke, as it would in AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from gtaudit_local.aws import CREDENTIALS, REGION
from gtaudit_local.template import FunctionSpec

_WORKER = Path(__file__).with_name("_lambda_worker.py")


class LambdaInvokeError(RuntimeError):
    """The function raised, failed to initialise, timed out or crashed (Lambda's ``FunctionError``)."""

    def __init__(self, function: str, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.error_message = message
        self.trace = trace or []


class UnknownFunctionError(KeyError):
    """No function with that name or ARN is deployed in the local Lambda service."""


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str], log: IO[str], log_lock: threading.Lock) -> None:
        self.spec = spec
        self.tail: deque[str] = deque(maxlen=40)
        self.proc = subprocess.Popen(
            [sys.executable, str(_WORKER), spec.handler],
            cwd=spec.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,  # Ctrl-C goes to the runtime, which then stops workers itself
        )
        self.idle_since = 0.0  # time.monotonic() when last checked in idle
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read_replies, daemon=True).start()
        threading.Thread(target=self._read_log, args=(log, log_lock), daemon=True).start()
        init = self._wait(max(30.0, float(spec.timeout)))
        if init is None or not init.get("ok"):
            self.stop()
            raise self._error(init, "Runtime.ImportModuleError")

    def _read_replies(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self._replies.put(json.loads(line))
        self._replies.put(None)

    def _read_log(self, log: IO[str], lock: threading.Lock) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line.rstrip("\n"))
            with lock:
                log.write(line)
                log.flush()

    def _wait(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": f"timed out after {timeout:.0f} s"}

    def _error(self, reply: dict[str, Any] | None, default_type: str) -> LambdaInvokeError:
        if reply is None:
            time.sleep(0.05)  # let the log reader catch the last lines
            return LambdaInvokeError(
                self.spec.name, "Runtime.ExitError", "the worker exited:\n" + "\n".join(list(self.tail)[-15:])
            )
        return LambdaInvokeError(
            self.spec.name,
            str(reply.get("errorType", default_type)),
            str(reply.get("errorMessage", "")),
            list(reply.get("stackTrace") or []),
        )

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        assert self.proc.stdin is not None
        req = {"event": event, "timeout": self.spec.timeout, "requestId": request_id or str(uuid.uuid4())}
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._error(None, "Runtime.ExitError") from exc
        reply = self._wait(float(self.spec.timeout))
        if reply is None or not reply.get("ok"):
            if reply is None or reply.get("errorType") == "Sandbox.Timedout":
                self.stop()  # a timed-out or crashed environment is discarded, as Lambda does
            raise self._error(reply, "Unhandled")
        return reply.get("result")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class LambdaService:
    """Invoke template functions by name, ARN, logical ID or code folder, in warm subprocesses.

    Parameters
    ----------
    functions
        The template's functions (``Stack.functions``).
    endpoints
        ``{"": moto_url, "SAGEMAKER": gt_url, ...}``: become ``AWS_ENDPOINT_URL`` and
        ``AWS_ENDPOINT_URL_<SERVICE>`` in every function's environment.
    log_dir
        Each function's log (what it prints, plus START/END/REPORT lines) goes to ``<name>.log``.
    concurrency
        Warm environments per function at most.
    idle_timeout
        Stop an environment left idle this many seconds (``None``: never), as Lambda reclaims idle
        ones: a function used only when a job starts (pre-annotation, gold) does not hold a
        process (40-80 MB) for the hours the job runs. Its next call starts cold (about 1 s).
    """

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        endpoints: Mapping[str, str],
        log_dir: Path,
        *,
        concurrency: int = 2,
        crashes: Mapping[str, tuple[Path, int]] | None = None,
        idle_timeout: float | None = 60.0,
    ) -> None:
        self.functions = dict(functions)
        # Fault injection (tests, drills): {function logical ID: (marker file, n)}. That function's
        # processes die (exit 137, as when Lambda kills one) in their first n invocations.
        self.crashes = dict(crashes or {})
        self.endpoints = dict(endpoints)
        self.log_dir = Path(log_dir)
        self.concurrency = concurrency
        self._idle: dict[str, list[_Worker]] = {}
        self._all: list[_Worker] = []
        self._sem: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._logs: dict[str, tuple[IO[str], threading.Lock]] = {}
        self._closed = False
        self.invocations: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.in_flight = 0
        self.idle_timeout = idle_timeout
        self.reaped = 0
        self._stopping = threading.Event()
        if idle_timeout is not None:
            threading.Thread(target=self._reap_loop, name="lambda-reaper", daemon=True).start()

    def spec(self, ref: str) -> FunctionSpec:
        """The function for a name, ARN (qualified or not), logical ID or code folder name."""
        ref = ref.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in ref else ref
        for spec in self.functions.values():
            if ref in {spec.logical_id, spec.name, spec.code_dir.name}:
                return spec
        raise UnknownFunctionError(ref)

    def exists(self, ref: str) -> bool:
        """Whether ``ref`` names a deployed function."""
        try:
            self.spec(ref)
        except UnknownFunctionError:
            return False
        return True

    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """Exactly what the function's process sees."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (spec.code_dir, *spec.layer_dirs)),
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            # What `sam local invoke` sets: Powertools then skips X-Ray, which has no daemon here.
            "AWS_SAM_LOCAL": "true",
            "GTAUDIT_LOCAL_FUNCTION_ARN": spec.arn,
        }
        for service, url in self.endpoints.items():
            env["AWS_ENDPOINT_URL" + (f"_{service.upper()}" if service else "")] = url
        env.update(spec.environment)
        if spec.logical_id in self.crashes:
            marker, times = self.crashes[spec.logical_id]
            env["GTAUDIT_FAULT_CRASHES"] = f"{marker}:{times}"
        return env

    def _log(self, spec: FunctionSpec) -> tuple[IO[str], threading.Lock]:
        with self._lock:
            if spec.name not in self._logs:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                fh = (self.log_dir / f"{spec.name}.log").open("a", encoding="utf-8")
                self._logs[spec.name] = (fh, threading.Lock())
            return self._logs[spec.name]

    def invoke(self, ref: str, event: Any, *, request_id: str | None = None) -> Any:
        """Invoke synchronously (``RequestResponse``); return the handler's result.

        ``request_id`` is the context's ``aws_request_id``: Lambda keeps it across the retries of one
        asynchronous event (the orchestrator's lease owner relies on that); a new one by default.

        Raises
        ------
        UnknownFunctionError
            No such function.
        LambdaInvokeError
            The handler raised, could not be imported, timed out or crashed.
        """
        if self._closed:
            raise RuntimeError("the Lambda service is stopped")
        spec = self.spec(ref)
        with self._lock:
            sem = self._sem.setdefault(spec.name, threading.BoundedSemaphore(self.concurrency))
            self.invocations[spec.name] = self.invocations.get(spec.name, 0) + 1
            self.in_flight += 1
        try:
            with sem:
                worker = self._checkout(spec)
                try:
                    return worker.invoke(event, request_id)
                finally:
                    self._checkin(spec, worker)
        except LambdaInvokeError:
            with self._lock:
                self.errors[spec.name] = self.errors.get(spec.name, 0) + 1
            raise
        finally:
            with self._lock:
                self.in_flight -= 1

    def warm(self, ref: str) -> None:
        """Start one execution environment of a function (its init: imports, module-level clients).

        Raises
        ------
        LambdaInvokeError
            The handler cannot be imported (``Runtime.ImportModuleError`` and the like).
        """
        spec = self.spec(ref)
        self._checkin(spec, self._checkout(spec))

    def _checkout(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            idle = self._idle.setdefault(spec.name, [])
            while idle:
                w = idle.pop()
                if w.alive:
                    return w
        log, log_lock = self._log(spec)
        worker = _Worker(spec, self.environment(spec), log, log_lock)
        with self._lock:
            closed = self._closed
            if not closed:
                self._all.append(worker)
        if closed:  # close() ran during the cold start and cannot see this worker: stop it here
            worker.stop()
            raise RuntimeError("the Lambda service is stopped")
        return worker

    def _checkin(self, spec: FunctionSpec, worker: _Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                worker.idle_since = time.monotonic()
                self._idle.setdefault(spec.name, []).append(worker)

    def reap_idle(self, now: float | None = None) -> int:
        """Stop the environments idle for more than ``idle_timeout`` seconds at ``now``; how many."""
        if self.idle_timeout is None:
            return 0
        at, limit = time.monotonic() if now is None else now, self.idle_timeout
        return self._stop_idle(lambda w: at - w.idle_since > limit)

    def release_idle(self) -> int:
        """Stop every idle environment now, whatever its idle time; how many (a busy one stays).

        For a caller that knows no call is coming for a while: the next call starts cold.
        """
        return self._stop_idle(lambda _w: True)

    def _stop_idle(self, stale_if: Callable[[_Worker], bool]) -> int:
        with self._lock:
            stale = [w for idle in self._idle.values() for w in idle if stale_if(w)]
            for name, idle in self._idle.items():
                self._idle[name] = [w for w in idle if w not in stale]
            self._all = [w for w in self._all if w not in stale]
            self.reaped += len(stale)
        for w in stale:
            w.stop()
        return len(stale)

    def _reap_loop(self) -> None:
        assert self.idle_timeout is not None
        while not self._stopping.wait(max(1.0, self.idle_timeout / 4)):
            self.reap_idle()

    def close(self) -> None:
        """Stop every worker process and close the logs."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
            self._idle.clear()
        for w in workers:
            w.stop()
        with self._lock:
            for fh, _ in self._logs.values():
                fh.close()
            self._logs.clear()

    def pids(self) -> list[int]:
        """The live worker processes (for tests and diagnostics)."""
        with self._lock:
            return [w.proc.pid for w in self._all if w.alive]


class LambdaApi:
    """Lambda's ``Invoke`` API on ``127.0.0.1`` (``AWS_ENDPOINT_URL_LAMBDA``), over a ``LambdaService``.

    ``RequestResponse`` answers with the result (``X-Amz-Function-Error: Unhandled`` and Lambda's
    error JSON when the function raised); ``Event`` queues the invoke and answers 202, as Lambda
    does for asynchronous invocations (one retry-free attempt locally); ``DryRun`` answers 204.
    """

    def __init__(self, service: LambdaService, *, async_workers: int = 2) -> None:
        self.service = service
        self.endpoint = ""
        self._server: ThreadingHTTPServer | None = None
        self._pool = ThreadPoolExecutor(max_workers=async_workers, thread_name_prefix="lambda-async")
        self._lock = threading.Lock()
        self._pending = 0
        self.async_errors: list[str] = []

    @property
    def pending(self) -> int:
        """Asynchronous invokes not finished yet."""
        with self._lock:
            return self._pending

    def start(self) -> LambdaApi:
        """Serve on a free port of 127.0.0.1."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                m = re.match(r"^/2015-03-31/functions/([^/]+)/invocations", self.path)
                status, headers, body = (
                    api.invoke(unquote(m.group(1)), raw, self.headers.get("X-Amz-Invocation-Type", "RequestResponse"))
                    if m
                    else (404, {}, json.dumps({"Type": "User", "message": "not emulated"}).encode())
                )
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="lambda-api", daemon=True).start()
        return self

    def invoke(self, name: str, raw: bytes, invocation_type: str) -> tuple[int, dict[str, str], bytes]:
        """Answer one ``Invoke``: (status, headers, body)."""
        if not self.service.exists(name):
            msg = {"Type": "User", "message": f"Function not found: {name}"}
            return 404, {"x-amzn-ErrorType": "ResourceNotFoundException"}, json.dumps(msg).encode()
        try:
            event = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            msg = {"Type": "User", "message": "Could not parse request body into json"}
            return 400, {"x-amzn-ErrorType": "InvalidRequestContentException"}, json.dumps(msg).encode()
        if invocation_type == "DryRun":
            return 204, {}, b""
        if invocation_type == "Event":
            with self._lock:
                self._pending += 1
            self._pool.submit(self._run_async, name, event)
            return 202, {}, b""
        try:
            result = self.service.invoke(name, event)
        except LambdaInvokeError as exc:
            err = {"errorMessage": exc.error_message, "errorType": exc.error_type, "stackTrace": exc.trace}
            return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(err).encode()
        return 200, {"X-Amz-Executed-Version": "$LATEST"}, json.dumps(result).encode()

    def _run_async(self, name: str, event: Any) -> None:
        try:
            self.service.invoke(name, event)
        except Exception as exc:  # recorded; Lambda would send it to the function's DLQ
            with self._lock:
                self.async_errors.append(f"{name}: {exc}")
        finally:
            with self._lock:
                self._pending -= 1

    def stop(self) -> None:
        """Stop serving, close the port, wait for queued asynchronous invokes."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._pool.shutdown(wait=True, cancel_futures=True)
