"""trace.store: the order of source versions, time bounds, and finding the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from gtaudit.exceptions import TraceTableNotFoundError
from gtaudit.trace.store import resolve_table, source_seq, time_bound


def test_source_seq_orders_versions() -> None:
    t1, t2 = datetime(2026, 11, 24, 10, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)
    assert source_seq(t1, "FF") < source_seq(t1, "0100")  # 0xFF < 0x100 as numbers
    assert source_seq(t1, "FFFF") < source_seq(t2, "01")  # later write wins first
    assert source_seq(t1, None) < source_seq(t1, "01")


def test_time_bound() -> None:
    assert time_bound("2026-11-24", end=False) == "2026-11-24T00:00:00.000Z"
    assert time_bound("2026-11-24", end=True) == "2026-11-24T23:59:59.999Z"
    assert time_bound("2026-11-24T10:00:00+09:00", end=False) == "2026-11-24T01:00:00.000Z"
    assert time_bound(None, end=True) is None
    with pytest.raises(ValueError, match="not a date"):
        time_bound("yesterday", end=False)


class _Stacks:
    def __init__(self, outputs: list[dict[str, str]] | None) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        if self.outputs is None:
            raise RuntimeError("Stack with id x does not exist")
        return {"Stacks": [{"Outputs": self.outputs}]}


def test_resolve_table_order(monkeypatch: pytest.MonkeyPatch) -> None:
    cfn = _Stacks([{"OutputKey": "TraceTableName", "OutputValue": "from-stack"}])
    monkeypatch.delenv("GTAUDIT_TRACE_TABLE", raising=False)
    monkeypatch.setenv("GTAUDIT_STACK", "gtaudit-dev")
    assert resolve_table("explicit", cloudformation=cfn) == "explicit" and cfn.asked == []
    assert resolve_table(None, cloudformation=cfn) == "from-stack" and cfn.asked == ["gtaudit-dev"]
    assert resolve_table(None, stack="other", cloudformation=cfn) == "from-stack" and cfn.asked[-1] == "other"
    monkeypatch.setenv("GTAUDIT_TRACE_TABLE", "from-env")
    assert resolve_table(None, cloudformation=cfn) == "from-env"
    monkeypatch.delenv("GTAUDIT_TRACE_TABLE")
    with pytest.raises(TraceTableNotFoundError, match="no TraceTableName"):
        resolve_table(None, cloudformation=_Stacks([]))
    with pytest.raises(TraceTableNotFoundError, match="--table"):
        resolve_table(None, cloudformation=_Stacks(None))
