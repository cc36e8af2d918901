"""Helpers the tests import (``from support import ...``). Fixtures stay in conftest.py.

A module of its own, because ``from support import`` is ambiguous once a subfolder has its own
conftest.py (tests/browser does).
"""

from __future__ import annotations

import json
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
