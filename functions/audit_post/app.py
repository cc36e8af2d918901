"""Ground Truth consolidation Lambda of the audit jobs: auditors' answers -> one verdict per object."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.audit.post import post_audit
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PostAnnotationEvent
from gtaudit.s3uri import split_allowed

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")

ALLOWED = split_allowed(os.environ.get("ALLOWED_BUCKETS"))


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    """Consolidate one batch (read from ``payload.s3Uri``); any reject wins."""
    parsed = parse_event(PostAnnotationEvent, event)
    results = post_audit(s3, parsed, allowed=ALLOWED)
    counts = {"approve": 0, "reject": 0, "failed": 0}
    for r in results:
        content = r["consolidatedAnnotation"]["content"][parsed.label_attribute_name]
        counts[content.get("verdict", "failed")] += 1
    for name, key in (("Approved", "approve"), ("Rejected", "reject"), ("AuditFailed", "failed")):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[key])
    logger.info("audit batch consolidated", extra={"objects": len(results), **counts})
    return results
