"""One warm Lambda execution environment: import the handler once, then serve invokes over a pipe.

Run by ``gtaudit_local.lambdas`` as ``python _lambda_worker.py <module.function>`` in the function's
code folder, with exactly the function's environment. Requests arrive as JSON lines on stdin;
replies go to the original stdout, which is then pointed at stderr so that whatever the handler
prints (Powertools logs, EMF metrics) lands in the function's log, as in Lambda.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class Context:
    """The Lambda context object."""

    def __init__(self, deadline: float, request_id: str) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("GTAUDIT_LOCAL_FUNCTION_ARN", "")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _exit_with_parent() -> None:
    """Leave when the runtime process is gone, even mid-invoke (stdin EOF only ends an idle worker)."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _crash(spec: str) -> None:
    """Injected fault ``<marker file>:<n>``: die mid-invocation, as a killed process does, the first
    ``n`` times (the marker file holds one byte per death, shared by the function's processes)."""
    path, _, times = spec.rpartition(":")
    marker = Path(path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    with marker.open("ab") as fh:
        if fh.tell() >= int(times):
            return
        fh.write(b"x")
    print("fault injection: this execution environment dies now", file=sys.stderr, flush=True)
    os._exit(137)


def main() -> int:
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, default=str) + "\n")
        out.flush()

    module_name, _, func_name = sys.argv[1].rpartition(".")
    sys.path.insert(0, str(Path.cwd()))
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # an init error is the function's error, reported to the caller
        reply({"init": True, **_error(exc)})
        return 1
    reply({"init": True, "ok": True})
    crashes = os.environ.get("GTAUDIT_FAULT_CRASHES")
    for line in sys.stdin:
        req = json.loads(line)
        if crashes:
            _crash(crashes)
        request_id = req.get("requestId") or str(uuid.uuid4())
        ctx = Context(time.time() + float(req.get("timeout", 3)), request_id)
        print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            result = handler(req["event"], ctx)
            msg: dict[str, Any] = {"ok": True, "result": result}
            json.dumps(msg)  # an unserializable result is the function's error, as in Lambda
        except Exception as exc:
            msg = _error(exc)
            # Lambda's Python runtime logs an unhandled error this way before it answers.
            print(f"[ERROR] {msg['errorType']}: {msg['errorMessage']}", file=sys.stderr)
            print("".join(msg["stackTrace"]), file=sys.stderr, flush=True)
        ms = (time.perf_counter() - started) * 1000
        print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id} Duration: {ms:.2f} ms",
              file=sys.stderr, flush=True)  # fmt: skip
        reply(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
