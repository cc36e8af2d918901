"""The orchestrator: Ground Truth job state events in, the next job (or the final summary) out."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.models import parse_event
from gtaudit.models.jobs import JobStateChangeEvent
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.context import Clients, Context
from gtaudit.pipeline.orchestrator import handle_job_event
from gtaudit.pipeline.overlays import inline_renderer
from gtaudit.pipeline.state import PipelineState

logger = Logger()
tracer = Tracer()
metrics = Metrics()

CONFIG = PipelineConfig.from_env()
s3 = boto3.client("s3")
CLIENTS = Clients(
    s3=s3,
    sagemaker=boto3.client("sagemaker"),
    table=boto3.resource("dynamodb").Table(os.environ.get("PIPELINE_TABLE", "unset")),
    sns=boto3.client("sns"),
    lambda_client=boto3.client("lambda"),
)


RENDER_INLINE = inline_renderer(s3)


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one job state event; a ``StepPendingError`` is raised for the asynchronous retry."""
    request = parse_event(JobStateChangeEvent, event)
    ctx = Context(
        CONFIG,
        CLIENTS,
        PipelineState(CLIENTS.table),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        render_inline=RENDER_INLINE,
    )
    result = handle_job_event(ctx, request, owner=context.aws_request_id)
    metrics.add_metric(name=f"Orchestrator-{result.action}", unit=MetricUnit.Count, value=1)
    logger.info("job event handled", extra=result.as_dict())
    return result.as_dict()
