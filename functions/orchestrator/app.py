"""The orchestrator: Ground Truth job state events in, the next job (or the final summary) out."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.orchestrator import Clients, Context, handle_job_event
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


def render_inline(masks: list[str]) -> None:
    """Render a few missing overlays here (Pillow is imported only when needed)."""
    from gtaudit.overlay.jobs import render_mask_overlays, settings_from_env

    report = render_mask_overlays(s3, masks, settings_from_env())
    logger.info(
        "overlays rendered inline", extra={"written": report.count("written"), "failed": report.count("failed")}
    )


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one job state event; a ``StepPendingError`` is raised for the asynchronous retry."""
    ctx = Context(
        CONFIG,
        CLIENTS,
        PipelineState(CLIENTS.table),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        render_inline=render_inline,
    )
    result = handle_job_event(ctx, event, owner=context.aws_request_id)
    metrics.add_metric(name=f"Orchestrator-{result['action']}", unit=MetricUnit.Count, value=1)
    logger.info("job event handled", extra={k: v for k, v in result.items() if not isinstance(v, dict)})
    return result
