"""Ground Truth consolidation Lambda of the labeling and rework jobs: per-pixel majority vote.

Environment: ``LABEL_SET`` (the labels' configured colours, kept for a label no worker painted).
See docs/contracts.md, "labeling_post", for the contract.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.labeling.post import consolidate_batch
from gtaudit.labels import parse_label_set
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PostAnnotationEvent

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
LABEL_COLORS = parse_label_set(os.environ.get("LABEL_SET")).colors()


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    request = parse_event(PostAnnotationEvent, event)
    logger.append_keys(labeling_job_arn=request.labeling_job_arn, label_attribute=request.label_attribute_name)
    result = consolidate_batch(request, s3, LABEL_COLORS)
    for problem in result.skipped_items:
        logger.warning("batch item without a usable datasetObjectId skipped", extra={"problem": problem})
    for obj in result.objects:
        for ex in obj.label.excluded:
            logger.warning(
                "annotation excluded",
                extra={"dataset_object_id": obj.dataset_object_id, "worker_id": ex.worker_id, "reason": ex.reason},
            )
        if not obj.consolidated:
            logger.error("object not consolidated", extra={"dataset_object_id": obj.dataset_object_id})
        elif obj.label.agreement is not None:
            metrics.add_metric(name="Agreement", unit=MetricUnit.NoUnit, value=obj.label.agreement)
    consolidated = sum(o.consolidated for o in result.objects)
    metrics.add_metric(name="ObjectsConsolidated", unit=MetricUnit.Count, value=consolidated)
    metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=len(result.objects) - consolidated)
    metrics.add_metric(
        name="AnnotationsExcluded", unit=MetricUnit.Count, value=sum(len(o.label.excluded) for o in result.objects)
    )
    logger.info("batch consolidated", extra={"objects": len(result.objects), "consolidated": consolidated})
    return result.response
