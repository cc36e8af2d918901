"""The pipeline's settings: stack parameters and resource names, read from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from gtaudit.exceptions import InvalidNameError
from gtaudit.names import validate_attribute_name

# Run IDs are UTC time plus 4 hex digits: sortable, unique enough, and always 20 characters,
# so names.job_name never has to shorten a job-name prefix of up to MAX_PREFIX characters.
RUN_ID = re.compile(r"^\d{8}t\d{6}-[0-9a-f]{4}$")
MAX_PREFIX = 24
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$")

# Environment variable of each field (the template sets them on the orchestrator).
ENV = {
    "bucket": "DATA_BUCKET",
    "table": "PIPELINE_TABLE",
    "prefix": "JOB_PREFIX",
    "workteam_arn": "WORKTEAM_ARN",
    "audit_workteam_arn": "AUDIT_WORKTEAM_ARN",
    "role_arn": "GROUND_TRUTH_ROLE_ARN",
    "labeling_template": "LABELING_TEMPLATE_URI",
    "audit_template": "AUDIT_TEMPLATE_URI",
    "labeling_pre_arn": "LABELING_PRE_ARN",
    "labeling_post_arn": "LABELING_POST_ARN",
    "audit_pre_arn": "AUDIT_PRE_ARN",
    "audit_post_arn": "AUDIT_POST_ARN",
    "topic_arn": "NOTIFY_TOPIC_ARN",
    "overlay_function": "OVERLAY_FUNCTION",
    "max_rounds": "MAX_ROUNDS",
    "audit_policy": "AUDIT_POLICY",
    "sample_rate": "AUDIT_SAMPLE_RATE",
    "agreement_threshold": "AGREEMENT_THRESHOLD",
    "gold_threshold": "GOLD_ACCURACY_THRESHOLD",
    "labelers_per_object": "LABELERS_PER_OBJECT",
    "auditors_per_object": "AUDITORS_PER_OBJECT",
    "task_time_limit": "TASK_TIME_LIMIT_SECONDS",
    "language": "TASK_LANGUAGE",
    "label_set": "LABEL_SET",
    "result_attribute": "RESULT_ATTRIBUTE",
}


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start every job name of the stack (the EventBridge rule matches on it)."""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise InvalidNameError(
            f"job-name prefix {prefix!r} must be 1-{MAX_PREFIX} lower-case letters, digits and inner hyphens"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything a step needs besides its clients. Empty strings mean "not configured"."""

    bucket: str
    table: str
    prefix: str = "gtaudit"
    workteam_arn: str = ""
    audit_workteam_arn: str = ""  # empty: the audit jobs go to workteam_arn too
    role_arn: str = ""
    labeling_template: str = ""
    audit_template: str = ""
    labeling_pre_arn: str = ""
    labeling_post_arn: str = ""
    audit_pre_arn: str = ""
    audit_post_arn: str = ""
    topic_arn: str = ""
    overlay_function: str = ""
    max_rounds: int = 3
    audit_policy: Literal["all", "sample"] = "all"
    sample_rate: float = 0.2
    agreement_threshold: float = 0.8
    # A labeler whose IoU against the gold objects' truth falls below this is flagged (SNS, report),
    # and the audit sample policy weighs accuracy against it (pipeline.sampling).
    gold_threshold: float = 0.8
    labelers_per_object: int = 2
    auditors_per_object: int = 1
    task_time_limit: int = 3600
    language: str = "en"
    label_set: str = ""  # the stack's LabelSet parameter (JSON); labeling_pre shows these labels
    # The outcome manifests' label in Ground Truth's built-in semantic-segmentation form:
    # "<result_attribute>-ref" (the mask) and "<result_attribute>-ref-metadata".
    result_attribute: str = "segmentation"

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)
        if not 1 <= self.max_rounds <= 9:
            raise ValueError(f"MAX_ROUNDS must be 1-9, got {self.max_rounds}")
        if self.audit_policy not in ("all", "sample"):
            raise ValueError(f"AUDIT_POLICY must be 'all' or 'sample', got {self.audit_policy!r}")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"AUDIT_SAMPLE_RATE must be in [0, 1], got {self.sample_rate}")
        for name in ("agreement_threshold", "gold_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{ENV[name]} must be in [0, 1], got {getattr(self, name)}")
        for name in ("labelers_per_object", "auditors_per_object"):
            if not 1 <= getattr(self, name) <= 9:
                raise ValueError(f"{ENV[name]} must be 1-9, got {getattr(self, name)}")
        if not 30 <= self.task_time_limit <= 28_800:
            raise ValueError(f"TASK_TIME_LIMIT_SECONDS must be 30-28800, got {self.task_time_limit}")
        try:  # the built-in type's rule: the attribute ends in -ref (reference section 3)
            validate_attribute_name(f"{self.result_attribute}-ref", custom=False)
        except InvalidNameError as exc:
            raise ValueError(f"RESULT_ATTRIBUTE: {exc}") from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> PipelineConfig:
        """Read every field from its environment variable (see ``ENV``); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV[f.name], "").strip()
            if not raw:
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            try:
                values[f.name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                raise ValueError(f"{ENV[f.name]} must be a number, got {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("bucket", "")
        values.setdefault("table", "")
        return cls(**values)

    def with_(self, **changes: Any) -> PipelineConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)
