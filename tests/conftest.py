"""Shared fixtures. moto plays AWS in-process; nothing here reaches the network."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint overrides, so no test can reach a real AWS account."""
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL") or key in {"AWS_PROFILE", "AWS_SESSION_TOKEN"}:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "gtaudit-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "gtaudit-test")


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process AWS for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    """An S3 client on moto."""
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    """An empty data bucket on moto."""
    name = "gtaudit-test-data"
    s3.create_bucket(Bucket=name)
    return name


def load_event(name: str) -> dict[str, Any]:
    """An event from ``events/`` by file name (with or without ``.json``)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class LambdaContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A fake Lambda context."""
    return LambdaContext()


def table_spec(logical_id: str) -> dict[str, Any]:
    """CreateTable arguments for a DynamoDB table of template.yaml (key schema and indexes only).

    Read with the local runtime's CloudFormation-aware YAML loader, so tests cannot drift from
    the infrastructure.
    """
    from gtaudit.local.template import load_template

    props = load_template(ROOT / "template.yaml").resources[logical_id]["Properties"]
    spec: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return spec


@pytest.fixture
def trace_table(aws: None) -> str:
    """The traceability table (``TraceTable`` of template.yaml) on moto; returns its name."""
    name = "gtaudit-test-trace"
    boto3.client("dynamodb", region_name=REGION).create_table(TableName=name, **table_spec("TraceTable"))
    return name
