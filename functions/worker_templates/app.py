"""Custom resource: upload the worker task templates shipped with this deployment to S3."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.pipeline.templates import on_custom_resource, send_cfn_response

logger = Logger()
s3 = boto3.client("s3")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Answer CloudFormation; a failure is reported as FAILED (never left hanging for an hour)."""
    try:
        data = on_custom_resource(event, s3)
    except Exception as exc:  # CloudFormation must always get an answer
        logger.exception("worker templates upload failed")
        send_cfn_response(event, "FAILED", {}, f"{type(exc).__name__}: {exc}")
        return
    logger.info("worker templates in S3", extra={"version": data.get("Version"), "request": event.get("RequestType")})
    send_cfn_response(event, "SUCCESS", data)
