"""Overlay Lambda: render <job>/overlays/<name>.jpg (named after the image) for consolidated masks.

Invoked per mask by the data bucket's EventBridge ``Object Created`` rule, or with a chunk
``{"masks": [...]}`` that the orchestrator fans out asynchronously (see gtaudit.models.overlay
and gtaudit.overlay.fanout).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.exceptions import RetryableError
from gtaudit.models import parse_event
from gtaudit.models.overlay import OverlayEvent
from gtaudit.overlay.jobs import render_requested_overlays, settings_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()

s3 = boto3.client("s3")
SETTINGS = settings_from_env()
THREADS = int(os.environ.get("OVERLAY_THREADS", "2"))


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Render the overlays the event asks for; return a per-mask report."""
    request = parse_event(OverlayEvent, event).root
    report = render_requested_overlays(
        s3,
        request,
        SETTINGS,
        threads=THREADS,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    for name in ("written", "failed", "deferred"):
        if report.count(name):
            metrics.add_metric(name=f"Overlays{name.capitalize()}", unit=MetricUnit.Count, value=report.count(name))
    for failure in report.failures:
        logger.warning("overlay failed", extra={"mask": failure.mask, "error": failure.error, "why": failure.message})
    if report.retry_invocation:
        raise RetryableError(f"{len(report.failures)} overlay(s) failed transiently; see the log")
    return report.as_dict()
