"""Worktime: record each worker-response file, scores file (and returned tasks) in the traceability table.

Triggers: EventBridge ``aws.s3`` / ``Object Created`` on the jobs' ``annotations/worker-response/``
and ``annotations/consolidated-annotation/scores/`` files (``record_file`` tells them apart by
key), and optionally the workforce's WorkerActivity log (CloudWatch Logs subscription).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import CloudWatchLogsModel, S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from gtaudit.models import parse_event
from gtaudit.models.worktime import WorktimeEvent
from gtaudit.trace.activity import record_activity
from gtaudit.trace.ingest import ManifestIndex, cognito_directory, record_file

logger = Logger()
tracer = Tracer()
metrics = Metrics()

TABLE = os.environ.get("TRACE_TABLE", "")
s3 = boto3.client("s3")
ddb = boto3.client("dynamodb")
sagemaker = boto3.client("sagemaker")
# A manifest never changes once its job exists: keep them for the life of the container.
manifests = ManifestIndex(s3, sagemaker)
_pool = os.environ.get("WORKER_DIRECTORY", "").strip()
directory = cognito_directory(boto3.client("cognito-idp"), _pool) if _pool else None


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    match parse_event(WorktimeEvent, event).root:
        case CloudWatchLogsModel(awslogs=awslogs):
            logs = awslogs.decoded_data
            messages = [(e.id, str(e.message)) for e in logs.logEvents]
            res = record_activity(ddb, TABLE, messages, logs.logGroup, logs.logStream)
            metrics.add_metric(name="ReturnedTasksRecorded", unit=MetricUnit.Count, value=res.written)
            return {"activity": len(messages), "written": res.written, "unchanged": res.unchanged}
        case S3EventNotificationEventBridgeModel(detail=detail):
            result = record_file(
                s3=s3,
                ddb=ddb,
                table=TABLE,
                manifests=manifests,
                bucket=detail.bucket.name,
                key=detail.object.key,
                version_id=detail.object.version_id,
                sequencer=detail.object.sequencer,
                directory=directory,
            )
            summary = result.as_dict()
            logger.info("file recorded", extra=summary)
            metrics.add_metric(name="TraceItemsWritten", unit=MetricUnit.Count, value=result.written)
            metrics.add_metric(name="DuplicateRecordsIgnored", unit=MetricUnit.Count, value=result.unchanged)
            if result.scores:
                metrics.add_metric(name="ScoreRecords", unit=MetricUnit.Count, value=result.scores)
            if result.missing:
                missing = result.records + result.scores
                metrics.add_metric(name="RecordsWithMissingFields", unit=MetricUnit.Count, value=missing)
            return summary
