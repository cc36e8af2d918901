"""Ground Truth pre-annotation Lambda of the labeling and rework jobs: a manifest line -> task input.

Environment: ``LABEL_SET`` (JSON label set), ``TASK_LANGUAGE`` (``en``/``ja``), ``ALLOWED_BUCKETS``.
See docs/contracts.md, "labeling_pre", for the contract.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.labeling.pre import config_from_env, pre_labeling
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import PreAnnotationEvent
from gtaudit.models.stages import SkippedTask

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Return ``{"taskInput": ..., "isHumanAnnotationRequired": bool}`` for one data object."""
    request = parse_event(PreAnnotationEvent, event)
    result = pre_labeling(request.data_object, config_from_env())
    task = result.task_input
    skipped = isinstance(task, SkippedTask)
    metrics.add_metric(name="LabelingTasksSkipped" if skipped else "LabelingTasks", unit=MetricUnit.Count, value=1)
    if isinstance(task, SkippedTask):
        logger.warning("data object not workable", extra={"object_id": task.object_id, "reason": task.skip_reason})
    return result.dump()
