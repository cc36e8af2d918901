"""The orchestrator's state machine: one Ground Truth job state event in, the next step out.

::

    start ──> label r1 ──Completed──> audit r1 ──Completed──> rework r2 ──> audit r2 ──> ... ──> final
                 │                       │  approved/not audited -> accepted
                 │                       │  rejected, round < MaxRounds -> rework r+1
                 │                       │  rejected, round = MaxRounds -> needs attention
                 │  failed/skipped/expired objects -> failed (with reason)
       any job Failed/Stopped -> its objects -> failed, run ends, SNS notification

Each event is handled by ``handle_job_event``. DescribeLabelingJob, not the event, decides what
the job's state is, so duplicates and out-of-order events act on the truth. A step writes only
deterministic S3 keys and creates only deterministically named jobs, so a step that crashed
half-way is finished by the retry of the same event, and a duplicate event finds the job
``processed`` and does nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from gtaudit import layout
from gtaudit.exceptions import (
    InvalidEventError,
    InvalidS3UriError,
    JobRejectedError,
    PipelineStateError,
    StepPendingError,
)
from gtaudit.manifest import GTAUDIT_KEY, BadLine, iter_manifest, object_id_of
from gtaudit.names import attribute_name
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.jobs import build_request, create_job, parse_name
from gtaudit.pipeline.overlays import OverlayEnsurer
from gtaudit.pipeline.sampling import AuditPolicy, LabelerStats
from gtaudit.pipeline.state import Job, PipelineState
from gtaudit.pipeline.templates import ensure_templates
from gtaudit.s3io import iter_lines, put_json
from gtaudit.s3uri import S3Uri, parse_s3_uri

log = logging.getLogger(__name__)
DETAIL_TYPE = "SageMaker Ground Truth Labeling Job State Change"
TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class Clients:
    """The AWS clients a step uses (boto3 or fakes); ``table`` is a boto3 DynamoDB ``Table``."""

    s3: Any
    sagemaker: Any
    table: Any
    sns: Any = None
    lambda_client: Any = None


@dataclass
class Context:
    """What a step knows besides its clients."""

    config: PipelineConfig
    clients: Clients
    state: PipelineState
    time_left: Callable[[], float] | None = None
    render_inline: Callable[[list[str]], Any] | None = None


def job_name_of(event: dict[str, Any]) -> tuple[str, str]:
    """``(job name, status)`` from an EventBridge job state event."""
    if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE or event.get("source") != "aws.sagemaker":
        raise InvalidEventError("not a Ground Truth labeling job state change event")
    resources = event.get("resources") or []
    if not isinstance(resources, list):
        raise InvalidEventError("the event's resources is not a list")
    arn = next((r for r in resources if isinstance(r, str) and ":labeling-job/" in r), None)
    if arn is None:
        raise InvalidEventError("the event names no labeling job in resources")
    detail = event.get("detail")
    status = detail.get("LabelingJobStatus") if isinstance(detail, dict) else None
    return arn.rsplit(":labeling-job/", 1)[1], str(status)


def handle_job_event(ctx: Context, event: dict[str, Any], *, owner: str | None = None) -> dict[str, Any]:
    """Handle one job state event.

    Parameters
    ----------
    ctx
        Settings, clients and the state table.
    event
        The EventBridge event (``detail-type`` "SageMaker Ground Truth Labeling Job State Change").
    owner
        The lease owner (the Lambda request ID); a fresh UUID if not given.

    Returns
    -------
    dict
        ``{"job", "action", ...}``: what was done (``ignored``, ``duplicate``, ``busy``,
        ``audit-created``, ``rework-created``, ``finished``, ``failed``).

    Raises
    ------
    InvalidEventError
        Not a job state event.
    StepPendingError
        The step cannot finish yet (overlays still rendering); the retry resumes it.
    """
    name, event_status = job_name_of(event)
    parsed = parse_name(name)
    if parsed is None or not name.startswith(f"{ctx.config.prefix}-"):
        return {"job": name, "action": "ignored", "why": "not one of this stack's jobs"}
    _, _, run_id = parsed
    job = ctx.state.get_job(run_id, name)
    if job is None:
        return {"job": name, "action": "ignored", "why": "unknown job"}
    if job.status in ("processed", "failed"):
        return {"job": name, "action": "duplicate", "status": job.status}
    desc = ctx.clients.sagemaker.describe_labeling_job(LabelingJobName=name)
    status = desc["LabelingJobStatus"]
    if status not in TERMINAL:
        # An event that overtook the job's real state (or a stale replay): a later event will come.
        return {"job": name, "action": "ignored", "why": f"job is {status} (event said {event_status})"}
    if not ctx.state.acquire(run_id, name, owner or str(uuid.uuid4())):
        fresh = ctx.state.get_job(run_id, name)
        if fresh is not None and fresh.status in ("processed", "failed"):
            return {"job": name, "action": "duplicate", "status": fresh.status}
        return {"job": name, "action": "busy", "why": "another invocation holds the lease"}
    if status != "Completed":
        return _on_failed(ctx, job, desc)
    if job.kind == "audit":
        return _on_audit_completed(ctx, job, desc)
    return _on_labeling_completed(ctx, job, desc)


# ---------------------------------------------------------------- helpers
def _output_manifest(ctx: Context, job: Job, desc: dict[str, Any]) -> S3Uri:
    uri = (desc.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri")
    if uri:
        return parse_s3_uri(uri)
    out = desc.get("OutputConfig", {}).get("S3OutputPath") or mf.output_path(ctx.config.bucket, job.run_id)
    return layout.output_manifest(layout.job_root(out, job.name))


def _lines(s3: Any, uri: S3Uri) -> Iterator[dict[str, Any] | BadLine]:
    for item in iter_manifest(iter_lines(s3, uri)):
        yield item if isinstance(item, BadLine) else item.data


def _failure_reason(content: Any, meta: Any) -> str | None:
    if isinstance(meta, dict) and meta.get("failure-reason"):
        return str(meta["failure-reason"])
    if isinstance(content, dict) and content.get("status") == "failed":
        return str(content.get("failure-reason") or "consolidation failed")
    return None


class _Step:
    """What the two Completed steps share: the job, its counts and its failed manifest."""

    def __init__(self, job: Job, counts: dict[str, int], failed: mf.ManifestWriter) -> None:
        self.job, self.counts, self.failed = job, counts, failed

    def fail(self, object_id: str, original: str | None, reason: str, **details: Any) -> None:
        """List one object as failed and count it."""
        self.counts["failed"] += 1
        self.failed.write(
            mf.outcome_line(
                object_id=object_id,
                original=original,
                outcome="failed",
                round_no=self.job.round,
                job=self.job.name,
                reason=reason,
                **details,
            )
        )

    def lines(self, s3: Any, output: S3Uri) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(object id, line)`` of each good output line; a bad line is counted and listed as failed."""
        for line in _lines(s3, output):
            self.counts["lines"] += 1
            if isinstance(line, BadLine):  # its object cannot be named; listed by line number, counted once
                self.fail(f"line-{line.number}", None, line.reason)
                continue
            yield object_id_of(line) or f"line-{self.counts['lines']}", line

    def fail_missing(self, ctx: Context, output: S3Uri) -> None:
        """Objects of the job's input that its output manifest lacks: listed as failed, never lost."""
        if self.counts["lines"] >= self.job.objects:
            return
        seen = _seen_ids(ctx, output)
        for line in _lines(ctx.clients.s3, parse_s3_uri(self.job.manifest)):
            if isinstance(line, BadLine):
                continue
            oid = object_id_of(line)
            if oid and oid not in seen:
                info = line.get(GTAUDIT_KEY) or {}
                original = info.get("original") or line.get("source-ref")
                self.fail(oid, original, "missing from the job's output manifest")


def _result(line: dict[str, Any], attr: str, done: str, absent: str) -> tuple[Any, str | None]:
    """The job's content for a line and why the object failed (``None`` when its status is ``done``)."""
    content = line.get(attr)
    reason = _failure_reason(content, line.get(f"{attr}-metadata"))
    if reason is None and not (isinstance(content, dict) and content.get("status") == done):
        reason = absent
    return content, reason


def _advance(
    ctx: Context,
    job: Job,
    counts: dict[str, int],
    next_step: tuple[str, int, S3Uri, int],
    labeler_counts: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Record the step, start the next job if it has objects (``next_step`` = kind, round, manifest,
    objects), rebuild the cumulative manifests, finish the run if nothing follows and mark the job."""
    ctx.state.record_counts(job.run_id, job.name, counts, labeler_counts)
    kind, round_no, manifest, objects = next_step
    next_job, started = None, False
    if objects:
        next_job, started = _start_next(ctx, job, kind, round_no, manifest, objects)
    _rebuild(ctx, job.run_id)
    if next_job is None:
        _finalize(ctx, job, "completed")
    ctx.state.finish_job(job.run_id, job.name, "processed", next_job=next_job)
    action = f"{kind}-created" if started else "failed" if next_job else "finished"
    return {"job": job.name, "action": action, "next": next_job, **counts}


def _seen_ids(ctx: Context, uri: S3Uri) -> set[str]:
    return {oid for line in _lines(ctx.clients.s3, uri) if isinstance(line, dict) and (oid := object_id_of(line))}


def with_templates(config: PipelineConfig, s3: Any) -> PipelineConfig:
    """``config`` with the worker template URIs filled in from this code's templates where unset."""
    if config.labeling_template and config.audit_template:
        return config
    uris = ensure_templates(s3, config.bucket)
    return config.with_(
        labeling_template=config.labeling_template or uris["labeling"],
        audit_template=config.audit_template or uris["audit"],
    )


def launch(
    config: PipelineConfig,
    state: PipelineState,
    sagemaker: Any,
    *,
    run_id: str,
    kind: str,
    round_no: int,
    manifest: S3Uri,
    objects: int,
    label_category_uri: str | None = None,
) -> str:
    """Register, then create a job (both idempotent: a conditional put and a deterministic name).

    Returns
    -------
    str
        The job's name.
    """
    request = build_request(
        config,
        kind=kind,
        round_no=round_no,
        run_id=run_id,
        manifest=str(manifest),
        output_path=mf.output_path(config.bucket, run_id),
        label_category_uri=label_category_uri,
    )
    name: str = request["LabelingJobName"]
    state.register_job(
        Job(run_id, name, kind, round_no, str(manifest), request["LabelAttributeName"], "creating", objects)
    )
    create_job(sagemaker, request)
    state.mark_created(run_id, name)
    return name


def _start_next(ctx: Context, job: Job, kind: str, round_no: int, manifest: S3Uri, objects: int) -> tuple[str, bool]:
    """Create the next job: ``(name, True)``; if GT refuses it, end the run as failed: ``(name, False)``."""
    run = ctx.state.get_run(job.run_id) or {}
    config = with_templates(ctx.config, ctx.clients.s3)
    try:
        return _launch_next(ctx, config, job, kind, round_no, manifest, objects, run.get("label_category_uri")), True
    except JobRejectedError as exc:
        refused = ctx.state.get_job(job.run_id, exc.job_name)
        if refused is None:
            raise PipelineStateError(f"job {exc.job_name} was refused but never registered") from exc
        _on_failed(ctx, refused, {"LabelingJobStatus": "Failed", "FailureReason": str(exc)})
        return exc.job_name, False


def _launch_next(
    ctx: Context,
    config: PipelineConfig,
    job: Job,
    kind: str,
    round_no: int,
    manifest: S3Uri,
    objects: int,
    label_category_uri: str | None,
) -> str:
    return launch(
        config,
        ctx.state,
        ctx.clients.sagemaker,
        run_id=job.run_id,
        kind=kind,
        round_no=round_no,
        manifest=manifest,
        objects=objects,
        label_category_uri=label_category_uri,
    )


def _policy(ctx: Context, run_id: str) -> AuditPolicy:
    stats = LabelerStats.merge(j.labeler_counts for j in ctx.state.jobs(run_id) if j.kind == "audit")
    c = ctx.config
    return AuditPolicy(c.audit_policy, c.sample_rate, c.agreement_threshold, run_id, stats)


# ---------------------------------------------------------------- labeling or rework Completed
def _on_labeling_completed(ctx: Context, job: Job, desc: dict[str, Any]) -> dict[str, Any]:
    s3, cfg = ctx.clients.s3, ctx.config
    attr = desc.get("LabelAttributeName") or job.attribute
    out = desc.get("OutputConfig", {}).get("S3OutputPath") or mf.output_path(cfg.bucket, job.run_id)
    job_root = layout.job_root(out, job.name)
    output = _output_manifest(ctx, job, desc)
    policy = _policy(ctx, job.run_id)
    ensurer = OverlayEnsurer(
        s3,
        ctx.clients.lambda_client,
        job_root,
        function=cfg.overlay_function,
        render_inline=ctx.render_inline,
        time_left=ctx.time_left,
    )
    audit_uri = mf.job_input(cfg.bucket, job.run_id, "audit", job.round)
    counts = {"lines": 0, "consolidated": 0, "audit": 0, "low-agreement": 0, "not-audited": 0, "failed": 0}
    with (
        mf.ManifestWriter(s3, audit_uri) as audit,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "accepted", job.name)) as accepted,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "failed", job.name)) as failed,
    ):
        step = _Step(job, counts, failed)
        for oid, line in step.lines(s3, output):
            original = line.get("source-ref")
            content, reason = _result(line, attr, "consolidated", "no label: skipped by labeling_pre or not worked")
            mask_ref = content.get("mask-ref") if isinstance(content, dict) else None
            if reason is None and not mask_ref:
                reason = "consolidated without a mask-ref"
            if reason is not None:
                step.fail(oid, original, reason, stage="labeling")
                continue
            assert isinstance(content, dict)
            counts["consolidated"] += 1
            try:
                mask = parse_s3_uri(mask_ref)
            except InvalidS3UriError as exc:
                step.fail(oid, original, f"bad mask-ref: {exc}", stage="labeling")
                continue
            overlay = str(ensurer.overlay_for(mask))
            labelers = [str(w) for w in content.get("workers") or []]
            agreement = content.get("agreement")
            agreement = float(agreement) if isinstance(agreement, int | float) else None
            color_map = content.get("internal-color-map") or {}
            why = policy.decide(oid, job.round, labelers, agreement)
            if why is None:
                counts["not-audited"] += 1
                accepted.write(
                    mf.outcome_line(
                        object_id=oid,
                        original=original,
                        outcome="not-audited",
                        round_no=job.round,
                        job=job.name,
                        mask=str(mask),
                        overlay=overlay,
                        color_map=color_map,
                        labelers=labelers,
                        agreement=agreement,
                    )
                )
                continue
            counts["audit"] += 1
            if why == "low-agreement":
                counts["low-agreement"] += 1
            audit.write(
                mf.audit_line(
                    object_id=oid,
                    round_no=job.round,
                    original=original or "",
                    mask=str(mask),
                    overlay=overlay,
                    color_map=color_map,
                    labelers=labelers,
                    agreement=agreement,
                    labeling_job=job.name,
                )
            )
        step.fail_missing(ctx, output)
        counts.update({f"overlays-{k}": v for k, v in ensurer.finish().items()})
    return _advance(ctx, job, counts, ("audit", job.round, audit_uri, counts["audit"]))


# ---------------------------------------------------------------- audit Completed
def _on_audit_completed(ctx: Context, job: Job, desc: dict[str, Any]) -> dict[str, Any]:
    s3, cfg = ctx.clients.s3, ctx.config
    attr = desc.get("LabelAttributeName") or job.attribute
    output = _output_manifest(ctx, job, desc)
    last_round = job.round >= cfg.max_rounds
    rework_uri = mf.job_input(cfg.bucket, job.run_id, "rework", job.round + 1)
    counts = {"lines": 0, "approved": 0, "rejected": 0, "rework": 0, "needs-attention": 0, "failed": 0}
    labelers: dict[str, dict[str, int]] = {}
    with (
        mf.ManifestWriter(s3, rework_uri, write_empty=False) as rework,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "accepted", job.name)) as accepted,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "needs-attention", job.name)) as attention,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "failed", job.name)) as failed,
    ):
        step = _Step(job, counts, failed)
        for oid, line in step.lines(s3, output):
            info: dict[str, Any] = line[GTAUDIT_KEY] if isinstance(line.get(GTAUDIT_KEY), dict) else {}
            original, mask, color_map = info.get("original"), info.get("mask"), info.get("color-map") or {}
            content, reason = _result(line, attr, "audited", "no audit result: skipped by audit_pre or not worked")
            if reason is not None:
                step.fail(oid, original, reason, stage="audit", mask=mask, labeling_job=info.get("labeling-job"))
                continue
            common: dict[str, Any] = {"object_id": oid, "original": original, "round_no": job.round, "job": job.name}
            assert isinstance(content, dict)
            verdict = content.get("verdict")
            for w in info.get("labelers") or []:
                c = labelers.setdefault(str(w), {"audited": 0, "rejected": 0})
                c["audited"] += 1
                c["rejected"] += verdict == "reject"
            feedback = {k: content.get(k) for k in ("verdict", "reasons", "comment", "notes", "auditors")}
            if verdict == "approve":
                counts["approved"] += 1
                accepted.write(
                    mf.outcome_line(
                        **common,
                        outcome="approved",
                        mask=mask,
                        overlay=info.get("overlay"),
                        color_map=color_map,
                        labelers=info.get("labelers"),
                        agreement=info.get("agreement"),
                        labeling_job=info.get("labeling-job"),
                        audit=feedback,
                    )
                )
                continue
            counts["rejected"] += 1
            if last_round:
                counts["needs-attention"] += 1
                attention.write(
                    mf.outcome_line(
                        **common,
                        outcome="needs-attention",
                        reason=f"rejected in round {job.round}, the last of {cfg.max_rounds}",
                        mask=mask,
                        color_map=color_map,
                        labelers=info.get("labelers"),
                        feedback=feedback,
                    )
                )
                continue
            counts["rework"] += 1
            rework.write(
                mf.rework_line(
                    object_id=oid,
                    round_no=job.round + 1,
                    original=original or "",
                    mask=mask or "",
                    color_map=color_map,
                    feedback=feedback,
                )
            )
        step.fail_missing(ctx, output)
    return _advance(ctx, job, counts, ("rework", job.round + 1, rework_uri, counts["rework"]), labelers)


# ---------------------------------------------------------------- Failed / Stopped
def _on_failed(ctx: Context, job: Job, desc: dict[str, Any]) -> dict[str, Any]:
    status = desc["LabelingJobStatus"]
    reason = desc.get("FailureReason") or ("stopped" if status == "Stopped" else "no reason given")
    why = f"{job.kind} job {job.name} {status}: {reason}"
    n = 0
    with mf.ManifestWriter(ctx.clients.s3, mf.part(ctx.config.bucket, job.run_id, "failed", job.name)) as failed:
        for line in _lines(ctx.clients.s3, parse_s3_uri(job.manifest)):
            if isinstance(line, BadLine):
                continue
            info: dict[str, Any] = line[GTAUDIT_KEY] if isinstance(line.get(GTAUDIT_KEY), dict) else {}
            failed.write(
                mf.outcome_line(
                    object_id=object_id_of(line) or f"line-{n + 1}",
                    original=info.get("original") or line.get("source-ref"),
                    outcome="failed",
                    round_no=job.round,
                    job=job.name,
                    reason=why,
                    mask=info.get("mask"),
                )
            )
            n += 1
    ctx.state.record_counts(job.run_id, job.name, {"lines": 0, "failed": n})
    _notify(
        ctx,
        f"gtaudit: {job.kind} job {status}",
        {"run": job.run_id, "job": job.name, "status": status, "reason": reason, "objects": n},
    )
    _rebuild(ctx, job.run_id)
    _finalize(ctx, job, status.lower(), failure={"job": job.name, "status": status, "reason": reason})
    ctx.state.finish_job(job.run_id, job.name, "failed", failure=why)
    return {"job": job.name, "action": "failed", "status": status, "reason": reason, "failed": n}


# ---------------------------------------------------------------- cumulative manifests and summary
def _rebuild(ctx: Context, run_id: str) -> None:
    """Rebuild the cumulative manifests from the part files (idempotent: a pure function of the parts)."""
    s3, bucket = ctx.clients.s3, ctx.config.bucket
    for outcome in mf.OUTCOMES:
        mf.concatenate(s3, list(mf.list_parts(s3, bucket, run_id, outcome)), mf.cumulative(bucket, run_id, outcome))


def build_summary(
    ctx: Context,
    run_id: str,
    status: str,
    failure: dict[str, Any] | None = None,
    finishing: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The run's summary from the job items: per round and in total, with the balance check.

    ``finishing`` is ``(job name, status)`` of the job whose step is writing the summary (its item is
    marked only after the summary is safely written, so a crash in between is retried, not lost).
    """
    run = ctx.state.get_run(run_id)
    if run is None:
        raise PipelineStateError(f"unknown run {run_id!r}")
    rounds: dict[int, dict[str, Any]] = {}
    total = {"approved": 0, "not-audited": 0, "needs-attention": 0, "failed": 0}
    for job in sorted(ctx.state.jobs(run_id), key=lambda j: (j.round, j.kind == "audit")):
        r = rounds.setdefault(job.round, {"round": job.round})
        state = finishing[1] if finishing and finishing[0] == job.name else job.status
        entry = {"job": job.name, "status": state, "objects": job.objects, **job.counts}
        r["audit" if job.kind == "audit" else "labeling"] = entry
        c = job.counts
        total["approved"] += c.get("approved", 0)
        total["not-audited"] += c.get("not-audited", 0)
        total["needs-attention"] += c.get("needs-attention", 0)
        total["failed"] += c.get("failed", 0)
    objects_in = int(run.get("objects_in", 0))
    accepted = total["approved"] + total["not-audited"]
    bucket = ctx.config.bucket
    summary: dict[str, Any] = {
        "run": run_id,
        "status": status,
        "objects-in": objects_in,
        "approved": accepted,
        "approved-after-audit": total["approved"],
        "not-audited": total["not-audited"],
        "needs-attention": total["needs-attention"],
        "failed": total["failed"],
        "balanced": objects_in == accepted + total["needs-attention"] + total["failed"],
        "audit-policy": ctx.config.audit_policy,
        "max-rounds": ctx.config.max_rounds,
        "rounds": [rounds[k] for k in sorted(rounds)],
        "manifests": {o: str(mf.cumulative(bucket, run_id, o)) for o in mf.OUTCOMES},
    }
    if failure:
        summary["failure"] = failure
    return summary


def _finalize(ctx: Context, job: Job, status: str, failure: dict[str, Any] | None = None) -> None:
    """Write the summary (always, idempotently) and publish it once."""
    run_id = job.run_id
    summary = build_summary(ctx, run_id, status, failure, (job.name, "failed" if failure else "processed"))
    uri = mf.summary(ctx.config.bucket, run_id)
    put_json(ctx.clients.s3, uri, summary)
    if ctx.state.finish_run(run_id, status, str(uri)):
        _notify(ctx, f"gtaudit: run {run_id} {status}", {"summary": str(uri), **summary})


def _notify(ctx: Context, subject: str, message: dict[str, Any]) -> None:
    """Publish to the topic. A failed publish is logged, not raised: the same facts are in S3, and a
    retry must not re-run a finished step just to notify."""
    if ctx.clients.sns is None or not ctx.config.topic_arn:
        return
    try:
        ctx.clients.sns.publish(
            TopicArn=ctx.config.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, ensure_ascii=False)[:250_000],
        )
    except ClientError as exc:
        log.error("could not publish %r to %s: %s", subject, ctx.config.topic_arn, exc)


__all__ = ["Clients", "Context", "StepPendingError", "attribute_name", "build_summary", "handle_job_event"]
