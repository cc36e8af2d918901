"""Labeling jobs: the kinds this pipeline creates, and Ground Truth's job state change event.

The event (reference section 7) is EventBridge's envelope around ``{"LabelingJobStatus": ...}``;
it names the job only by ARN in ``resources`` and carries no failure reason (the orchestrator asks
``DescribeLabelingJob`` for the truth, since EventBridge delivers at least once and in any order).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, field_validator

STATE_CHANGE = "SageMaker Ground Truth Labeling Job State Change"
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
_JOB_ARN = ":labeling-job/"


class JobKind(StrEnum):
    """The three kinds of labeling job a run creates; the value is the job name's kind part."""

    LABELING = "labeling"
    REWORK = "rework"
    AUDIT = "audit"

    @property
    def stage(self) -> Literal["labeling", "audit"]:
        """The stage whose Lambdas and worker template a job of this kind uses (rework labels again)."""
        return "audit" if self is JobKind.AUDIT else "labeling"


class JobStateDetail(BaseModel):
    """``detail`` of the state change event."""

    model_config = ConfigDict(extra="allow", frozen=True)

    status: str = Field(alias="LabelingJobStatus")


class JobStateChangeEvent(EventBridgeModel):
    """Ground Truth's ``SageMaker Ground Truth Labeling Job State Change`` event, on Powertools' EventBridge model."""

    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Ground Truth Labeling Job State Change"] = Field(alias="detail-type")
    detail: JobStateDetail  # narrows the envelope's raw detail

    @field_validator("resources")
    @classmethod
    def _names_a_job(cls, value: list[str]) -> list[str]:
        if not any(_JOB_ARN in r for r in value):
            raise ValueError("names no labeling job")
        return value

    @property
    def job_name(self) -> str:
        """The labeling job's name, from the first labeling-job ARN in ``resources``."""
        arn = next(r for r in self.resources if _JOB_ARN in r)
        return arn.rsplit(_JOB_ARN, 1)[1]
