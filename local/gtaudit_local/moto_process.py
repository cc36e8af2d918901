"""The embedded AWS in a process of its own, so that it and the runtime use both cores.

moto's HTTP server parses every request in Python: at the sample size it took 39% of the runtime
process's time, beside the scripted workers and the Ground Truth emulator, so one core did
everything while the other idled. :class:`MotoProcess` serves the same
:class:`~gtaudit_local.aws.MotoServer` (with the project's store journaling every write, and S3
bodies on disk: :mod:`gtaudit_local.moto_buffers`) from ``python -m gtaudit_local.moto_process``.

The protocol is JSON lines: the child prints ``{"port": N}`` once it serves; the parent may send
``{"op": "restore"}`` (put the project's objects and items back, answered with the report), and
closes the child's stdin to stop it. A parent that dies, even by ``kill -9``, closes that pipe too,
so the child never outlives it; every write it answered is already in the store. Ctrl-C reaches the
whole process group: the child ignores it and stops when the runtime is done with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from gtaudit_local.aws import ACCOUNT_ID, REGION
from gtaudit_local.persist.records import RestoreReport

_START_TIMEOUT_S = 120.0


class MotoProcess:
    """moto on ``127.0.0.1:<free port>`` in a child process; ``endpoint`` once started.

    Parameters
    ----------
    project_dir
        Journal every write into this project's store, and restore from it on :meth:`restore`.
    bodies
        Where the child keeps S3 bodies larger than 64 KB while it runs (emptied when it stops).
    log
        The child's stderr (moto's own complaints); default: discarded.
    """

    account_id = ACCOUNT_ID
    region = REGION

    def __init__(self, *, project_dir: Path | None, bodies: Path, log: Path | None = None) -> None:
        self.project_dir = project_dir
        self.bodies = bodies
        self.log = log
        self.endpoint = ""
        self.port = 0
        self._child: subprocess.Popen[str] | None = None
        self._log_file: IO[str] | None = None

    def start(self) -> MotoProcess:
        """Start the child and wait until it serves."""
        cmd = [sys.executable, "-m", "gtaudit_local.moto_process", "--bodies", str(self.bodies)]
        if self.project_dir is not None:
            cmd += ["--project", str(self.project_dir)]
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log.open("a", encoding="utf-8")  # closed in stop()
        # glibc raises its mmap threshold after each large free, so request bodies (MBs at 12 MP) end
        # up in the threads' heaps, which never shrink: a fixed threshold hands them back at once.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "2"}
        self._child = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file or subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        hello = self._reply()
        self.port = int(hello["port"])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def restore(self) -> RestoreReport:
        """Put the project's kept objects and items back into the child's moto (see ``AwsStore.restore``)."""
        self._send({"op": "restore"})
        return RestoreReport(**self._reply()["report"])

    def stop(self) -> None:
        """Stop the child (safe to call twice, never hangs)."""
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError):
                if child.stdin:
                    child.stdin.close()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
            if child.stdout:
                child.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> MotoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, message: dict[str, Any]) -> None:
        if self._child is None or self._child.stdin is None:
            raise RuntimeError("the embedded AWS is not running")
        self._child.stdin.write(json.dumps(message) + "\n")
        self._child.stdin.flush()

    def _reply(self) -> dict[str, Any]:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("the embedded AWS is not running")
        line = self._child.stdout.readline()
        if not line:
            code = self._child.wait(timeout=_START_TIMEOUT_S)
            where = f"; see {self.log}" if self.log else ""
            raise RuntimeError(f"the embedded AWS (moto) ended with exit code {code}{where}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the embedded AWS (moto): {reply['error']}")
        return reply


def _serve(bodies: Path, project: Path | None) -> None:
    from gtaudit_local.aws import MotoServer
    from gtaudit_local.moto_buffers import install
    from gtaudit_local.persist.store import AwsStore

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the runtime; it stops us when done
    # The replies own stdout; anything else that prints goes to stderr with the logs.
    replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    shutil.rmtree(bodies, ignore_errors=True)
    install(bodies)
    store = AwsStore(project) if project is not None else None
    server = MotoServer(store=store).start()
    try:
        print(json.dumps({"port": server.port}), file=replies, flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("op") == "restore" and store is not None:
                reply: dict[str, Any] = {"report": asdict(store.restore(server))}
            elif request.get("op") == "restore":
                reply = {"report": asdict(RestoreReport())}
            else:
                reply = {"error": f"unknown request {request!r}"}
            print(json.dumps(reply), file=replies, flush=True)
    finally:
        server.stop()
        if store is not None:
            store.close()
        shutil.rmtree(bodies, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gtaudit_local.moto_process")
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--project", type=Path)
    args = parser.parse_args(argv)
    _serve(args.bodies, args.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
