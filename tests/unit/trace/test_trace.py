"""Traceability: parsing worker responses, keys, time bounds, the report and its renderings."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from gtaudit.exceptions import InvalidEventError, TraceTableNotFoundError
from gtaudit.names import job_name, parse_job_name
from gtaudit.trace.activity import activity_items, parse_activity_time
from gtaudit.trace.records import (
    JobContext,
    Source,
    audit_verdict,
    parse_answers,
    parse_response_key,
    stage_of,
    verdicts_of,
)
from gtaudit.trace.render import CSV_COLUMNS, render
from gtaudit.trace.report import build_report
from gtaudit.trace.store import from_wire, resolve_table, source_seq, task_item, time_bound, to_wire
from hypothesis import given
from hypothesis import strategies as st

KEY = "jobs/gtaudit-rework-r2-run1/annotations/worker-response/iteration-3/17/2026-11-24_10:01:54.json"
SRC = Source("b", KEY, "v1", "etag", "2026-11-24T10:01:55Z#0")


@pytest.mark.parametrize(
    ("prefix", "kind", "rnd", "run"),
    [
        ("gtaudit", "labeling", 1, "20261124t1000"),
        ("my-audit-r1-stack", "audit", 3, "a-b"),
        ("x" * 80, "rework", 12, "r"),
    ],
)
def test_parse_job_name_inverts_job_name(prefix: str, kind: str, rnd: int, run: str) -> None:
    parts = parse_job_name(job_name(prefix, kind, rnd, run))
    assert parts is not None and (parts.kind, parts.round, parts.run) == (kind, rnd, run)


def test_parse_job_name_rejects_other_names() -> None:
    assert parse_job_name("my-labeling-job") is None and parse_job_name("") is None


def test_response_key_parts() -> None:
    k = parse_response_key(KEY)
    assert k is not None
    assert (k.job_root, k.job, k.iteration) == ("jobs/gtaudit-rework-r2-run1", KEY.split("/")[1], 3)
    assert k.dataset_object_id == "17"
    assert parse_response_key("gtaudit-labeling-r1-x/annotations/worker-response/iteration-1/0/t.json").job_root == (
        "gtaudit-labeling-r1-x"
    )
    for other in (
        "jobs/j/annotations/consolidated-annotation/output/0_x.png",
        "jobs/j/annotations/worker-response/iteration-1/0/t.txt",
        "jobs/j/annotations/worker-response/0/t.json",
    ):
        assert parse_response_key(other) is None


def test_stage_from_name_then_from_the_manifest_line() -> None:
    assert stage_of("gtaudit-rework-r2-run1") == ("rework", 2)
    assert stage_of("hand-made-job", {"gtaudit": {"stage": "audit", "round": 4}}) == ("audit", 4)
    assert stage_of("hand-made-job", {"gtaudit": {"round": 3}}) == ("rework", 3)
    assert stage_of("hand-made-job", {"source-ref": "s3://b/x.jpg"}) == ("unknown", None)


def test_seed_old_format_answer() -> None:
    # The shape of the seed's 2020 job: no acceptanceTime, no timeSpentInSeconds.
    doc = {
        "answers": [
            {
                "answerContent": {"crowd-semantic-segmentation": {}},
                "submissionTime": "2020-06-01T03:04:05.678Z",
                "workerId": "private.us-east-1.e52d58eb96bfba08",
                "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "i", "sub": "s"}},
            }
        ]
    }
    ctx = JobContext("gtaudit-rework-r2-run1", "rework", 2, "x-1")
    [r] = parse_answers(doc, ctx, parse_response_key(KEY))  # type: ignore[arg-type]
    assert r.missing == ("acceptanceTime", "timeSpentInSeconds")
    assert (r.accepted_at, r.active_seconds, r.wall_seconds) == (None, None, None)
    assert r.submitted_at == "2020-06-01T03:04:05.678Z" and (r.cognito_sub, r.cognito_issuer) == ("s", "i")
    assert (r.iteration, r.dataset_object_id, r.round, r.stage) == (3, "17", 2, "rework")


def test_malformed_answers_are_kept_but_a_file_without_answers_raises() -> None:
    ctx = JobContext("j", "labeling", 1, None)
    key = parse_response_key(KEY)
    assert key is not None
    [r] = parse_answers({"answers": [{"timeSpentInSeconds": -3, "acceptanceTime": "garbage"}, 7]}, ctx, key)
    assert r.worker_id == "unknown" and set(r.missing) >= {"workerId", "object-id", "timeSpentInSeconds"}
    with pytest.raises(InvalidEventError):
        parse_answers({"answer": []}, ctx, key)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"approve": {"on": True}, "reject": {"on": False}}, ("approve", ())),
        (
            {"approve": {"on": False}, "reject": {"on": True}, "reason-wrong-class": {"on": True},
             "reason-other": {"on": False}, "reason-not-a-code": {"on": True}},
            ("reject", ("wrong-class",)),
        ),
        ({"approve": {"on": True}, "reject": {"on": True}}, (None, ())),
        ({"comment": "no choice"}, (None, ())),
        ("not an object", (None, ())),
    ],
)  # fmt: skip
def test_audit_verdict(content: object, expected: tuple[object, ...]) -> None:
    assert audit_verdict(content) == expected


def test_audit_record_judges_each_labeler_once() -> None:
    ctx = JobContext("gtaudit-audit-r1-x", "audit", 1, "o-1", judged=("a", "b"), labeling_job="gtaudit-labeling-r1-x")
    answer = {"workerId": "aud", "submissionTime": "2026-11-24T10:00:00Z", "answerContent": {"reject": {"on": True}}}
    doc = {"answers": [answer]}
    [r] = parse_answers(doc, ctx, parse_response_key(KEY))  # type: ignore[arg-type]
    vs = verdicts_of(r)
    assert [(v.labeler, v.auditor, v.verdict, v.labeling_job) for v in vs] == [
        ("a", "aud", "reject", "gtaudit-labeling-r1-x"),
        ("b", "aud", "reject", "gtaudit-labeling-r1-x"),
    ]


def test_source_seq_orders_versions() -> None:
    t1, t2 = datetime(2026, 11, 24, 10, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)
    assert source_seq(t1, "FF") < source_seq(t1, "0100")  # 0xFF < 0x100 as numbers
    assert source_seq(t1, "FFFF") < source_seq(t2, "01")  # later write wins first
    assert source_seq(t1, None) < source_seq(t1, "01")


def test_task_item_keys() -> None:
    ctx = JobContext("gtaudit-rework-r2-run1", "rework", 2, "x-1")
    doc = {"answers": [{"workerId": "w", "submissionTime": "2026-11-24T10:00:00Z", "timeSpentInSeconds": 3}]}
    [r] = parse_answers(doc, ctx, parse_response_key(KEY))  # type: ignore[arg-type]
    item = task_item(r, SRC, fallback_time="2026-01-01T00:00:00.000Z", recorded_at="now")
    keys = {k: v["S"] for k, v in item.items() if k.endswith(("pk", "sk"))}
    assert keys["pk"] == "OBJ#x-1" and keys["sk"] == "TASK#gtaudit-rework-r2-run1#0003#w"
    assert keys["worker_pk"] == "W#w" and keys["worker_sk"].startswith("2026-11-24T10:00:00.000Z#T#")
    assert keys["day_pk"] == "D#2026-11-24" and keys["job_pk"] == "J#gtaudit-rework-r2-run1"
    assert "accepted_at" not in item and item["missing"] == {"L": [{"S": "acceptanceTime"}]}


def test_time_bound() -> None:
    assert time_bound("2026-11-24", end=False) == "2026-11-24T00:00:00.000Z"
    assert time_bound("2026-11-24", end=True) == "2026-11-24T23:59:59.999Z"
    assert time_bound("2026-11-24T10:00:00+09:00", end=False) == "2026-11-24T01:00:00.000Z"
    assert time_bound(None, end=True) is None
    with pytest.raises(ValueError, match="not a date"):
        time_bound("yesterday", end=False)


def test_activity_time_and_items() -> None:
    assert parse_activity_time("Wed Aug 14 16:00:59 UTC 2019") == datetime(2019, 8, 14, 16, 0, 59, tzinfo=UTC)
    assert parse_activity_time("") is None
    ret = {
        "worker_id": "w",
        "labeling_job_arn": "arn:aws:sagemaker:r:1:labeling-job/j",
        "task_accepted_time": "Wed Aug 14 16:00:00 UTC 2019",
        "task_returned_time": "Wed Aug 14 16:02:00 UTC 2019",
        "task_declined_time": "",
    }
    sub = {**ret, "task_returned_time": "", "task_submitted_time": "Wed Aug 14 16:02:00 UTC 2019"}
    items = activity_items([("1", json.dumps(ret)), ("2", json.dumps(sub)), ("3", "not json")], "g", "s", "now")
    [item] = items
    assert item["event_type"] == {"S": "returned"} and item["wall_seconds"] == {"N": "120.0"}  # fmt: skip


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


def _task(worker: str, job: str, obj: str, t: str, active: float | None, stage: str = "labeling", **kw: object) -> dict:
    return {"kind": "task", "worker_id": worker, "job": job, "object_id": obj, "time": t, "stage": stage,
            "round": kw.pop("round", 1), "active_seconds": active,
            "wall_seconds": None if active is None else active * 2, **kw}  # fmt: skip


def _verdict(labeler: str, obj: str, rnd: int, v: str, auditor: str = "aud") -> dict:
    return {"kind": "verdict", "labeler": labeler, "worker_id": auditor, "object_id": obj, "round": rnd,
            "verdict": v, "labeling_job": f"lab-r{rnd}", "time": "2026-11-24T12:00:00.000Z"}  # fmt: skip


def sample_report() -> dict:
    items = [
        _task("w1", "lab-r1", "o1", "2026-11-23T09:00:00.000Z", 1800),
        _task("w1", "lab-r1", "o2", "2026-11-24T09:00:00.000Z", 1800),
        _task("w2", "lab-r1", "o1", "2026-11-24T09:30:00.000Z", 3600),
        _task("w2", "lab-r1", "o2", "2026-11-24T10:30:00.000Z", None),
        _task("aud", "aud-r1", "o1", "2026-11-24T12:00:00.000Z", 60, "audit", verdict="reject", labeling_job="lab-r1"),
        _task("aud", "aud-r1", "o2", "2026-11-24T12:01:00.000Z", 60, "audit", verdict="approve", labeling_job="lab-r1"),
        _task("w1", "lab-r2", "o1", "2026-11-24T13:00:00.000Z", 600, "rework", round=2),
        _verdict("w1", "o1", 1, "reject"),
        _verdict("w2", "o1", 1, "reject"),
        _verdict("w1", "o2", 1, "approve"),
        _verdict("w2", "o2", 1, "approve"),
        _verdict("w2", "o2", 1, "reject", auditor="aud2"),  # a second auditor rejects: the reject wins
        _verdict("w1", "o1", 2, "approve"),
        {
            "kind": "activity",
            "worker_id": "w2",
            "job": "lab-r1",
            "time": "2026-11-24T11:00:00.000Z",
            "wall_seconds": 900,
        },
        {"kind": "day", "pk": "CAL"},
    ]
    return build_report(items, generated_at="2026-11-25T00:00:00Z", table="t")


def test_report_numbers() -> None:
    r = sample_report()
    w = {row["worker_id"]: row for row in r["workers"]}
    assert w["w1"]["tasks"] == 3 and w["w1"]["active_hours"] == pytest.approx(4200 / 3600, abs=1e-4)
    assert w["w1"]["objects_per_hour"] == pytest.approx(3 / (4200 / 3600), abs=0.01)
    assert (w["w1"]["labels_judged"], w["w1"]["labels_rejected"], w["w1"]["rejection_rate"]) == (3, 1, 0.3333)
    assert (w["w1"]["first_pass_judged"], w["w1"]["first_pass_acceptance_rate"]) == (2, 0.5)
    assert (w["w2"]["rejection_rate"], w["w2"]["first_pass_acceptance_rate"]) == (1.0, 0.0)
    assert w["w2"]["tasks_missing_time"] == 1 and w["w2"]["objects_per_hour"] == 1.0
    assert w["w2"]["returned_tasks"] == 1 and w["w2"]["returned_hours"] == 0.25
    assert w["aud"]["rejection_rate"] is None and w["aud"]["tasks_by_stage"] == {"audit": 2}
    j = {row["job"]: row for row in r["jobs"]}
    aud = j["aud-r1"]
    assert (aud["objects_rejected"], aud["objects_approved"], aud["rejection_rate"]) == (1, 1, 0.5)
    # The labels' side counts every auditor's verdict: aud2 (no task in this sample) rejected o2 too.
    assert j["lab-r1"]["objects_rejected"] == 2 and j["lab-r1"]["tasks"] == 4 and j["lab-r1"]["returned_tasks"] == 1
    assert j["lab-r2"]["objects_approved"] == 1 and j["lab-r2"]["rejection_rate"] == 0.0
    d = {row["day"]: row for row in r["days"]}
    assert d["2026-11-23"]["tasks"] == 1 and d["2026-11-24"]["active_hours_by_worker"]["w2"] == 1.0
    assert r["totals"]["tasks"] == 7 and r["totals"]["labels_judged"] == 5 and r["totals"]["rejection_rate"] == 0.6


def test_report_json_is_the_documented_schema() -> None:
    doc = json.loads(render(sample_report(), "json"))
    assert doc["schema"] == "gtaudit.report/1"
    # No filter was given: the filters echo that, not the last job the aggregation saw.
    assert doc["filters"] == {"since": None, "until": None, "worker": None, "job": None}
    assert set(doc) == {"schema", "generated_at", "table", "filters", "totals", "workers", "jobs", "days"}
    assert set(doc["workers"][0]) >= {"worker_id", "tasks", "active_hours", "wall_hours", "objects_per_hour",
                                      "first_pass_acceptance_rate", "rejection_rate"}  # fmt: skip


def test_csv_table_and_html() -> None:
    r = sample_report()
    reader = csv.DictReader(io.StringIO(render(r, "csv")))
    assert reader.fieldnames == list(CSV_COLUMNS)
    assert render(build_report([]), "csv") == ",".join(CSV_COLUMNS) + "\n"  # the header never depends on data
    rows = list(reader)
    assert [x["section"] for x in rows].count("worker") == 3 and [x["section"] for x in rows].count("day") == 2
    assert next(x for x in rows if x.get("worker_id") == "w2")["rejection_rate"] == "1.0"
    table = render(r, "table")
    assert "Workers" in table and "33.3%" in table and "w2" in table
    html = render(r, "html")
    assert html.count("<svg") == 2 and "<script" not in html and "src=" not in html and "href=" not in html
    assert "100%" in html and "(2 of 2)" in html  # w2's rejection bar and its counts
    empty = render(build_report([]), "html")
    assert "No timed tasks" in empty and "No audited labels" in empty
    with pytest.raises(ValueError, match="fmt"):
        render(r, "xml")


def test_roles() -> None:
    w = {row["worker_id"]: row["role"] for row in sample_report()["workers"]}
    assert w == {"w1": "labeler", "w2": "labeler", "aud": "auditor"}


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


_task_items = st.lists(
    st.builds(
        _task,
        st.sampled_from(["w1", "w2", "w3"]),
        st.sampled_from(["lab-r1", "aud-r1", "lab-r2"]),
        st.sampled_from(["o1", "o2", "o3", "o4"]),
        st.sampled_from(["2026-11-23T09:00:00.000Z", "2026-11-24T09:00:00.000Z", "2026-11-25T23:59:59.999Z"]),
        st.one_of(st.none(), st.floats(0, 10_000)),
        st.sampled_from(["labeling", "rework", "audit"]),
    ),
    max_size=40,
)


@given(_task_items)
def test_report_sections_add_up(items: list[dict]) -> None:
    r = build_report(items)
    n = len(items)
    assert r["totals"]["tasks"] == n == sum(w["tasks"] for w in r["workers"]) == sum(d["tasks"] for d in r["days"])
    assert sum(j["tasks"] for j in r["jobs"]) == n
    active = sum(i["active_seconds"] or 0 for i in items) / 3600
    assert sum(d["active_hours"] for d in r["days"]) == pytest.approx(active, abs=1e-3 * (len(r["days"]) + 1))
    assert r["totals"]["tasks_missing_time"] == sum(1 for i in items if i["active_seconds"] is None)
    assert json.loads(render(r, "json"))["totals"] == r["totals"]  # strict JSON: no NaN or Infinity
