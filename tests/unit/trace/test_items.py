"""trace.items: the keys of each item kind and the DynamoDB wire format."""

from __future__ import annotations

from typing import Any

from gtaudit.models.stages import ClassScore, ConfusionCell, WorkerScore
from gtaudit.trace.items import CALENDAR_PK, calendar_item, from_wire, item_from_wire, score_item, task_item, to_wire
from gtaudit.trace.records import JobContext, ScoreRecord, Source, parse_answers, parse_response_key
from hypothesis import given
from hypothesis import strategies as st

KEY = "jobs/gtaudit-rework-r2-run1/annotations/worker-response/iteration-3/17/2026-11-24_10:01:54.json"
SRC = Source("b", KEY, "v1", "etag", "2026-11-24T10:01:55Z#0")


def _rework_task(answer: dict[str, Any]) -> dict[str, Any]:
    ctx = JobContext("gtaudit-rework-r2-run1", "rework", 2, "x-1")
    [r] = parse_answers({"answers": [answer]}, ctx, parse_response_key(KEY))  # type: ignore[arg-type]
    return task_item(r, SRC, fallback_time="2026-01-01T00:00:00.000Z", recorded_at="now")


def test_task_item_keys() -> None:
    item = _rework_task({"workerId": "w", "submissionTime": "2026-11-24T10:00:00Z", "timeSpentInSeconds": 3})
    keys = {k: v["S"] for k, v in item.items() if k.endswith(("pk", "sk"))}
    assert keys["pk"] == "OBJ#x-1" and keys["sk"] == "TASK#gtaudit-rework-r2-run1#0003#w"
    assert keys["worker_pk"] == "W#w" and keys["worker_sk"].startswith("2026-11-24T10:00:00.000Z#T#")
    assert keys["day_pk"] == "D#2026-11-24" and keys["job_pk"] == "J#gtaudit-rework-r2-run1"
    assert "accepted_at" not in item and item["missing"] == {"L": [{"S": "acceptanceTime"}]}


def test_calendar_item_lists_the_day_partition_of_an_item() -> None:
    # A report lists the days from the calendar, then queries each day's partition by that key.
    item = _rework_task({"workerId": "w", "submissionTime": "2026-11-24T10:00:00Z"})
    assert calendar_item(item["day_pk"]["S"]) == {
        "pk": {"S": CALENDAR_PK},
        "sk": {"S": "D#2026-11-24"},
        "kind": {"S": "day"},
    }


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.text()
        | st.integers(-(10**12), 10**12)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12,
    )
)  # fmt: skip
def test_wire_round_trip(value: object) -> None:
    assert from_wire(to_wire(value)) == value


def test_score_item_keys_and_attributes() -> None:
    both = WorkerScore(
        iou=0.75,
        classes={"cat": ClassScore(inter=3, union=4, iou=0.75)},
        confusion=[ConfusionCell(reference="cat", painted="dog", pixels=1)],
    )
    rec = ScoreRecord("gtaudit-labeling-r1-x", "labeling", 1, "cat-1", "4", "w", True, both, None, "none")
    item = item_from_wire(score_item(rec, SRC, time="2026-11-24T10:05:00.000Z", recorded_at="now"))
    assert (item["pk"], item["sk"]) == ("OBJ#cat-1", "SCORE#gtaudit-labeling-r1-x#w")
    assert (item["worker_pk"], item["worker_sk"]) == ("W#w", "2026-11-24T10:05:00.000Z#S#gtaudit-labeling-r1-x#cat-1")
    assert (item["job_pk"], item["job_sk"]) == ("J#gtaudit-labeling-r1-x", "S#cat-1#w")
    assert (item["day_pk"], item["day_sk"]) == (
        "D#2026-11-24",
        "2026-11-24T10:05:00.000Z#S#gtaudit-labeling-r1-x#cat-1#w",
    )
    assert (item["kind"], item["gold"], item["seeded"], item["iou"]) == ("score", True, "none", 0.75)
    assert item["class_iou"] == {"cat": [3, 4]} and item["confusion"] == [["cat", "dog", 1]]
    assert not any(k.startswith("gold_") for k in item)  # no truth scores: nothing to say
    gold_only = ScoreRecord("j", "labeling", 1, None, "4", "w", True, None, both, None)
    item = item_from_wire(score_item(gold_only, SRC, time="2026-11-24T10:05:00.000Z", recorded_at="now"))
    assert item["pk"] == "OBJ#?j/4" and item["gold_iou"] == 0.75 and item["gold_class_iou"] == {"cat": [3, 4]}
    assert "iou" not in item and item["src_seq"] == SRC.seq
