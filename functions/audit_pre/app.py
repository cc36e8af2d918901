"""Ground Truth pre-annotation Lambda of the audit jobs: an audit manifest line -> the audit task input."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.audit.pre import pre_audit
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PreAnnotationEvent
from gtaudit.models.stages import SkippedTask
from gtaudit.s3uri import split_allowed

logger = Logger()
tracer = Tracer()
metrics = Metrics()

LANGUAGE = os.environ.get("TASK_LANGUAGE", "en")
ALLOWED = split_allowed(os.environ.get("ALLOWED_BUCKETS"))


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Return ``{"taskInput": ..., "isHumanAnnotationRequired": bool}`` for one audit line."""
    parsed = parse_event(PreAnnotationEvent, event)
    result = pre_audit(parsed.data_object, language=LANGUAGE, allowed=ALLOWED)
    task = result.task_input
    skipped = isinstance(task, SkippedTask)
    metrics.add_metric(name="AuditTasksSkipped" if skipped else "AuditTasks", unit=MetricUnit.Count, value=1)
    if isinstance(task, SkippedTask):
        logger.warning("audit object skipped", extra={"objectId": task.object_id, "reason": task.skip_reason})
    return result.dump()
