"""Ground Truth's events to our task Lambdas: pre-annotation, consolidation, and the consolidation batch.

Ground Truth's events carry more keys than its documentation lists (``outputConfig``,
``maxHumanWorkersPerDataObject``, ``vpcEnabled``, ...), so every model accepts unknown keys and
requires only what the code uses (reference sections 1 and 2).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from gtaudit.models import EventModel


class PreAnnotationEvent(EventModel):
    """The pre-annotation Lambda's event: one data object (one manifest line)."""

    version: str | None = None
    labeling_job_arn: str | None = Field(default=None, alias="labelingJobArn")
    data_object: dict[str, Any] = Field(alias="dataObject")


class Payload(EventModel):
    """Where Ground Truth put the batch of annotations to consolidate."""

    s3_uri: str = Field(alias="s3Uri")


class PostAnnotationEvent(EventModel):
    """The consolidation Lambda's event: one batch, given by ``payload.s3Uri``."""

    version: str | None = None
    labeling_job_arn: str | None = Field(default=None, alias="labelingJobArn")
    label_categories: list[str] | None = Field(default=None, alias="labelCategories")
    label_attribute_name: str = Field(alias="labelAttributeName", min_length=1)
    role_arn: str | None = Field(default=None, alias="roleArn")
    output_config: str | None = Field(default=None, alias="outputConfig")
    payload: Payload

    @field_validator("label_categories", mode="before")
    @classmethod
    def _category_names(cls, value: Any) -> Any:
        """Accept names, or the label category file's ``{"label": name}`` objects."""
        if isinstance(value, list):
            return [v["label"] if isinstance(v, dict) and "label" in v else v for v in value]
        return value


class AnnotationData(EventModel):
    """A worker's answer: inline (``content``, a JSON string) or by reference (``s3Uri``)."""

    content: str | dict[str, Any] | None = None
    s3_uri: str | None = Field(default=None, alias="s3Uri")


class Annotation(EventModel):
    """One worker's annotation of one data object."""

    worker_id: str = Field(alias="workerId")
    annotation_data: AnnotationData | None = Field(default=None, alias="annotationData")


class ConsolidationItem(EventModel):
    """One data object of a consolidation request: its index in the job and its annotations."""

    dataset_object_id: str = Field(alias="datasetObjectId")
    data_object: dict[str, Any] = Field(default_factory=dict, alias="dataObject")
    annotations: list[Any] = Field(default_factory=list)

    @field_validator("dataset_object_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        """GT sends the index as a string; accept an integer too."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
