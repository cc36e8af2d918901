"""The end of a job and of a run: failed jobs, the cumulative manifests, the summary and its notice.

A step that ends a run writes ``summary.json`` every time it runs (the summary is a pure function of
the job items, so a retry writes the same file) and publishes it once (``finish_run`` is conditional).
"""

from __future__ import annotations

from typing import Any

from gtaudit.exceptions import PipelineStateError
from gtaudit.gold import gold_object_ids
from gtaudit.manifest import GTAUDIT_KEY, BadLine, object_id_of
from gtaudit.models.jobs import JobKind
from gtaudit.models.stages import StepResult
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.context import Context, notify
from gtaudit.pipeline.state import Job
from gtaudit.s3io import put_json
from gtaudit.s3uri import parse_s3_uri


def on_failed(ctx: Context, job: Job, desc: dict[str, Any]) -> StepResult:
    """A job that Failed or was Stopped: each of its objects is listed as failed, and the run ends."""
    status = desc["LabelingJobStatus"]
    reason = desc.get("FailureReason") or ("stopped" if status == "Stopped" else "no reason given")
    why = f"{job.kind} job {job.name} {status}: {reason}"
    n = 0
    # Gold objects (round 1) are not the run's: they are not listed, so the balance holds.
    gold = gold_object_ids(ctx.clients.s3, ctx.config.bucket, job.run_id) if job.round == 1 else frozenset()
    with mf.ManifestWriter(ctx.clients.s3, mf.part(ctx.config.bucket, job.run_id, "failed", job.name)) as failed:
        for line in mf.read_lines(ctx.clients.s3, parse_s3_uri(job.manifest)):
            if isinstance(line, BadLine) or object_id_of(line) in gold:
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
    notify(
        ctx,
        f"gtaudit: {job.kind} job {status}",
        {"run": job.run_id, "job": job.name, "status": status, "reason": reason, "objects": n},
    )
    rebuild(ctx, job.run_id)
    finalize(ctx, job, status.lower(), failure={"job": job.name, "status": status, "reason": reason})
    ctx.state.finish_job(job.run_id, job.name, "failed", failure=why)
    return StepResult(job=job.name, action="failed", status=status, reason=reason, counts={"failed": n})


def rebuild(ctx: Context, run_id: str) -> None:
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
    for job in sorted(ctx.state.jobs(run_id), key=lambda j: (j.round, j.kind is JobKind.AUDIT)):
        r = rounds.setdefault(job.round, {"round": job.round})
        state = finishing[1] if finishing and finishing[0] == job.name else job.status
        entry = {"job": job.name, "status": state, "objects": job.objects, **job.counts}
        r[job.kind.stage] = entry
        c = job.counts
        total["approved"] += c.get("approved", 0)
        total["not-audited"] += c.get("not-audited", 0)
        total["needs-attention"] += c.get("needs-attention", 0)
        total["failed"] += c.get("failed", 0)
    # A run started from existing labels (pipeline.start_audit) counts the objects it refused.
    total["failed"] += int(run.get("import_refused", 0))
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
    if run.get("import_job"):
        summary["import"] = {"job": run["import_job"], "source": run.get("source"), "refused": run["import_refused"]}
    if failure:
        summary["failure"] = failure
    return summary


def finalize(ctx: Context, job: Job, status: str, failure: dict[str, Any] | None = None) -> None:
    """Write the summary (always, idempotently) and publish it once."""
    run_id = job.run_id
    summary = build_summary(ctx, run_id, status, failure, (job.name, "failed" if failure else "processed"))
    uri = mf.summary(ctx.config.bucket, run_id)
    put_json(ctx.clients.s3, uri, summary)
    if ctx.state.finish_run(run_id, status, str(uri)):
        notify(ctx, f"gtaudit: run {run_id} {status}", {"summary": str(uri), **summary})
