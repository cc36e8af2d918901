"""What an orchestrator step works with: its clients, settings and state table, and the SNS notice."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.state import PipelineState

log = logging.getLogger(__name__)


@dataclass
class Clients:
    """The AWS clients a step uses (boto3 or fakes); ``table`` is a boto3 DynamoDB ``Table``."""

    s3: Any
    sagemaker: Any
    table: Any
    sns: Any = None
    lambda_client: Any = None


@dataclass
class Context:
    """What a step knows besides its clients."""

    config: PipelineConfig
    clients: Clients
    state: PipelineState
    time_left: Callable[[], float] | None = None
    render_inline: Callable[[list[str]], Any] | None = None


def notify(ctx: Context, subject: str, message: dict[str, Any]) -> None:
    """Publish to the topic. A failed publish is logged, not raised: the same facts are in S3, and a
    retry must not re-run a finished step just to notify."""
    if ctx.clients.sns is None or not ctx.config.topic_arn:
        return
    try:
        ctx.clients.sns.publish(
            TopicArn=ctx.config.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, ensure_ascii=False)[:250_000],
        )
    except ClientError as exc:
        log.error("could not publish %r to %s: %s", subject, ctx.config.topic_arn, exc)
