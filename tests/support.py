"""Helpers the tests import (``from support import ...``). Fixtures stay in conftest.py.

A module of its own, because ``from support import`` is ambiguous once a subfolder has its own
conftest.py (tests/browser does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REGION = "us-east-1"


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


def table_spec(logical_id: str) -> dict[str, Any]:
    """CreateTable arguments for a DynamoDB table of template.yaml (key schema and indexes only).

    Read with the local runtime's CloudFormation-aware YAML loader, so tests cannot drift from
    the infrastructure.
    """
    from gtaudit_local.template import load_template

    props = load_template(ROOT / "template.yaml").resources[logical_id]["Properties"]
    spec: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return spec


def walk(value: Any, inside: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Every value in a JSON-like tree, depth first; ``inside(v)`` names what else holds children."""
    yield value
    children: Any = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None and inside is not None:
        held = inside(value)
        children = None if held is None else [held]
    for child in children or ():
        yield from walk(child, inside)


def orchestrator_env(bucket: str, table: str) -> dict[str, str]:
    """The orchestrator's environment (as template.yaml sets it) for a test account."""
    account = "arn:aws:lambda:us-east-1:111122223333:function"
    return {
        "DATA_BUCKET": bucket,
        "PIPELINE_TABLE": table,
        "JOB_PREFIX": "gtaudit",
        "WORKTEAM_ARN": "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/team",
        "GROUND_TRUTH_ROLE_ARN": "arn:aws:iam::111122223333:role/gt",
        "LABELING_PRE_ARN": f"{account}:lpre",
        "LABELING_POST_ARN": f"{account}:lpost",
        "AUDIT_PRE_ARN": f"{account}:apre",
        "AUDIT_POST_ARN": f"{account}:apost",
        "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:topic",
    }
