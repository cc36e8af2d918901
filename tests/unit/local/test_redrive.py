"""The events a resume announces again: which files, and in a shape the worktime function accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from gtaudit.models import parse_event
from gtaudit.models.worktime import WorktimeEvent
from gtaudit_local.persist.records import ObjectRecord
from gtaudit_local.redrive import announce, recorded_sources, s3_created_entries

KEY = "jobs/j-labeling-r1-x/annotations/worker-response/iteration-1/0/2026-11-24_10:00:00.json"


def _record(key: str = KEY, etag: str = "abc", version: str | None = None) -> ObjectRecord:
    return ObjectRecord("data", key, etag, version, "2026-11-24T10:00:00", {}, {}, size=12)


def test_a_source_counts_as_recorded_only_in_the_version_recorded() -> None:
    items = [
        {"pk": {"S": "O#a"}, "src_key": {"S": KEY}, "src_etag": {"S": "abc"}},
        {"pk": {"S": "CAL"}},  # items that name no source are ignored
    ]
    seen = recorded_sources(items)
    assert (KEY, "abc") in seen and (KEY, "grown") not in seen and len(seen) == 1


def test_announced_entries_parse_as_the_worktime_functions_s3_event() -> None:
    (entry,) = s3_created_entries([_record(version="v1")], "123456789012")
    event = {
        "version": "0",
        "id": "1",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": datetime.now(UTC).isoformat(),
        "region": "us-east-1",
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }
    parsed = parse_event(WorktimeEvent, event).root
    assert isinstance(parsed, S3EventNotificationEventBridgeModel)
    assert parsed.detail.object.key == KEY and parsed.detail.bucket.name == "data"


class _Bus:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, object]]) -> dict[str, int]:
        self.calls.append(len(Entries))
        return {"FailedEntryCount": 1 if len(Entries) == 3 else 0}


def test_entries_go_ten_at_a_time_and_failures_are_not_counted() -> None:
    bus = _Bus()
    records = [_record(key=f"{KEY}.{i}") for i in range(23)]
    assert announce(bus, s3_created_entries(records, "1")) == 22
    assert bus.calls == [10, 10, 3]
