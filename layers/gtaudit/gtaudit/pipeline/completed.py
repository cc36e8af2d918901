"""The two Completed steps: after labeling (or rework), hand the labeled objects to the audit; after
the audit, accept what was approved and send what was rejected back for rework (or to attention).

Every object of the job ends in exactly one place: the next job's manifest, an outcome part file
(accepted, needs-attention, failed), never two and never none (``OutputStep`` lists what is missing).

Gold objects (``gtaudit.gold``, round 1 only) are the exception, since they are not the run's: after
labeling, one whose label says it is seeded (``gold.seeded``) goes to the audit whatever the sample
policy says, its line marked ``gtaudit.seeded: <defect>``; every other one is dropped once its
scores are read. After the audit a seeded object is dropped too: its verdict scores the auditor
(the trace), never the labelers, and it is never reworked, accepted or needing attention.

The labeling step also reads every label's scores (``scores``: each worker against the vote;
``gold.scores``: against a gold truth) into per-labeler sums (``sampling.LabelerAccuracy``), kept
on the job item (``labeler_scores``). The sample policy weighs them, and a labeler whose gold IoU
over the run is below ``GoldAccuracyThreshold`` is flagged: one SNS notice per run and labeler
(a conditional ``FLAG#<worker>`` item), and the job item's ``flagged``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.exceptions import InvalidS3UriError
from gtaudit.gold import gold_object_ids
from gtaudit.manifest import GTAUDIT_KEY
from gtaudit.models.jobs import JobKind
from gtaudit.models.stages import AuditVerdict, ConsolidatedLabel, StepAction, StepResult
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.context import Context, notify
from gtaudit.pipeline.overlays import OverlayEnsurer
from gtaudit.pipeline.redo import Reconsolidation
from gtaudit.pipeline.sampling import AuditPolicy, LabelerAccuracy, LabelerStats
from gtaudit.pipeline.state import Job
from gtaudit.pipeline.step import HeldLines, OutputStep, advance, job_root, output_manifest, read_label
from gtaudit.s3io import exists
from gtaudit.s3uri import parse_s3_uri


def _policy(ctx: Context, job: Job, own: LabelerAccuracy) -> AuditPolicy:
    """The run's policy: audit counts of its audit jobs, IoU sums of its labeling jobs with this one's ``own``."""
    jobs = list(ctx.state.jobs(job.run_id))
    stats = LabelerStats.merge(j.labeler_counts for j in jobs if j.kind is JobKind.AUDIT)
    earlier = [j.labeler_scores for j in jobs if j.kind is not JobKind.AUDIT and j.name != job.name]
    accuracy = LabelerAccuracy.merge([*earlier, own.dump()])
    c = ctx.config
    return AuditPolicy(
        c.audit_policy, c.sample_rate, c.agreement_threshold, job.run_id, stats, accuracy, c.gold_threshold
    )


def _gold(ctx: Context, job: Job) -> frozenset[str]:
    """The run's gold object IDs where the job may hold gold (round 1), else none."""
    return gold_object_ids(ctx.clients.s3, ctx.config.bucket, job.run_id) if job.round == 1 else frozenset()


def _flag(ctx: Context, job: Job, accuracy: LabelerAccuracy) -> list[str]:
    """Flag each labeler whose gold IoU over the run is below the threshold; notify once per run and labeler.

    The ``FLAG#`` item is written before the notice, so a retried step never sends a second one (a
    publish that fails is logged, as every notice of the pipeline is).
    """
    threshold = ctx.config.gold_threshold
    below = accuracy.below(threshold)
    for worker, iou in below.items():
        if ctx.state.flag_labeler(job.run_id, worker, iou, job.name):
            notice = {
                "run": job.run_id,
                "labeler": worker,
                "gold-iou": round(iou, 4),
                "threshold": threshold,
                "gold-objects": accuracy.gold[worker].objects,
                "job": job.name,
            }
            notify(ctx, f"gtaudit: labeler {worker} below gold accuracy", notice)
    return list(below)


def _creation_date(desc: dict[str, Any]) -> str | None:
    """The label's ``creation-date``: when the job that settled it ended (``LastModifiedTime``), in
    Ground Truth's form (``2026-11-24T12:26:13.000000``, UTC); deterministic, so a retry writes the same."""
    when = desc.get("LastModifiedTime")
    if isinstance(when, datetime):
        return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(when) if when else None


class _Causes:
    """Leads a labeling failure's reason with its cause when that is a missing original.

    Workers cannot paint an image that is gone, so Ground Truth reports such an object as returned
    or expired; the missing original is the cause a person needs to read. One HEAD per original, for
    at most ``limit`` failures of a step (a job where every object expired must not spend the
    orchestrator's 15 minutes on HEADs); past that, Ground Truth's words are kept.
    """

    def __init__(self, s3: Any, limit: int = 200) -> None:
        self.s3, self.limit = s3, limit
        self._seen: dict[str, bool] = {}

    def __call__(self, original: Any, reason: str) -> str:
        try:
            uri = parse_s3_uri(original)
        except InvalidS3UriError:  # inline data: no original to check
            return reason
        key = str(uri)
        if key not in self._seen:
            if len(self._seen) >= self.limit:
                return reason
            try:
                self._seen[key] = exists(self.s3, uri)
            except ClientError:  # not ours to check (403), or S3 trouble: keep Ground Truth's words
                self._seen[key] = True
        return reason if self._seen[key] else f"source image not found: {key} ({reason})"


def _result(job: Job, counts: dict[str, int], next_job: str | None, started: bool, kind: JobKind) -> StepResult:
    created: StepAction = "audit-created" if kind is JobKind.AUDIT else "rework-created"
    action: StepAction = created if started else "failed" if next_job else "finished"
    return StepResult(job=job.name, action=action, next=next_job, counts=counts)


def on_labeling_completed(ctx: Context, job: Job, desc: dict[str, Any]) -> StepResult:
    """Labeled objects -> the audit manifest (or accepted as not audited, under the sample policy)."""
    s3, cfg = ctx.clients.s3, ctx.config
    attr = desc.get("LabelAttributeName") or job.attribute
    output = output_manifest(ctx, job, desc)
    gold = _gold(ctx, job)
    ensurer = OverlayEnsurer(
        s3,
        ctx.clients.lambda_client,
        job_root(ctx, job, desc),
        function=cfg.overlay_function,
        render_inline=ctx.render_inline,
        time_left=ctx.time_left,
    )
    audit_uri = mf.job_input(cfg.bucket, job.run_id, JobKind.AUDIT, job.round)
    counts = {"lines": 0, "consolidated": 0, "audit": 0, "low-agreement": 0, "not-audited": 0, "failed": 0}
    if gold:
        counts.update({"gold": 0, "seeded": 0})
    own = LabelerAccuracy()
    cause = _Causes(s3)
    created = _creation_date(desc)
    redo = Reconsolidation(ctx, job, job_root(ctx, job, desc), attr, str(desc.get("LabelingJobArn") or job.name))
    with (
        HeldLines() as held,
        mf.ManifestWriter(s3, audit_uri) as audit,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "accepted", job.name)) as accepted,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "failed", job.name)) as failed,
    ):
        step = OutputStep(job, counts, failed, gold)

        def take(oid: str, original: str | None, label: ConsolidatedLabel | str, *, gave_up: bool = False) -> None:
            """Read a consolidated object's scores and hold its audit line until the policy can decide
            (or list it as failed; ``gave_up``: Ground Truth's own failure, whose cause may be a missing
            original). A gold object's line is held only if it is seeded."""
            if isinstance(label, ConsolidatedLabel) and not label.mask_ref:
                label = "consolidated without a mask-ref"
            if isinstance(label, str):
                step.fail(oid, original, cause(original, label) if gave_up else label, stage="labeling")
                return
            own.add_label(label)
            seeded = label.gold.seeded if oid in gold and label.gold else None
            if oid in gold:
                counts["gold"] += 1
                if seeded is None:
                    return  # scored; never an object of the run
            else:
                counts["consolidated"] += 1
            try:
                mask = parse_s3_uri(label.mask_ref)
            except InvalidS3UriError as exc:
                step.fail(oid, original, f"bad mask-ref: {exc}", stage="labeling")
                return
            audit_line = mf.audit_line(
                object_id=oid,
                round_no=job.round,
                original=original or "",
                mask=str(mask),
                overlay=str(ensurer.overlay_for(mask)),
                color_map=label.dump().get("internal-color-map", {}),
                labelers=label.workers,
                agreement=label.agreement,
                labeling_job=job.name,
                seeded=seeded,
            )
            held.hold(oid, "seeded" if seeded else "candidate", audit_line)

        for oid, line in step.lines(s3, output):
            original = line.get("source-ref")
            label = read_label(line, attr, ConsolidatedLabel, "no label: skipped by labeling_pre or not worked")
            meta = line.get(f"{attr}-metadata")
            if isinstance(label, str) and isinstance(meta, dict) and meta.get("failure-reason"):
                redo.add(oid, original, label)  # Ground Truth gave up on it; its answers may still be in S3
                continue
            take(oid, original, label)
        redone = redo.run()
        counts["redone"] = sum(isinstance(v, ConsolidatedLabel) for v in redone.values())
        for oid, label in redone.items():
            take(oid, redo.candidates[oid][0], label, gave_up=True)
        step.fail_missing(ctx, output)
        counts.update({f"overlays-{k}": v for k, v in ensurer.finish().items()})
        # Every label is read, so the policy knows this job's accuracy too; and every overlay is
        # known: an object whose overlay can never be rendered fails alone.
        policy = _policy(ctx, job, own)
        for oid, target, line in held:
            info = line[GTAUDIT_KEY]
            if info["mask"] in ensurer.failures:
                original = info.get("original") or line.get("source-ref")
                step.fail(oid, original, ensurer.failures[info["mask"]], stage="labeling", mask=info["mask"])
            elif target == "seeded":
                counts["seeded"] += 1
                audit.write(line)
            elif (why := policy.decide(oid, job.round, info["labelers"], info["agreement"])) is None:
                counts["not-audited"] += 1
                accepted.write(_not_audited(cfg.result_attribute, oid, info, created))
            else:
                counts["audit"] += 1
                counts["low-agreement"] += why == "low-agreement"
                audit.write(line)
    flagged = _flag(ctx, job, policy.accuracy)
    to_audit = counts["audit"] + counts.get("seeded", 0)
    next_job, started = advance(
        ctx,
        job,
        counts,
        (JobKind.AUDIT, job.round, audit_uri, to_audit),
        attributes={"labeler_scores": own.dump(), "flagged": flagged},
    )
    return _result(job, counts, next_job, started, JobKind.AUDIT)


def _not_audited(attribute: str, oid: str, info: dict[str, Any], created: str | None) -> dict[str, Any]:
    """The accepted line of an object the policy did not sample, from its held audit line's ``info``."""
    mask, color_map, job = info["mask"], info["color-map"], info["labeling-job"]
    return mf.outcome_line(
        object_id=oid,
        original=info["original"],
        outcome="not-audited",
        label=mf.builtin_label(attribute, mask, color_map, job, created),
        round_no=info["round"],
        job=job,
        mask=mask,
        overlay=info["overlay"],
        color_map=color_map,
        labelers=info["labelers"],
        agreement=info["agreement"],
    )


def on_audit_completed(ctx: Context, job: Job, desc: dict[str, Any]) -> StepResult:
    """Audited objects -> accepted, rework (with the feedback), or needs-attention after the last round."""
    s3, cfg = ctx.clients.s3, ctx.config
    attr = desc.get("LabelAttributeName") or job.attribute
    output = output_manifest(ctx, job, desc)
    last_round = job.round >= cfg.max_rounds
    created = _creation_date(desc)
    rework_uri = mf.job_input(cfg.bucket, job.run_id, JobKind.REWORK, job.round + 1)
    counts = {"lines": 0, "approved": 0, "rejected": 0, "rework": 0, "needs-attention": 0, "failed": 0}
    gold = _gold(ctx, job)
    if gold:
        counts["seeded"] = 0
    labelers: dict[str, dict[str, int]] = {}
    with (
        mf.ManifestWriter(s3, rework_uri, write_empty=False) as rework,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "accepted", job.name)) as accepted,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "needs-attention", job.name)) as attention,
        mf.ManifestWriter(s3, mf.part(cfg.bucket, job.run_id, "failed", job.name)) as failed,
    ):
        step = OutputStep(job, counts, failed, gold)
        for oid, line in step.lines(s3, output):
            info: dict[str, Any] = line[GTAUDIT_KEY] if isinstance(line.get(GTAUDIT_KEY), dict) else {}
            original, mask, color_map = info.get("original"), info.get("mask"), info.get("color-map") or {}
            verdict = read_label(line, attr, AuditVerdict, "no audit result: skipped by audit_pre or not worked")
            if isinstance(verdict, str):
                step.fail(oid, original, verdict, stage="audit", mask=mask, labeling_job=info.get("labeling-job"))
                continue
            if oid in gold:  # seeded: the verdict scores the auditors (the trace), not the labelers
                counts["seeded"] += 1
                continue
            common: dict[str, Any] = {"object_id": oid, "original": original, "round_no": job.round, "job": job.name}
            for w in info.get("labelers") or []:
                c = labelers.setdefault(str(w), {"audited": 0, "rejected": 0})
                c["audited"] += 1
                c["rejected"] += verdict.verdict == "reject"
            feedback = verdict.feedback().dump()
            result_label = (
                mf.builtin_label(cfg.result_attribute, mask, color_map, info.get("labeling-job"), created)
                if isinstance(mask, str)
                else None
            )
            if verdict.verdict == "approve":
                counts["approved"] += 1
                accepted.write(
                    mf.outcome_line(
                        **common,
                        outcome="approved",
                        label=result_label,
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
                        label=result_label,
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
    next_job, started = advance(
        ctx, job, counts, (JobKind.REWORK, job.round + 1, rework_uri, counts["rework"]), labelers
    )
    return _result(job, counts, next_job, started, JobKind.REWORK)
