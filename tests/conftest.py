"""Shared fixtures. moto plays AWS in-process; nothing here reaches the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support import REGION, LambdaContext, table_spec


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


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A fake Lambda context."""
    return LambdaContext()


@pytest.fixture
def trace_table(aws: None) -> str:
    """The traceability table (``TraceTable`` of template.yaml) on moto; returns its name."""
    name = "gtaudit-test-trace"
    boto3.client("dynamodb", region_name=REGION).create_table(TableName=name, **table_spec("TraceTable"))
    return name
