"""``summary.json``: what became of every object of a local run, and whether the run finished.

Two tallies that must agree: each object's final state read from the Ground Truth jobs' output
manifests (:func:`object_states`), and the orchestrator's own run summary with its outcome
manifests. Objects in = approved + needing attention + failed (+ stalled, which means stuck); a run
counts as finished only when the orchestrator wrote its final summary and nothing is stalled, and
otherwise :func:`build_summary` says what is stuck and why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gtaudit.gold import gold_object_ids
from gtaudit.manifest import OBJECT_ID_KEY, iter_manifest

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.runtime import LocalRuntime


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
    # Gold objects are labeled (and some audited) to score the workers, but are no objects of the run.
    for oid in gold_object_ids(s3, rt.bucket, str(run.get("run"))):
        states.pop(oid, None)
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
