"""The local Lambda service: worker processes start, stop and never leak."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from gtaudit_local.lambdas import LambdaService
from gtaudit_local.template import FunctionSpec


def test_lambda_service_closed_during_a_cold_start_leaves_no_worker_process(tmp_path: Path) -> None:
    """close() during a cold start used to miss the worker being started: it was added to the
    service's list after close had emptied it, so its process outlived the runtime's shutdown."""
    code = tmp_path / "fn"
    code.mkdir()
    pid_file = tmp_path / "pid"
    (code / "app.py").write_text(
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(1.5)\n"
        "def lambda_handler(event, context):\n    return 'ok'\n"
    )
    spec = FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", code, "app.lambda_handler",
                        "python3.13", 30, 128, {}, (), ())  # fmt: skip
    service = LambdaService({"Fn": spec}, {"": "http://127.0.0.1:9"}, tmp_path / "logs")
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(service.invoke("fn", {}))
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    service.close()
    t.join(timeout=30)
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    if alive:  # clean up the process this test started before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive
    assert isinstance(outcome[0], RuntimeError)


def test_an_idle_environment_is_reclaimed_and_the_next_call_starts_a_new_one(tmp_path: Path) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("import os\ndef lambda_handler(event, context):\n    return os.getpid()\n")
    spec = FunctionSpec("Fn", "fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", code, "app.lambda_handler",
                        "python3.13", 30, 128, {}, (), ())  # fmt: skip
    service = LambdaService({"Fn": spec}, {"": "http://127.0.0.1:9"}, tmp_path / "logs", idle_timeout=600)
    try:
        first = service.invoke("fn", {})
        assert service.reap_idle() == 0 and service.pids() == [first]  # idle for less than 600 s: kept
        assert service.reap_idle(now=time.monotonic() + 601) == 1  # as if 10 minutes passed
        assert service.pids() == []
        with contextlib.suppress(ProcessLookupError):
            os.kill(first, 0)
            raise AssertionError("the reclaimed environment's process is still running")
        second = service.invoke("fn", {})
        assert second != first and service.pids() == [second] and service.reaped == 1
        assert service.release_idle() == 1 and service.pids() == []  # idle for no time, released on request
        assert service.invoke("fn", {}) not in (first, second) and service.reaped == 2
    finally:
        service.close()
