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

The modules of a step: ``context`` (clients, settings, the SNS notice), ``completed`` (the two
Completed steps, over ``step``'s output reading), ``launch`` (the next job), ``finish`` (Failed and
Stopped jobs, cumulative manifests, the summary).
"""

from __future__ import annotations

import uuid

from gtaudit.models.jobs import TERMINAL_STATUSES, JobKind, JobStateChangeEvent
from gtaudit.models.stages import StepResult
from gtaudit.pipeline.completed import on_audit_completed, on_labeling_completed
from gtaudit.pipeline.context import Context
from gtaudit.pipeline.finish import on_failed
from gtaudit.pipeline.jobs import parse_name
from gtaudit.pipeline.state import DONE


def handle_job_event(ctx: Context, event: JobStateChangeEvent, *, owner: str | None = None) -> StepResult:
    """Handle one job state event.

    Parameters
    ----------
    ctx
        Settings, clients and the state table.
    event
        The parsed EventBridge event.
    owner
        The lease owner (the Lambda request ID); a fresh UUID if not given.

    Returns
    -------
    StepResult
        What was done (``ignored``, ``duplicate``, ``busy``, ``audit-created``, ``rework-created``,
        ``finished``, ``failed``) and the step's counts.

    Raises
    ------
    StepPendingError
        The step cannot finish yet (overlays still rendering); the retry resumes it.
    """
    name = event.job_name
    parsed = parse_name(name)
    if parsed is None or not name.startswith(f"{ctx.config.prefix}-"):
        return StepResult(job=name, action="ignored", why="not one of this stack's jobs")
    _, _, run_id = parsed
    job = ctx.state.get_job(run_id, name)
    if job is None:
        return StepResult(job=name, action="ignored", why="unknown job")
    if job.status in DONE:
        return StepResult(job=name, action="duplicate", status=job.status)
    desc = ctx.clients.sagemaker.describe_labeling_job(LabelingJobName=name)
    status = desc["LabelingJobStatus"]
    if status not in TERMINAL_STATUSES:
        # An event that overtook the job's real state (or a stale replay): a later event will come.
        return StepResult(job=name, action="ignored", why=f"job is {status} (event said {event.detail.status})")
    if not ctx.state.acquire(run_id, name, owner or str(uuid.uuid4())):
        fresh = ctx.state.get_job(run_id, name)
        if fresh is not None and fresh.status in DONE:
            return StepResult(job=name, action="duplicate", status=fresh.status)
        return StepResult(job=name, action="busy", why="another invocation holds the lease")
    if status != "Completed":
        return on_failed(ctx, job, desc)
    if job.kind is JobKind.AUDIT:
        return on_audit_completed(ctx, job, desc)
    return on_labeling_completed(ctx, job, desc)
