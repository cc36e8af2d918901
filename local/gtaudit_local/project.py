"""A local project: one folder that holds a run and everything the embedded services know of it.

```
<folder>/
  project.json             what the project is: its label set, images, workers, seed, run ID, state
  bucket/<bucket>/<key>    the S3 objects as plain files, in the bucket's layout, as they are written
  state/aws.sqlite         object metadata and DynamoDB items (gtaudit_local.persist)
  state/groundtruth.sqlite the Ground Truth emulator's jobs (gtaudit_local.groundtruth.store)
  _runtime/logs/           the functions' logs
  summary.json, report/    what the last session of the project found, when it ended
```

:func:`open_project` decides what a start on a folder means: a new or empty folder starts a new
project; a folder holding an interrupted run resumes it (and says so); a run of scripted workers
that finished, a folder from an older gtaudit demo, or ``fresh=True`` starts clean (and says so);
a finished run that people worked is kept unless ``fresh=True``; any other non-empty folder is
refused, never emptied. The label set is fixed per project: a resume with other labels
is refused with how to start over.

The run ID is drawn when the project is made and kept in ``project.json`` before anything starts,
so a start that a kill interrupts is retried with the same ID (``start_run`` is idempotent for a
fixed ID) instead of starting a second run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gtaudit.labels import LabelSet, parse_label_set
from gtaudit.pipeline.start import new_run_id

from gtaudit_local.persist.store import folder_lock

PROJECT_FILE = "project.json"
OLD_MARKER = ".gtaudit-demo.json"  # what a demo folder held before projects lasted
RUNTIME_DIR = "_runtime"  # function logs and crash-drill state: beside the bucket, not in it
BUCKET_DIR = "bucket"


_FAKE_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # in-process moto only


class ProjectError(RuntimeError):
    """The folder cannot be used as asked (not ours, or a resume that would change the project)."""


@dataclass(frozen=True)
class ProjectSettings:
    """What ``project.json`` holds. ``labels`` is the ``LabelSet`` JSON, fixed for the project's life."""

    labels: str
    workers: str
    seed: int
    images: str
    run: str
    created: str
    source: str | None = None
    attribute: str | None = None
    finished: bool = False

    @property
    def label_set(self) -> LabelSet:
        """The project's classes."""
        return parse_label_set(self.labels)


@dataclass(frozen=True)
class OpenedProject:
    """What :func:`open_project` found and did: the settings to run with, and a sentence saying so."""

    folder: Path
    settings: ProjectSettings
    resuming: bool
    note: str

    def bucket_dir(self, bucket: str) -> Path:
        """Where ``s3://<bucket>/`` is kept as files."""
        return self.folder / BUCKET_DIR / bucket

    def save(self, settings: ProjectSettings) -> OpenedProject:
        """Write ``settings`` to ``project.json`` (atomically) and return the project with them."""
        write_settings(self.folder, settings)
        return replace(self, settings=settings)


def read_settings(folder: Path) -> ProjectSettings | None:
    """The project's settings, or ``None`` when ``folder`` holds no project (or an unreadable file)."""
    try:
        data = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(ProjectSettings)}
        return ProjectSettings(**{k: v for k, v in data.items() if k in known})
    except (OSError, json.JSONDecodeError, TypeError):
        return None


def write_settings(folder: Path, settings: ProjectSettings) -> None:
    """Write ``project.json`` through a temporary file, so a kill never leaves half of it."""
    tmp = folder / f".{PROJECT_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(settings), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(folder / PROJECT_FILE)


def open_project(
    folder: Path, wanted: ProjectSettings, *, fresh: bool = False, labels_given: bool = False
) -> OpenedProject:
    """Start or resume the project in ``folder``.

    Parameters
    ----------
    folder
        The project folder (``gtaudit demo --out``).
    wanted
        The settings a new project gets (its ``run`` is replaced by a new run ID).
    fresh
        Start over even if the folder holds an interrupted run (``--fresh``).
    labels_given
        Whether the user named the labels; then a resume with other labels is an error.

    Raises
    ------
    ProjectError
        A non-empty folder that is not a project, or a resume with another label set.
    """
    previous = read_settings(folder)
    if previous is not None and not previous.finished and not fresh:
        if labels_given and parse_label_set(wanted.labels) != previous.label_set:
            raise ProjectError(
                f"{folder} is a project with the labels {previous.label_set.names} (colours "
                f"{list(previous.label_set.colors().values())}); a project's label set is fixed: "
                "resume without --labels, or start over with --fresh"
            )
        note = f"{folder}/ holds the interrupted run {previous.run} of {previous.created}: resuming it"
        return OpenedProject(folder, previous, True, note)
    if previous is not None and previous.finished and previous.workers != "scripted" and not fresh:
        # People's work is not thrown away by a command meant to resume it.
        raise ProjectError(
            f"{folder} holds the finished run {previous.run}, worked by people ({previous.workers}): "
            "export or keep it, and start a new project with --fresh or another --out"
        )
    if folder.exists() and any(folder.iterdir()):
        if previous is None and not (folder / OLD_MARKER).is_file():
            raise ProjectError(f"{folder} is not empty and holds no gtaudit project; choose another --out")
        what = (
            f"the {'finished' if previous.finished else 'interrupted'} run {previous.run} of {previous.created}"
            if previous is not None
            else "an earlier demo"
        )
        _empty(folder)
        note = f"{folder}/ held {what}: starting clean" + (" (--fresh)" if fresh else "")
    else:
        note = f"{folder}/ is new or empty: starting a new project"
    folder.mkdir(parents=True, exist_ok=True)
    settings = replace(wanted, run=new_run_id(), created=datetime.now(UTC).isoformat(timespec="seconds"))
    write_settings(folder, settings)
    return OpenedProject(folder, settings, False, note)


@contextmanager
def project_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for this process: a project is run by one process at a time.

    Two runtimes on one folder would journal into one database, run the same jobs twice, and free
    each other's processing leases; ``--fresh`` could empty a folder another run is using. The lock
    is ``flock`` on the folder itself (made if absent), so emptying it cannot drop the lock, and the
    system releases it when the process ends, however it ends.

    Raises
    ------
    ProjectError
        Another process holds the folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        try:
            held.enter_context(folder_lock(folder, wait=False))
        except BlockingIOError as exc:
            raise ProjectError(
                f"{folder} is in use by another gtaudit process; a project runs in one at a time"
            ) from exc
        yield


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def settings_for(**values: Any) -> ProjectSettings:
    """Settings for a new project (``run`` and ``created`` are filled in by :func:`open_project`)."""
    return ProjectSettings(run="", created="", **values)


@contextmanager
def stored_trace_table(folder: Path) -> Iterator[tuple[Any, str]]:
    """``(dynamodb client, table name)`` holding the trace table a project folder kept.

    For ``gtaudit report`` and ``gtaudit trace`` on a project, running or stopped: the items are
    read from ``state/aws.sqlite`` (read-only; SQLite's WAL lets a reader in beside the running
    project's writer) into an in-process moto table made from ``template.yaml``'s definition, so
    the same queries run on them as on AWS.

    Raises
    ------
    ProjectError
        ``folder`` holds no project data.
    """
    from moto import mock_aws

    from gtaudit_local.aws import REGION
    from gtaudit_local.persist.store import AwsStore
    from gtaudit_local.runtime import LocalRuntime, find_project_root
    from gtaudit_local.template import load_template

    stack = load_template(find_project_root() / "template.yaml")
    name = stack.physical["TraceTable"]
    try:
        store = AwsStore(folder, readonly=True)
    except FileNotFoundError as exc:
        raise ProjectError(f"{folder} holds no project data ({exc})") from exc
    # In-process moto answers only AWS's own endpoints: a shell pointed at a running project
    # (AWS_ENDPOINT_URL) must not send these requests there.
    endpoints = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_ENDPOINT_URL")}
    try:
        with store, mock_aws():
            import boto3

            ddb = boto3.client("dynamodb", region_name=REGION, **_FAKE_KEYS)
            LocalRuntime.create_table(ddb, name, stack.resources["TraceTable"].get("Properties") or {})
            batch: list[dict[str, Any]] = []
            for item in store.items(name):
                batch.append({"PutRequest": {"Item": item}})
                if len(batch) == 25:
                    ddb.batch_write_item(RequestItems={name: batch})
                    batch = []
            if batch:
                ddb.batch_write_item(RequestItems={name: batch})
            yield ddb, name
    finally:
        os.environ.update(endpoints)
