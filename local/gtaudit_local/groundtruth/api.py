"""SageMaker's labeling-job API as Ground Truth answers it: errors, ``CreateLabelingJob``'s checks, Describe and List.

Everything here is a function of the request and the job records; the emulator
(:mod:`gtaudit_local.groundtruth.emulator`) keeps the records and dispatches the JSON 1.1 calls.
An error is an :class:`ApiError`, answered as ``{"__type": code, "message": ...}`` with HTTP 400,
so boto3 raises the ``ClientError`` it would raise against AWS.

``CreateLabelingJob`` applies GT's validation: name and label attribute name rules, required
fields, value ranges, S3 URIs, role and workteam ARNs, and Lambda ARNs that exist in the local
Lambda service. Only what the pipeline uses is emulated (an S3 manifest, a custom template, a
private workteam); anything else is refused with a message that says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from gtaudit.exceptions import InvalidNameError, InvalidS3UriError
from gtaudit.names import validate_attribute_name, validate_job_name
from gtaudit.s3uri import parse_s3_uri

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.lambdas import LambdaService

_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_WORKTEAM_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:workteam/.+$")
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z\-]*:lambda:[a-z0-9\-]*:[0-9]{12}:function:.+$")
_REQUIRED = (
    "LabelingJobName",
    "LabelAttributeName",
    "InputConfig.DataSource",
    "OutputConfig.S3OutputPath",
    "RoleArn",
    "HumanTaskConfig.WorkteamArn",
    "HumanTaskConfig.UiConfig",
    "HumanTaskConfig.TaskTitle",
    "HumanTaskConfig.TaskDescription",
    "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
    "HumanTaskConfig.TaskTimeLimitInSeconds",
)


class ApiError(Exception):
    """An API error answered as ``{"__type": code, "message": ...}`` with HTTP 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validation(message: str) -> ApiError:
    """GT's ``ValidationException``."""
    return ApiError("ValidationException", message)


def dig(d: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of nested mappings, or ``None`` where any part is missing."""
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def validate_create(req: dict[str, Any], workteams: Collection[str], lambdas: LambdaService) -> None:
    """GT's checks on ``CreateLabelingJob``; raise ``ApiError`` on the first failure.

    Parameters
    ----------
    req
        The request body.
    workteams
        The ARNs of the workteams that exist.
    lambdas
        The local Lambda service: the request's Lambda ARNs must name its functions.
    """
    for path in _REQUIRED:
        if dig(req, path) is None:
            raise validation(f"Missing required field: {path}")
    try:
        validate_job_name(req["LabelingJobName"])
        validate_attribute_name(req["LabelAttributeName"], custom=True)
    except InvalidNameError as exc:
        raise validation(str(exc)) from exc
    manifest = dig(req, "InputConfig.DataSource.S3DataSource.ManifestS3Uri")
    if manifest is None:
        raise validation("InputConfig.DataSource: only S3DataSource.ManifestS3Uri is emulated (no SNS streaming)")
    uris = {"ManifestS3Uri": manifest, "S3OutputPath": req["OutputConfig"]["S3OutputPath"]}
    ui = req["HumanTaskConfig"]["UiConfig"]
    if "UiTemplateS3Uri" not in ui:
        raise validation("UiConfig: only UiTemplateS3Uri (a custom template) is emulated, not HumanTaskUiArn")
    uris["UiTemplateS3Uri"] = ui["UiTemplateS3Uri"]
    if req.get("LabelCategoryConfigS3Uri") is not None:
        uris["LabelCategoryConfigS3Uri"] = req["LabelCategoryConfigS3Uri"]
    for key, uri in uris.items():
        try:
            if key == "S3OutputPath":
                if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) > 1024:
                    raise InvalidS3UriError(f"not an s3:// URI: {uri!r}")
                parse_s3_uri(uri.rstrip("/") + "/x")
            else:
                parse_s3_uri(uri)
        except InvalidS3UriError as exc:
            raise validation(f"{key}: {exc}") from exc
    if not isinstance(req["RoleArn"], str) or not _ROLE_ARN.match(req["RoleArn"]):
        raise validation(f"RoleArn {req['RoleArn']!r} is not an IAM role ARN")
    htc = req["HumanTaskConfig"]
    if not _WORKTEAM_ARN.match(str(htc["WorkteamArn"])):
        raise validation(f"WorkteamArn {htc['WorkteamArn']!r} is not a workteam ARN")
    if htc["WorkteamArn"] not in workteams:
        raise validation(f"Workteam {htc['WorkteamArn']} does not exist")
    _range(htc, "TaskTitle", 1, 128, length=True)
    _range(htc, "TaskDescription", 1, 255, length=True)
    _range(htc, "NumberOfHumanWorkersPerDataObject", 1, 9)
    _range(htc, "TaskTimeLimitInSeconds", 30, 28_800)
    _range(htc, "TaskAvailabilityLifetimeInSeconds", 60, 864_000)
    _range(htc, "MaxConcurrentTaskCount", 1, 5_000)
    keywords = htc.get("TaskKeywords")
    if keywords is not None and (
        not isinstance(keywords, list)
        or not 1 <= len(keywords) <= 5
        or any(not isinstance(k, str) or not 1 <= len(k) <= 30 for k in keywords)
    ):
        raise validation("TaskKeywords: 1-5 keywords of 1-30 characters")
    pre = htc.get("PreHumanTaskLambdaArn")
    post = dig(htc, "AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn")
    for key, arn in (("PreHumanTaskLambdaArn", pre), ("AnnotationConsolidationLambdaArn", post)):
        if arn is None:
            raise validation(f"{key} is required for a custom task type")
        if not isinstance(arn, str) or not _LAMBDA_ARN.match(arn):
            raise validation(f"{key} {arn!r} is not a Lambda function ARN")
        if not lambdas.exists(arn):
            raise validation(f"{key}: function {arn} does not exist")
    tags = req.get("Tags") or []
    if len(tags) > 50:
        raise validation("Tags: at most 50")


def _range(d: Mapping[str, Any], key: str, lo: int, hi: int, *, length: bool = False) -> None:
    if key not in d:
        return
    value = d[key]
    n = len(value) if length and isinstance(value, str) else value
    if not isinstance(n, int) or isinstance(n, bool) or not lo <= n <= hi:
        what = "length" if length else "value"
        raise validation(f"{key}: {what} must be between {lo} and {hi}, got {value!r}")


def _outcome(job: LabelingJobRun) -> dict[str, Any]:
    """The ``FailureReason`` and ``LabelingJobOutput`` that Describe and List report once known."""
    out: dict[str, Any] = {}
    if job.failure_reason:
        out["FailureReason"] = job.failure_reason
    if job.output_manifest:
        out["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.output_manifest}
    return out


def describe(job: LabelingJobRun) -> dict[str, Any]:
    """``DescribeLabelingJob``'s answer for one job."""
    r = job.request
    out: dict[str, Any] = {
        "LabelingJobStatus": job.status,
        "LabelCounters": job.counters(),
        "CreationTime": job.created,
        "LastModifiedTime": job.modified,
        "JobReferenceCode": hashlib.sha256(job.arn.encode()).hexdigest()[:16],
        "LabelingJobName": job.name,
        "LabelingJobArn": job.arn,
        "LabelAttributeName": r["LabelAttributeName"],
        "InputConfig": r["InputConfig"],
        "OutputConfig": r["OutputConfig"],
        "RoleArn": r["RoleArn"],
        "HumanTaskConfig": r["HumanTaskConfig"],
    }
    for key in ("LabelCategoryConfigS3Uri", "StoppingConditions", "Tags"):
        if key in r:
            out[key] = r[key]
    return {**out, **_outcome(job)}


def list_jobs(jobs: Sequence[LabelingJobRun], req: Mapping[str, Any]) -> dict[str, Any]:
    """``ListLabelingJobs``'s answer: its filters, sorting and paging over ``jobs``."""
    jobs = list(jobs)
    if req.get("NameContains"):
        jobs = [j for j in jobs if str(req["NameContains"]).lower() in j.name.lower()]
    if req.get("StatusEquals"):
        jobs = [j for j in jobs if j.status == req["StatusEquals"]]
    for key, attr, after in (
        ("CreationTimeAfter", "created", True),
        ("CreationTimeBefore", "created", False),
        ("LastModifiedTimeAfter", "modified", True),
        ("LastModifiedTimeBefore", "modified", False),
    ):
        if req.get(key) is not None:
            limit = float(req[key])
            jobs = [j for j in jobs if (getattr(j, attr) > limit) == after]
    sort_by = req.get("SortBy", "CreationTime")
    keyf: Callable[[LabelingJobRun], Any] = {
        "Name": lambda j: j.name,
        "Status": lambda j: j.status,
    }.get(sort_by, lambda j: j.created)
    jobs.sort(key=keyf, reverse=req.get("SortOrder", "Ascending") == "Descending")
    max_results = int(req.get("MaxResults") or 10)
    if not 1 <= max_results <= 100:
        raise validation("MaxResults must be between 1 and 100")
    start = int(req["NextToken"]) if str(req.get("NextToken") or "").isdigit() else 0
    page = jobs[start : start + max_results]
    out: dict[str, Any] = {"LabelingJobSummaryList": [_summary(j) for j in page]}
    if start + max_results < len(jobs):
        out["NextToken"] = str(start + max_results)
    return out


def _summary(job: LabelingJobRun) -> dict[str, Any]:
    htc = job.request["HumanTaskConfig"]
    s: dict[str, Any] = {
        "LabelingJobName": job.name,
        "LabelingJobArn": job.arn,
        "CreationTime": job.created,
        "LastModifiedTime": job.modified,
        "LabelingJobStatus": job.status,
        "LabelCounters": job.counters(),
        "WorkteamArn": htc["WorkteamArn"],
        "PreHumanTaskLambdaArn": htc.get("PreHumanTaskLambdaArn", ""),
        "InputConfig": job.request["InputConfig"],
    }
    post = dig(htc, "AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn")
    if post:
        s["AnnotationConsolidationLambdaArn"] = post
    return {**s, **_outcome(job)}
