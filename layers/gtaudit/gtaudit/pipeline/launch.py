"""Starting a job: register it, then create it, both idempotent; a job Ground Truth refuses ends the run."""

from __future__ import annotations

from typing import Any

from gtaudit.exceptions import JobRejectedError, PipelineStateError
from gtaudit.models.jobs import JobKind
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.context import Context
from gtaudit.pipeline.finish import on_failed
from gtaudit.pipeline.jobs import build_request, create_job
from gtaudit.pipeline.state import Job, PipelineState
from gtaudit.pipeline.templates import ensure_templates
from gtaudit.s3uri import S3Uri


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
    kind: JobKind,
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


def start_next(ctx: Context, job: Job, kind: JobKind, round_no: int, manifest: S3Uri, objects: int) -> tuple[str, bool]:
    """Create the next job: ``(name, True)``, or, if Ground Truth refuses it, end the run: ``(name, False)``."""
    run = ctx.state.get_run(job.run_id) or {}
    config = with_templates(ctx.config, ctx.clients.s3)
    try:
        name = launch(
            config,
            ctx.state,
            ctx.clients.sagemaker,
            run_id=job.run_id,
            kind=kind,
            round_no=round_no,
            manifest=manifest,
            objects=objects,
            label_category_uri=run.get("label_category_uri"),
        )
    except JobRejectedError as exc:
        refused = ctx.state.get_job(job.run_id, exc.job_name)
        if refused is None:
            raise PipelineStateError(f"job {exc.job_name} was refused but never registered") from exc
        on_failed(ctx, refused, {"LabelingJobStatus": "Failed", "FailureReason": str(exc)})
        return exc.job_name, False
    return name, True
