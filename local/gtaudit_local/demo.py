"""``gtaudit demo``: the whole workflow on the embedded runtime, with sample images and scripted workers.

The demo does what a user does against AWS, against the embedded services instead: it starts the
runtime from ``template.yaml`` (workteams as the template's ``WorkteamArn`` / ``AuditWorkteamArn``
parameters), starts a run exactly as ``gtaudit start`` does (upload, input manifest, first labeling
job through boto3's SageMaker client), and then only waits: every later stage (overlays, audit,
rework, worker time) happens because the template's EventBridge rules route GT's job state events
and S3's object events to the template's functions. When nothing moves any more, it mirrors the
data bucket into ``--out`` and writes ``summary.json``.

With ``source`` (``gtaudit demo --from``) the run starts at the audit stage from existing labels,
as ``gtaudit start --from`` does (``gtaudit_local.imports``); ``samples/imports/`` holds a COCO
file and a Ground Truth manifest made from the sample images, with a few deliberate faults.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gtaudit.labels import parse_label_option
from gtaudit.manifest import OBJECT_ID_KEY, iter_manifest

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.runtime import LocalRuntime, find_project_root

MARKER = ".gtaudit-demo.json"
LABELERS_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/gtaudit-labelers"
AUDITORS_TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/gtaudit-auditors"
RUNTIME_DIR = "_runtime"  # function logs: beside the bucket mirror, not in it


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


def prepare_out(out: Path) -> str:
    """Make ``out`` an empty demo folder; return a sentence saying whether it started clean and why.

    A folder holding a previous demo (our marker file) is emptied: a run always starts clean, and
    says so. A non-empty folder without the marker is not ours and is left alone.
    """
    if out.exists() and any(out.iterdir()):
        marker = out / MARKER
        if not marker.is_file():
            raise DemoError(f"{out} is not empty and holds no previous demo run; choose another --out")
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        note = f"{out}/ held the demo run {previous.get('run', '?')} of {previous.get('started', '?')}: starting clean"
    else:
        note = f"{out}/ is new or empty: starting clean"
    out.mkdir(parents=True, exist_ok=True)
    return note


def default_images(project: Path) -> Path:
    """``samples/images`` of the project."""
    return project / "samples" / "images"


def make_workers(kind: str, project: Path, seed: int = 0) -> tuple[list[Any], list[Any], int]:
    """``(labelers, auditors, labelers_per_object)`` for ``--workers scripted|browser``."""
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

    labelers, auditors = default_crew(seed, references=project / "samples" / "reference")
    return list(labelers), list(auditors), 2


def warn_without_references(project: Path, images: Path, log: Callable[[str], None]) -> None:
    """Say which images the scripted workers cannot judge: without a reference mask their
    "approved" means nothing."""
    from gtaudit_local.workers.references import without_reference

    pictures = [p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    missing = without_reference(project / "samples" / "reference", pictures)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        log(
            f"warning: {len(missing)} of {len(pictures)} images have no reference mask in samples/reference/ "
            f"({shown}): the scripted workers paint a central ellipse and approve any non-empty mask there, "
            "so their approval means nothing; label them yourself with --workers browser"
        )


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


def mirror_bucket(s3: Any, bucket: str, out: Path) -> int:
    """Download every object of ``bucket`` to ``out/<key>``; return how many.

    A key that could land outside ``out`` (a ``..`` or empty segment, a backslash, a control
    character, an absolute or drive path) is skipped, never written: keys come from event data.
    """
    n = 0
    root = out.resolve()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            dest = local_path(root, obj["Key"])
            if dest is None:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            n += 1
    return n


def local_path(root: Path, key: str) -> Path | None:
    """Where an object key lives under ``root`` (resolved), or ``None`` if it could escape it."""
    parts = key.split("/")
    if any(p in ("", ".", "..") or "\\" in p or ":" in p[:2] or any(ord(c) < 32 for c in p) for p in parts):
        return None
    dest = root.joinpath(*parts)
    return dest if dest.resolve().is_relative_to(root) else None


def object_states(jobs: list[LabelingJobRun], read: Callable[[str], bytes]) -> dict[str, dict[str, Any]]:
    """Each object's final state from the jobs' output manifests, in job order (a later job wins).

    ``approved``: its last audit approved it. ``needs-attention``: rejected in its last audit.
    ``stalled``: labeled, but no audit followed (``build_summary`` turns the ones the pipeline
    accepted without audit, under ``AuditPolicy=sample``, into ``approved``). ``failed``: GT's
    ``failure-reason`` or a consolidation that failed, with the reason.
    """
    states: dict[str, dict[str, Any]] = {}
    for job in sorted(jobs, key=lambda j: j.created):
        if not job.output_manifest:
            continue
        attr = job.request["LabelAttributeName"]
        for item in iter_manifest(read(job.output_manifest).splitlines()):
            if not hasattr(item, "data"):
                continue
            line = item.data
            oid = str(line.get(OBJECT_ID_KEY) or line.get("source-ref") or "")
            meta = line.get(f"{attr}-metadata") or {}
            content = line.get(attr)
            state: dict[str, Any] = {"job": job.name, "kind": job.kind, "round": job.round}
            if meta.get("failure-reason"):
                state.update(state="failed", reason=str(meta["failure-reason"]))
            elif not isinstance(content, dict):
                state.update(state="failed", reason="no label in the output manifest")
            elif content.get("status") == "failed":
                state.update(state="failed", reason=str(content.get("failure-reason") or "consolidation failed"))
            elif content.get("status") == "audited":
                verdict = content.get("verdict")
                if verdict == "approve":
                    state.update(state="approved", reason="")
                else:
                    reasons = ", ".join(content.get("reasons") or []) or "no reason given"
                    state.update(state="needs-attention", reason=f"rejected in audit round {job.round}: {reasons}")
            else:
                state.update(state="stalled", reason=f"labeled in round {job.round}; no audit followed")
            states[oid] = state
    return states


def _reason_key(reason: str) -> str:
    """Group failure reasons: drop the object-specific tail after a colon-separated detail."""
    return reason.split("\n", 1)[0][:160]


def build_summary(
    rt: LocalRuntime, run: Mapping[str, Any], objects_in: int, started: datetime, timings: Mapping[str, float]
) -> dict[str, Any]:
    """``summary.json``: the jobs run and the object counts, which must add up."""
    assert rt.gt is not None and rt.dispatcher is not None
    s3 = rt.client("s3")

    def read(uri: str) -> bytes:
        bucket, key = uri[5:].split("/", 1)
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    jobs = sorted(rt.gt.jobs.values(), key=lambda j: j.created)
    states = object_states(jobs, read)
    pipeline = _pipeline_summary(read, rt.bucket, run)
    if pipeline is not None:
        # What the orchestrator decided after a job's output: accepted without audit (AuditPolicy=sample),
        # or failed after labeling (an overlay that can never be rendered, a bad mask reference).
        for oid, info in _outcomes(read, pipeline, "accepted").items():
            if info.get("outcome") == "not-audited" and states.get(oid, {}).get("state") == "stalled":
                states[oid].update(state="approved", reason="accepted without audit (AuditPolicy=sample)")
        for oid, info in _outcomes(read, pipeline, "failed").items():
            # The orchestrator's reason names the cause (a missing original, an overlay that cannot be
            # rendered) where Ground Truth's output manifest only says what happened to the task; an
            # object no job saw (refused by an audit-only start, missing from an output) has only it.
            if oid not in states:
                states[oid] = {"job": info.get("job"), "round": info.get("round"), "state": "failed", "reason": ""}
            if states[oid]["state"] in ("stalled", "failed") and info.get("reason"):
                states[oid].update(state="failed", reason=str(info["reason"]))
    counts = Counter(s["state"] for s in states.values())
    missing = max(0, objects_in - len(states))
    failed_reasons = Counter(_reason_key(s["reason"]) for s in states.values() if s["state"] == "failed")
    if missing:
        failed_reasons["never reached a labeling job's output manifest"] += missing
    failed = counts["failed"] + missing
    summary: dict[str, Any] = {
        "run": run.get("run"),
        "started": started.isoformat(timespec="seconds"),
        "bucket": rt.bucket,
        "jobs": [
            {
                "name": j.name,
                "kind": j.kind,
                "round": j.round,
                "status": j.status,
                "objects": j.total,
                "labeled": j.labeled,
                "failed": j.failed,
                "failure-reason": j.failure_reason,
                "seconds": round(j.modified - j.created, 2),
            }
            for j in jobs
        ],
        "counts": {
            "objects-in": objects_in,
            "approved": counts["approved"],
            "needing-attention": counts["needs-attention"],
            "failed": failed,
            "stalled": counts["stalled"],
            "failed-reasons": dict(failed_reasons.most_common()),
            "adds-up": objects_in == counts["approved"] + counts["needs-attention"] + failed + counts["stalled"],
        },
        "objects": dict(sorted(states.items())),
        "deliveries": {
            "ok": sum(1 for d in rt.dispatcher.deliveries if d.ok),
            "failed": [
                {
                    "rule": d.rule,
                    "function": d.function,
                    "attempt": d.attempt,
                    "gave-up": d.gave_up,
                    "dead-lettered": d.dead_lettered,
                    "error": d.error,
                }
                for d in rt.dispatcher.deliveries
                if not d.ok
            ],
        },
        "timings-seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    summary["pipeline-summary"] = pipeline
    # Finished means the orchestrator wrote the run's final summary and nothing is left half-way;
    # anything else is stuck, and says where and why.
    summary["finished"] = pipeline is not None and not counts["stalled"]
    if not summary["finished"]:
        summary["stuck"] = _why_stuck(jobs, rt.dispatcher.deliveries, counts["stalled"], pipeline is not None)
    if isinstance(pipeline, dict):
        # Two independent tallies (ours from GT's output manifests, the orchestrator's from its state).
        summary["counts"]["pipeline-agrees"] = (
            pipeline.get("approved"),
            pipeline.get("needs-attention"),
            pipeline.get("failed"),
        ) == (counts["approved"], counts["needs-attention"], failed)
    return summary


def _pipeline_summary(read: Callable[[str], bytes], bucket: str, run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The orchestrator's ``runs/<run>/summary.json``: written when the run ends, absent while it is stuck."""
    try:
        data = json.loads(read(f"s3://{bucket}/runs/{run.get('run')}/summary.json"))
    except Exception:  # absent (NoSuchKey) or unreadable: either way the run did not finish
        return None
    return data if isinstance(data, dict) else None


def _outcomes(read: Callable[[str], bytes], pipeline: Mapping[str, Any], manifest: str) -> dict[str, dict[str, Any]]:
    """``{object id: its gtaudit info}`` of one of the pipeline's cumulative outcome manifests."""
    uri = (pipeline.get("manifests") or {}).get(manifest)
    if not isinstance(uri, str):
        return {}
    try:
        body = read(uri)
    except Exception:  # no such manifest: nothing had that outcome
        return {}
    out = {}
    for item in iter_manifest(body.splitlines()):
        line = getattr(item, "data", None)
        if isinstance(line, dict):
            info = line.get("gtaudit")
            out[str(line.get(OBJECT_ID_KEY) or line.get("source-ref") or "")] = info if isinstance(info, dict) else {}
    return out


def _why_stuck(jobs: list[LabelingJobRun], deliveries: list[Any], stalled: int, summarized: bool) -> dict[str, Any]:
    """What is stuck and why: jobs that never ended, event deliveries that failed, objects left half-way."""
    unfinished = [f"{j.name} is {j.status}" for j in jobs if j.status not in ("Completed", "Failed", "Stopped")]
    failed = [
        f"{d.function} failed on {d.rule}: {(d.error or 'no error text').splitlines()[0][:300]}"
        for d in deliveries
        if not d.ok and d.gave_up
    ]
    reasons = [*unfinished, *failed]
    if not summarized:
        reasons.append("the orchestrator never wrote the run's final summary")
    if stalled:
        reasons.append(f"{stalled} object(s) were labeled but never audited")
    return {"objects": stalled, "reasons": reasons}


def run_demo(
    out: Path,
    *,
    workers: str = "scripted",
    images: Path | None = None,
    project: Path | None = None,
    seed: int = 0,
    timeout: float = 600.0,
    on_progress: Callable[[list[LabelingJobRun], str], None] | None = None,
    log: Callable[[str], None] = print,
    crashes: Mapping[str, int] | None = None,
    wrap_labeler: Callable[[Any], Any] | None = None,
    source: str | None = None,
    attribute: str | None = None,
    labels: str | None = None,
) -> DemoResult:
    """Run the demo; return its summary (also written to ``out/summary.json``).

    ``source`` starts the run at the audit stage from existing labels (``gtaudit_local.imports``),
    with ``images`` as where their images are; ``attribute`` names a Ground Truth manifest's label.
    ``labels`` is a ``--labels`` option (``gtaudit.labels.parse_label_option``): the stack's
    ``LabelSet`` for this runtime, so every stage shows and consolidates the same classes.

    ``crashes`` and ``wrap_labeler`` inject faults for drills (``tests/integration/local/test_faults.py``):
    functions whose processes die in their first n invocations, and a wrapper around each labeler.

    Raises
    ------
    DemoError
        ``out`` belongs to someone else, there are no images, or the run could not start (a source
        that cannot be read, or one whose every object is refused).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    project = find_project_root(project)
    images = images or default_images(project)
    if not images.is_dir() or not any(p.suffix.lower() in {".jpg", ".jpeg", ".png"} for p in images.iterdir()):
        raise DemoError(f"no .jpg/.jpeg/.png images in {images}")
    note = prepare_out(out)
    log(note)
    started = datetime.now(UTC)
    label_set = parse_label_option(labels)  # before anything starts: a bad option is a clear error
    labelers, auditors, per_object = make_workers(workers, project, seed)
    if workers == "scripted":
        warn_without_references(project, images, log)
    if wrap_labeler is not None:  # fault drills: a labeler at whose task something goes wrong
        labelers = [wrap_labeler(w) for w in labelers]
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
        ) as rt,
        contextlib.ExitStack() as people,  # exits before the runtime: a wait for a person ends first
    ):
        for worker in {id(w): w for w in (*labelers, *auditors)}.values():
            if hasattr(worker, "close"):
                people.callback(worker.close)
        # Runs first (last in): a task a person is released from by the shutdown is an interruption
        # to resume, not an abandonment to offer to someone else.
        assert rt.gt is not None
        people.callback(rt.gt.interrupt)
        timings["set-up (runtime start)"] = time.perf_counter() - t0
        assert rt.gt is not None
        with _environ(rt.client_env()):
            t = time.perf_counter()
            run = _start_audit(rt, source, images, attribute, log) if source else _start_run(rt, images)
            (out / MARKER).write_text(json.dumps({"run": run.get("run"), "started": started.isoformat()}))
            timings["start (upload, manifest, first job)"] = time.perf_counter() - t
            log(f"run {run.get('run')}: {run.get('objects')} objects, first job {run.get('job')}")
            t = time.perf_counter()
            gt = rt.gt

            def tick() -> None:
                if on_progress is not None:
                    on_progress(sorted(gt.jobs.values(), key=lambda j: j.created), "running")

            if not rt.wait_idle(timeout, on_tick=tick):
                log(f"the workflow did not settle within {timeout:.0f} s; writing what exists")
            tick()
            timings["workflow (all jobs and events)"] = time.perf_counter() - t
            for job in sorted(gt.jobs.values(), key=lambda j: j.created):
                timings[f"  {job.kind} r{job.round} ({job.name})"] = job.modified - job.created
            t = time.perf_counter()
            report = _trace_report(rt, out / "report")
            if report:
                timings["traceability report"] = time.perf_counter() - t
            t = time.perf_counter()
            n = mirror_bucket(rt.client("s3"), rt.bucket, out)
            timings[f"mirror bucket ({n} objects)"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t0
            summary = build_summary(rt, run, int(run.get("objects") or 0), started, timings)
    summary["started-clean"] = note
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return DemoResult(out, summary, note, timings)


def _trace_report(rt: LocalRuntime, out: Path) -> dict[str, Path]:
    """The traceability report (worker time, lineage) from the trace table the worktime function fills."""
    try:
        table = rt.stack.function("WorktimeFunction").environment["TRACE_TABLE"]
        from gtaudit.trace import write_report
    except (KeyError, ImportError):
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


def _start_run(rt: LocalRuntime, images: Path) -> dict[str, Any]:
    """Start a run as ``gtaudit start`` does."""
    from gtaudit.pipeline.start import start_run

    result: dict[str, Any] = start_run(images=str(images), **_start_clients(rt)).as_dict()
    return result


def _start_audit(
    rt: LocalRuntime, source: str, images: Path, attribute: str | None, log: Callable[[str], None]
) -> dict[str, Any]:
    """Start a run at the audit stage as ``gtaudit start --from`` does; log each refused object."""
    from gtaudit_local.imports import SourceError, start_from_source

    try:
        started = start_from_source(source, images=str(images), attribute=attribute, **_start_clients(rt))
    except SourceError as exc:
        raise DemoError(str(exc)) from exc
    for refusal in started.refused:
        log(f"refused {refusal.name}: {refusal.reason}")
    if started.job_name is None:
        raise DemoError(f"nothing to audit: every object of {source} was refused")
    result: dict[str, Any] = started.as_dict()
    return result
