"""``gtaudit demo``: the whole workflow on the embedded runtime, with sample images and scripted workers.

The demo does what a user does against AWS, against the embedded services instead: it starts the
runtime from ``template.yaml`` (workteams as the template's ``WorkteamArn`` / ``AuditWorkteamArn``
parameters), starts a run exactly as ``gtaudit start`` does (upload, input manifest, first labeling
job through boto3's SageMaker client), and then only waits: every later stage (overlays, audit,
rework, worker time) happens because the template's EventBridge rules route GT's job state events
and S3's object events to the template's functions. ``--out`` is a project folder
(:mod:`gtaudit_local.project`): the bucket's objects are there as files as they are written, and a
demo killed half-way resumes where it was on the next start on the same folder. When nothing moves
any more, it writes ``summary.json``.

With ``source`` (``gtaudit demo --from``) the run starts at the audit stage from existing labels,
as ``gtaudit start --from`` does (``gtaudit_local.imports``); ``samples/imports/`` holds a COCO
file and a Ground Truth manifest made from the sample images, with a few deliberate faults.

Quality shows in the report. The scripted crew (:func:`gtaudit_local.workers.crew.default_crew`)
differs in skill: three labelers (careful, average, sloppy; all three label each object, so the
vote is a majority) and two auditors (keen, lax; one per object). A labeling run of the sample
images mixes in the samples' gold objects (``samples/gold``, made by ``samples/make_gold.py``) as
``gtaudit start --gold`` does, with larger shares than the start's defaults (:data:`GOLD_SHARE`,
:data:`SEED_SHARE`) so that twelve images give every labeler gold and both auditors seeded
defects; the gold masks are among the crew's references, as the photo is a person's. Other
images, and people at the tasks, get gold only when ``gold`` names a source.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gtaudit.labels import parse_label_option

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.project import (
    RUNTIME_DIR,
    OpenedProject,
    ProjectError,
    ProjectSettings,
    open_project,
    project_lock,
    settings_for,
)
from gtaudit_local.runtime import LocalRuntime, find_project_root
from gtaudit_local.summary import build_summary
from gtaudit_local.team.people import RosterError
from gtaudit_local.team.project import SEATS, TeamProject, describe
from gtaudit_local.team.server import BindRefused, check_bind

LABELERS_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/gtaudit-labelers"
AUDITORS_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/gtaudit-auditors"
# With the 12 sample images: 8 gold lines (all the samples' gold), all 8 seeded in the first audit.
GOLD_SHARE = 0.4
SEED_SHARE = 0.4
# Objects a scripted crew works at a time. Each task waits on S3 as much as it computes, so two at
# a time left a core idle; four kept the three labelers busy (768 objects: 131 -> 121 s).
SCRIPTED_TASKS = 4


class DemoError(RuntimeError):
    """The demo cannot run (a foreign, non-empty output folder; no images; a stage failed to start)."""


@dataclass
class DemoResult:
    """What a demo run produced."""

    out: Path
    summary: dict[str, Any]
    started_clean: str  # what happened to a previous run's folder
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the pipeline reached its final summary (a stalled run never counts as finished)."""
        return bool(self.summary.get("finished"))


def default_images(project: Path) -> Path:
    """``samples/images`` of the project."""
    return project / "samples" / "images"


def default_gold(project: Path) -> Path:
    """``samples/gold`` of the project: images and their correct masks (``samples/make_gold.py``)."""
    return project / "samples" / "gold"


def reference_folders(project: Path) -> list[Path]:
    """Where the scripted workers find the truth of an image: the samples' references and gold masks."""
    return [project / "samples" / "reference", default_gold(project) / "masks"]


def make_workers(kind: str, project: Path, seed: int = 0) -> tuple[list[Any], list[Any], int]:
    """``(labelers, auditors, labelers_per_object)`` for ``--workers scripted|browser``.

    Scripted: every labeler labels every object. With two of three, the vote could not tell who is
    right (a tie goes to the background), and each labeler's IoU against it would rank them by
    whom they were paired with; a majority of three is Ground Truth's usual consensus.
    """
    if kind == "browser":
        # Nobody audits their own labels, so one person cannot do every stage of one object. The
        # person shares each team with one scripted worker who has no references (it paints an
        # ellipse and approves any non-empty mask): Ground Truth hands object i to worker i mod 2
        # first, so the person labels every other image, audits the other images' labels, and
        # reworks what they reject, while the scripted auditor checks the person's own labels.
        from gtaudit_local.browser import BrowserWorker
        from gtaudit_local.workers.crew import default_crew

        person = BrowserWorker()
        crew_labelers, crew_auditors = default_crew(seed)
        return [person, crew_labelers[0]], [crew_auditors[0], person], 1
    from gtaudit_local.workers.crew import default_crew

    labelers, auditors = default_crew(seed, references=reference_folders(project))
    return list(labelers), list(auditors), len(labelers)


def warn_without_references(project: Path, images: Path, log: Callable[[str], None]) -> None:
    """Say which images the scripted workers cannot judge: without a reference mask their
    "approved" means nothing."""
    from gtaudit_local.workers.references import without_reference

    pictures = [p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    missing = without_reference(reference_folders(project), pictures)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        log(
            f"warning: {len(missing)} of {len(pictures)} images have no reference mask in samples/reference/ "
            f"({shown}): the scripted workers paint a central ellipse and approve any non-empty mask there, "
            "so their approval means nothing; label them yourself with --workers browser"
        )


def gold_source(
    project: Path, settings: ProjectSettings, gold: str | Path | None, with_gold: bool = True
) -> str | None:
    """The gold a project's run starts with: ``gold`` if given, else the samples' for scripted
    workers on the sample images; none for an audit-only run (``--from``) or with ``with_gold`` off.

    Raises
    ------
    DemoError
        ``gold`` given with ``--from`` (gold scores labelers; an audit-only run has none).
    """
    if gold is not None and settings.source:
        raise DemoError("--gold scores the labelers of a labeling run: it cannot go with --from")
    if gold is not None or not with_gold or settings.source:
        return None if gold is None else str(gold)
    samples = settings.workers == "scripted" and Path(settings.images).resolve() == default_images(project).resolve()
    return str(default_gold(project)) if samples and default_gold(project).is_dir() else None


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Point boto3 in this process at the embedded services for the block, with the standard settings."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_demo(out: Path, **options: Any) -> DemoResult:
    """Run the demo; return its summary (also written to ``out/summary.json``).

    ``source`` starts the run at the audit stage from existing labels (``gtaudit_local.imports``),
    with ``images`` as where their images are; ``attribute`` names a Ground Truth manifest's label.
    ``labels`` is a ``--labels`` option (``gtaudit.labels.parse_label_option``): the stack's
    ``LabelSet`` for this runtime, so every stage shows and consolidates the same classes.

    ``out`` holding an interrupted run resumes it with the settings it was started with (workers,
    seed, images, labels); ``fresh`` starts over instead.

    ``workers="team"``: the people of ``people`` (``name:role,...``, kept in the project's
    ``team.json``) sign in to a server on ``host:port`` with the links it logs; the lead's Stop
    button ends the session cleanly, leaving the project to resume.

    ``crashes`` and ``wrap_labeler`` inject faults for drills (``tests/integration/local/test_faults.py``):
    functions whose processes die in their first n invocations, and a wrapper around each labeler;
    ``wrap_auditor`` wraps each auditor likewise (a test reads what each task showed).

    ``gold`` is a gold source as ``gtaudit start --gold`` takes (default: ``samples/gold`` for
    scripted workers on the sample images, see :func:`gold_source`); ``with_gold=False`` starts
    without; ``gold_share`` and ``seed_share`` are ``--gold-share`` and ``--seed-share`` (default
    :data:`GOLD_SHARE`, :data:`SEED_SHARE`).

    Options are ``_run_demo``'s: ``workers``, ``images``, ``project``, ``seed``, ``timeout`` (default:
    10 minutes with scripted workers, a day with people), ``on_progress``, ``log``, ``crashes``,
    ``wrap_labeler``, ``wrap_auditor``, ``source``, ``attribute``, ``labels``, ``fresh``, ``people``,
    ``host``, ``port``, ``names``, ``gold``, ``with_gold``, ``gold_share``, ``seed_share``. The folder
    is held for the run (:func:`gtaudit_local.project.project_lock`).

    Raises
    ------
    DemoError
        ``out`` belongs to someone else, a resume with another label set, there are no images, or
        the run could not start (a source that cannot be read, or one whose every object is refused).
    """
    try:
        with project_lock(out):
            return _run_demo(out, **options)
    except ProjectError as exc:
        raise DemoError(str(exc)) from exc


def _run_demo(
    out: Path,
    *,
    workers: str = "scripted",
    images: Path | None = None,
    project: Path | None = None,
    seed: int = 0,
    timeout: float | None = None,
    on_progress: Callable[[list[LabelingJobRun], str], None] | None = None,
    log: Callable[[str], None] = print,
    crashes: Mapping[str, int] | None = None,
    wrap_labeler: Callable[[Any], Any] | None = None,
    wrap_auditor: Callable[[Any], Any] | None = None,
    source: str | None = None,
    attribute: str | None = None,
    labels: str | None = None,
    fresh: bool = False,
    people: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    names: Sequence[str] = (),
    gold: str | Path | None = None,
    with_gold: bool = True,
    gold_share: float | None = None,
    seed_share: float | None = None,
) -> DemoResult:
    """The demo in a folder this process holds; see :func:`run_demo`."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    project = find_project_root(project)
    images = images or default_images(project)
    wanted = settings_for(
        labels=parse_label_option(labels).to_json(),  # before anything starts: a bad option is a clear error
        workers=workers,
        seed=seed,
        images=str(images),
        source=source,
        attribute=attribute,
    )
    try:
        opened = open_project(out, wanted, fresh=fresh, labels_given=labels is not None)
    except ProjectError as exc:
        raise DemoError(str(exc)) from exc
    note = opened.note
    log(note)
    # A resume runs with what the project was started with, whatever this command line says.
    settings = opened.settings
    workers, seed, images, source, attribute = (
        settings.workers, settings.seed, Path(settings.images), settings.source, settings.attribute
    )  # fmt: skip
    label_set = settings.label_set
    golden = gold_source(project, settings, gold, with_gold)  # before anything starts: a clear error
    shares = (GOLD_SHARE if gold_share is None else gold_share, SEED_SHARE if seed_share is None else seed_share)
    if timeout is None:  # a resumed project waits as its own workers need, whatever this command line says
        timeout = 86_400.0 if workers in ("browser", "team") else 600.0
    if workers == "team":
        try:
            check_bind(host, names, sign_in_required=True)  # before anything starts, not after
        except BindRefused as exc:
            raise DemoError(str(exc)) from exc
    if not images.is_dir() or not any(p.suffix.lower() in {".jpg", ".jpeg", ".png"} for p in images.iterdir()):
        raise DemoError(f"no .jpg/.jpeg/.png images in {images}")
    started = datetime.now(UTC)
    team = _team(out, workers, people)
    labelers, auditors, per_object = (team.seats, team.seats, 1) if team else make_workers(workers, project, seed)
    if workers == "scripted":
        warn_without_references(project, images, log)
    if wrap_labeler is not None:  # fault drills: a labeler at whose task something goes wrong
        labelers = [wrap_labeler(w) for w in labelers]
    if wrap_auditor is not None:
        auditors = [wrap_auditor(w) for w in auditors]
    params = {
        "WorkteamArn": LABELERS_TEAM,
        "AuditWorkteamArn": AUDITORS_TEAM,
        "LabelersPerObject": str(per_object),
        "LabelSet": label_set.to_json(),
    }
    with (
        LocalRuntime(
            project,
            work_dir=out / RUNTIME_DIR,
            workteams={LABELERS_TEAM: labelers, AUDITORS_TEAM: auditors},
            parameters={k: v for k, v in params.items() if k in _template_parameters(project)},
            crashes=crashes,
            project_dir=out,
            task_concurrency=SEATS if team else SCRIPTED_TASKS,
        ) as rt,
        contextlib.ExitStack() as seated,  # exits before the runtime: a wait for a person ends first
    ):
        if team is not None:
            seated.callback(team.close)
        for worker in {id(w): w for w in (*labelers, *auditors)}.values():
            if hasattr(worker, "close"):
                seated.callback(worker.close)
        # Runs first (last in): a task a person is released from by the shutdown is an interruption
        # to resume, not an abandonment to offer to someone else.
        assert rt.gt is not None
        seated.callback(rt.gt.interrupt)
        timings["set-up (runtime start)"] = time.perf_counter() - t0
        assert rt.gt is not None
        with _environ(rt.client_env()):
            t = time.perf_counter()
            run = _resumed_run(rt, opened, log) or _start(rt, opened, golden, shares, log)
            timings["start (upload, manifest, first job)"] = time.perf_counter() - t
            t = time.perf_counter()
            gt = rt.gt

            if team is not None:
                server = team.serve(
                    s3=rt.client("s3"), bucket=rt.bucket, run_id=str(run["run"]), jobs=lambda: list(gt.jobs.values()),
                    report=lambda: _live_report(rt), host=host, port=port, names=names,
                )  # fmt: skip
                log(f"team server at {server.url}; sign-in links (give each only to its person):\n{describe(team)}")

            def show() -> None:
                if on_progress is not None:
                    on_progress(sorted(gt.jobs.values(), key=lambda j: j.created), "running")

            def tick() -> None:
                show()
                if team is not None and team.stop_requested.is_set():
                    raise _StopRequested

            try:
                if not rt.wait_idle(timeout, on_tick=tick):
                    log(f"the workflow did not settle within {timeout:.0f} s; writing what exists")
            except _StopRequested:
                log("stopped from the lead's page: the project resumes where it is on the next start")
            show()
            timings["workflow (all jobs and events)"] = time.perf_counter() - t
            for job in sorted(gt.jobs.values(), key=lambda j: j.created):
                timings[f"  {job.kind} r{job.round} ({job.name})"] = job.modified - job.created
            # The workflow has settled: its functions' warm environments would sit out the report,
            # the runtime's largest moment (575 of 1,052 MB at 768 objects); Lambda reclaims them too.
            if rt.lambdas is not None:
                rt.lambdas.release_idle()
            t = time.perf_counter()
            report = _trace_report(rt, out / "report")
            if report:
                timings["traceability report"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t0
            summary = build_summary(rt, run, int(run.get("objects") or 0), started, timings)
    summary["started-clean"] = note
    summary["resumed"] = opened.resuming
    summary["bucket-folder"] = str(opened.bucket_dir(summary["bucket"]))
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    if summary["finished"]:
        opened.save(replace(settings, finished=True))
    return DemoResult(out, summary, note, timings)


class _StopRequested(Exception):
    """The lead pressed Stop."""


def _team(out: Path, workers: str, people: str | None) -> TeamProject | None:
    """The project's team for ``--workers team`` (people added from ``people``), else ``None``."""
    if workers != "team":
        return None
    try:
        return TeamProject(out, people)
    except RosterError as exc:
        raise DemoError(str(exc)) from exc


def _live_report(rt: LocalRuntime) -> str | None:
    """The worker report as HTML, from the trace table as it is now."""
    from gtaudit.trace import make_report
    from gtaudit.trace.render import render

    table = _trace_table(rt)
    return render(make_report(rt.client("dynamodb"), table), "html") if table else None


def _trace_table(rt: LocalRuntime) -> str | None:
    """The trace table the worktime function fills, as the template wires it."""
    try:
        table = rt.stack.function("WorktimeFunction").environment.get("TRACE_TABLE")
    except KeyError:  # a template without the worktime function
        return None
    return str(table) if table else None


def _resumed_run(rt: LocalRuntime, opened: OpenedProject, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The project's run as the pipeline table knows it, if it started before: then nothing starts again."""
    if not opened.resuming:
        return None
    from gtaudit.pipeline.state import PipelineState

    item = PipelineState(_start_clients(rt)["table"]).get_run(opened.settings.run)
    assert rt.gt is not None
    if item is None or not any(opened.settings.run in name for name in rt.gt.jobs):
        # The start itself was interrupted (before or after the run item, before Ground Truth had
        # the first job): starting again with the same run ID is idempotent and finishes it.
        return None
    restored = rt.restored
    kept = f"{restored.objects} objects and {restored.items} items in {restored.seconds:.2f} s" if restored else "-"
    log(
        f"run {opened.settings.run}: {item.get('objects_in')} objects; restored {kept}; "
        f"jobs resumed: {', '.join(rt.resumed_jobs) or 'none'}"
    )
    return {"run": opened.settings.run, "objects": int(item.get("objects_in") or 0), "job": None}


def _start(
    rt: LocalRuntime, opened: OpenedProject, gold: str | None, shares: tuple[float, float], log: Callable[[str], None]
) -> dict[str, Any]:
    """Start the project's run with its fixed ID (idempotent: a retried start finishes the first)."""
    s = opened.settings
    images = Path(s.images)
    if s.source:
        run = _start_audit(rt, s.source, images, s.attribute, s.run, log)
    else:
        run = _start_run(rt, images, s.run, gold, shares, log)
    mixed = f" (and {run['gold']} gold, {run['seeded']} of them seeded for the audit)" if run.get("gold") else ""
    log(f"run {run.get('run')}: {run.get('objects')} objects{mixed}, first job {run.get('job')}")
    return run


def _trace_report(rt: LocalRuntime, out: Path) -> dict[str, Path]:
    """The traceability report (worker time, lineage) from the trace table the worktime function fills."""
    from gtaudit.trace import write_report

    table = _trace_table(rt)
    if table is None:
        return {}
    paths: dict[str, Path] = write_report(table, out, ddb=rt.client("dynamodb"))
    return paths


def _template_parameters(project: Path) -> set[str]:
    from gtaudit_local.template import load_template

    return set(load_template(project / "template.yaml").parameters)


def _start_clients(rt: LocalRuntime) -> dict[str, Any]:
    """What ``gtaudit start`` works with, configured from the template's outputs and the orchestrator's env."""
    from gtaudit_local.commands.start import config_from_outputs

    environ = rt.stack.function("OrchestratorFunction").environment
    config = config_from_outputs(rt.stack.outputs, environ)
    table = rt.client_resource("dynamodb").Table(config.table)
    return {"s3": rt.client("s3"), "sagemaker": rt.client("sagemaker"), "table": table, "config": config}


def _start_run(
    rt: LocalRuntime,
    images: Path,
    run_id: str,
    gold: str | None,
    shares: tuple[float, float],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Start a run as ``gtaudit start --gold`` does (with the demo's shares); log each refused gold object."""
    from gtaudit.pipeline.start import start_run
    from gtaudit.pipeline.start_audit import run_label_set

    from gtaudit_local.gold import GoldRead, read_gold
    from gtaudit_local.imports import SourceError

    clients = _start_clients(rt)
    read = GoldRead()
    if gold is not None:
        try:
            read = read_gold(gold, run_label_set(clients["config"], None), s3=clients["s3"])
        except SourceError as exc:
            raise DemoError(str(exc)) from exc
    started = start_run(
        images=str(images), run_id=run_id, gold=read.objects, gold_share=shares[0], seed_share=shares[1], **clients
    )
    result: dict[str, Any] = started.as_dict()
    for name, reason in [*read.refused, *((r["name"], r["reason"]) for r in result["gold_refused"])]:
        log(f"gold refused {name}: {reason}")
    return result


def _start_audit(
    rt: LocalRuntime, source: str, images: Path, attribute: str | None, run_id: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Start a run at the audit stage as ``gtaudit start --from`` does; log each refused object."""
    from gtaudit_local.imports import SourceError, start_from_source

    try:
        started = start_from_source(
            source, images=str(images), attribute=attribute, run_id=run_id, **_start_clients(rt)
        )
    except SourceError as exc:
        raise DemoError(str(exc)) from exc
    for refusal in started.refused:
        log(f"refused {refusal.name}: {refusal.reason}")
    if started.job_name is None:
        raise DemoError(f"nothing to audit: every object of {source} was refused")
    result: dict[str, Any] = started.as_dict()
    return result
