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

One moto, one interpreter lock: serving S3 and DynamoDB together, its process answered at about
0.7 of a core while requests queued behind each other (a thread started per connection, each
waiting for the lock). The runtime therefore runs two children (:class:`EmbeddedAws`): one for
DynamoDB, one for everything else. S3, EventBridge, SQS and SNS stay together because moto raises
S3's notifications to EventBridge and EventBridge's deliveries to SQS inside its own process;
DynamoDB has no such tie in the template (no streams). Each child journals the requests it serves
into the project's store (one SQLite file in WAL mode: one writes while the other waits for its
commit, and both read at any time) and restores only its own part: objects and buckets, or items.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Literal

from gtaudit_local.aws import ACCOUNT_ID, REGION
from gtaudit_local.persist.records import RestoreReport

_START_TIMEOUT_S = 120.0
Part = Literal["all", "s3", "dynamodb"]  # what a child restores: everything, all but items, items


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
    part
        What :meth:`restore` puts back: ``"all"``, ``"s3"`` (buckets and objects) or
        ``"dynamodb"`` (items); the child journals whatever it is sent either way.
    """

    account_id = ACCOUNT_ID
    region = REGION

    def __init__(self, *, project_dir: Path | None, bodies: Path, log: Path | None = None, part: Part = "all") -> None:
        self.project_dir = project_dir
        self.bodies = bodies
        self.log = log
        self.part = part
        self.endpoint = ""
        self.port = 0
        self._child: subprocess.Popen[str] | None = None
        self._log_file: IO[str] | None = None

    def start(self) -> MotoProcess:
        """Start the child and wait until it serves."""
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        """Start the child without waiting for it (several start side by side; then :meth:`wait_ready`)."""
        cmd = [sys.executable, "-m", "gtaudit_local.moto_process", "--bodies", str(self.bodies), "--part", self.part]
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

    def wait_ready(self) -> MotoProcess:
        """Wait until the spawned child serves; ``endpoint`` is then set."""
        hello = self._reply(timeout=_START_TIMEOUT_S)
        self.port = int(hello["port"])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def restore(self) -> RestoreReport:
        """Put the project's kept objects or items back into the child's moto (see ``AwsStore.restore``)."""
        self.ask_restore()
        return self.restored()

    def ask_restore(self) -> None:
        """Ask the child to restore its part, without waiting (then :meth:`restored`)."""
        self._send({"op": "restore"})

    def restored(self) -> RestoreReport:
        """The child's report on the restore asked for."""
        return RestoreReport(**self._reply()["report"])

    def stop(self) -> None:
        """Stop the child (safe to call twice, never hangs)."""
        self.hang_up()
        self.reap()

    def hang_up(self) -> None:
        """Close the child's stdin: it stops serving and exits (then :meth:`reap`)."""
        if self._child is not None and self._child.stdin is not None:
            with contextlib.suppress(OSError):
                self._child.stdin.close()

    def reap(self) -> None:
        """Wait for the child to exit (killed after 30 s) and close what it held."""
        child, self._child = self._child, None
        if child is not None:
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

    def _reply(self, timeout: float | None = None) -> dict[str, Any]:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("the embedded AWS is not running")
        if timeout is not None and not select.select([self._child.stdout], [], [], timeout)[0]:
            where = f"; see {self.log}" if self.log else ""
            raise RuntimeError(f"the embedded AWS (moto) did not answer within {timeout:.0f} s{where}")
        line = self._child.stdout.readline()
        if not line:
            code = self._child.wait(timeout=_START_TIMEOUT_S)
            where = f"; see {self.log}" if self.log else ""
            raise RuntimeError(f"the embedded AWS (moto) ended with exit code {code}{where}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the embedded AWS (moto): {reply['error']}")
        return reply


class EmbeddedAws:
    """The runtime's embedded AWS: DynamoDB in one moto process, every other service in another.

    ``endpoint`` (S3, EventBridge, SQS, SNS, CloudWatch Logs) and ``endpoints`` (``{"": ...,
    "DYNAMODB": ...}``, as ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` name them) once
    started. Parameters as for :class:`MotoProcess`; ``work_dir`` holds both children's body
    folders (``s3-bodies``, ``s3-bodies-dynamodb``) and logs (``logs/moto.log``,
    ``logs/moto-dynamodb.log``).
    """

    def __init__(self, *, project_dir: Path | None, work_dir: Path) -> None:
        logs = work_dir / "logs"
        self.main = MotoProcess(
            project_dir=project_dir, bodies=work_dir / "s3-bodies", log=logs / "moto.log", part="s3"
        )
        self.dynamodb = MotoProcess(
            project_dir=project_dir, bodies=work_dir / "s3-bodies-dynamodb", log=logs / "moto-dynamodb.log",
            part="dynamodb",
        )  # fmt: skip
        self.children = (self.main, self.dynamodb)

    @property
    def endpoint(self) -> str:
        """Where every service but DynamoDB is served."""
        return self.main.endpoint

    @property
    def endpoints(self) -> Mapping[str, str]:
        """``{"": main endpoint, "DYNAMODB": DynamoDB's endpoint}``."""
        return {"": self.main.endpoint, "DYNAMODB": self.dynamodb.endpoint}

    def endpoint_for(self, service: str) -> str:
        """The endpoint of a boto3 service name (``"s3"``, ``"dynamodb"``, ...)."""
        return self.dynamodb.endpoint if service == "dynamodb" else self.main.endpoint

    def environ(self) -> dict[str, str]:
        """``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_DYNAMODB``: boto3's settings for both."""
        return {"AWS_ENDPOINT_URL" + (f"_{name}" if name else ""): url for name, url in self.endpoints.items()}

    @property
    def ports(self) -> list[int]:
        """Both children's ports."""
        return [child.port for child in self.children]

    def start(self) -> EmbeddedAws:
        """Start both children side by side and wait until both serve; a failure stops both."""
        try:
            for child in self.children:
                child.spawn()
            for child in self.children:
                child.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def restore(self) -> RestoreReport:
        """Both children restore their part of the project at once; one report of the two."""
        for child in self.children:
            child.ask_restore()
        objects, items = (child.restored() for child in self.children)
        return objects.merged(items)

    def stop(self) -> None:
        """Stop both children at once (safe to call twice, never hangs)."""
        for child in self.children:
            child.hang_up()
        try:
            self.main.reap()
        finally:
            self.dynamodb.reap()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(bodies: Path, project: Path | None, part: Part) -> None:
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
                restored = store.restore(server, objects=part != "dynamodb", items=part != "s3")
                reply: dict[str, Any] = {"report": asdict(restored)}
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
    parser.add_argument("--part", choices=("all", "s3", "dynamodb"), default="all")
    args = parser.parse_args(argv)
    _serve(args.bodies, args.project, args.part)
    return 0


if __name__ == "__main__":
    sys.exit(main())
