"""CreateLabelingJob requests for the three kinds of job, and an idempotent create."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from gtaudit.exceptions import InvalidNameError, JobRejectedError
from gtaudit.models.jobs import JobKind
from gtaudit.names import attribute_name, job_name, parse_job_name
from gtaudit.pipeline.config import RUN_ID, PipelineConfig
from gtaudit.s3io import error_code, error_message

TASK_AVAILABILITY_SECONDS = 10 * 24 * 3600  # 10 days for a private workteam to pick the task up
MAX_CONCURRENT_TASKS = 1000
TEXT = {
    JobKind.LABELING: ("Segment the image", "Paint every object of the listed classes with its colour."),
    JobKind.REWORK: ("Fix a rejected segmentation", "Correct the mask as the auditor's notes say, then submit."),
    JobKind.AUDIT: ("Inspect a segmentation (検品)", "Approve the mask, or reject it with reasons and pinned notes."),
}


def attribute_stage(kind: JobKind) -> str:
    """The first part of a job's label attribute: ``label-r<N>`` for labeling and rework, ``audit-r<N>``."""
    return "audit" if kind is JobKind.AUDIT else "label"


def name_for(config: PipelineConfig, kind: JobKind, round_no: int, run_id: str) -> str:
    """The job's deterministic name; it always starts with the stack's prefix (the rule matches on it)."""
    name = job_name(config.prefix, kind, round_no, run_id)
    if not name.startswith(f"{config.prefix}-"):
        raise InvalidNameError(f"job name {name!r} does not start with the stack's prefix {config.prefix!r}")
    return name


def parse_name(name: str) -> tuple[JobKind, int, str] | None:
    """``(kind, round, run id)`` from one of our job names, None for anyone else's."""
    parts = parse_job_name(name)
    if parts is None or not RUN_ID.match(parts.run):
        return None
    return JobKind(parts.kind), parts.round, parts.run


def build_request(
    config: PipelineConfig,
    *,
    kind: JobKind,
    round_no: int,
    run_id: str,
    manifest: str,
    output_path: str,
    label_category_uri: str | None = None,
) -> dict[str, Any]:
    """The ``CreateLabelingJob`` parameters of one job.

    Parameters
    ----------
    config
        Workteam, role, template URIs and Lambda ARNs, workers per object, time limit.
    kind
        ``labeling`` (round 1), ``rework`` (round 2+) or ``audit``.
    round_no
        1-9.
    run_id, manifest, output_path
        The run, the job's input manifest URI and ``S3OutputPath``.
    label_category_uri
        The label category file (labeling jobs; GT hands its labels to the consolidation Lambda).

    Returns
    -------
    dict
        Keyword arguments for ``sagemaker.create_labeling_job``.
    """
    audit = kind is JobKind.AUDIT
    title, description = TEXT[kind]
    human: dict[str, Any] = {
        "WorkteamArn": (config.audit_workteam_arn or config.workteam_arn) if audit else config.workteam_arn,
        "UiConfig": {"UiTemplateS3Uri": config.audit_template if audit else config.labeling_template},
        "PreHumanTaskLambdaArn": config.audit_pre_arn if audit else config.labeling_pre_arn,
        "TaskKeywords": ["Images", "Image Segmentation", "Quality Inspection" if audit else "Labeling"],
        "TaskTitle": f"{title} (round {round_no})",
        "TaskDescription": description,
        "NumberOfHumanWorkersPerDataObject": config.auditors_per_object if audit else config.labelers_per_object,
        "TaskTimeLimitInSeconds": config.task_time_limit,
        "TaskAvailabilityLifetimeInSeconds": TASK_AVAILABILITY_SECONDS,
        "MaxConcurrentTaskCount": MAX_CONCURRENT_TASKS,
        "AnnotationConsolidationConfig": {
            "AnnotationConsolidationLambdaArn": config.audit_post_arn if audit else config.labeling_post_arn
        },
    }
    request: dict[str, Any] = {
        "LabelingJobName": name_for(config, kind, round_no, run_id),
        "LabelAttributeName": attribute_name(attribute_stage(kind), round_no),
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest}}},
        "OutputConfig": {"S3OutputPath": output_path},
        "RoleArn": config.role_arn,
        "HumanTaskConfig": human,
        "Tags": [
            {"Key": "gtaudit:run", "Value": run_id},
            {"Key": "gtaudit:kind", "Value": kind},
            {"Key": "gtaudit:round", "Value": str(round_no)},
        ],
    }
    if label_category_uri and not audit:
        request["LabelCategoryConfigS3Uri"] = label_category_uri
    missing = [
        k
        for k, v in (
            ("WorkteamArn", human["WorkteamArn"]),
            ("RoleArn", config.role_arn),
            ("UiTemplateS3Uri", human["UiConfig"]["UiTemplateS3Uri"]),
            ("PreHumanTaskLambdaArn", human["PreHumanTaskLambdaArn"]),
            (
                "AnnotationConsolidationLambdaArn",
                human["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"],
            ),
        )
        if not v
    ]
    if missing:
        raise ValueError(f"cannot create a {kind} job: not configured: {', '.join(missing)}")
    return request


def create_job(sagemaker: Any, request: dict[str, Any]) -> bool:
    """Create the job; return False if a job of that name already exists (a retry, or a duplicate event).

    Raises
    ------
    JobRejectedError
        Ground Truth answered ValidationException: the request itself is wrong (a deleted
        workteam, a bad template), so retrying cannot help. Other errors (throttling) propagate.
    """
    try:
        sagemaker.create_labeling_job(**request)
    except ClientError as exc:
        if error_code(exc) in ("ResourceInUse", "ResourceInUseException"):
            return False
        if error_code(exc) == "ValidationException":
            raise JobRejectedError(request["LabelingJobName"], error_message(exc)[:500]) from exc
        raise
    return True
