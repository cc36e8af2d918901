"""trace.records: response and scores keys, stages, answers (malformed ones too), verdicts, seeded audits."""

from __future__ import annotations

import pytest
from gtaudit.exceptions import InvalidEventError
from gtaudit.models.stages import ScoresFile
from gtaudit.names import job_name, parse_job_name
from gtaudit.trace.records import (
    JobContext,
    audit_verdict,
    parse_answers,
    parse_response_key,
    parse_scores,
    parse_scores_key,
    parse_trace_key,
    seeded_outcome,
    stage_of,
    verdicts_of,
)

KEY = "jobs/gtaudit-rework-r2-run1/annotations/worker-response/iteration-3/17/2026-11-24_10:01:54.json"
# A labeling job's key and context, for the answers that must be recorded despite bad fields.
LABELING_KEY = parse_response_key("out/job-a/annotations/worker-response/iteration-1/0/2026-11-24T100000.json")
LABELING_CTX = JobContext(job="job-a", stage="labeling", round=1, object_id="x-1a2b3c4d")


# stage_of reads the stage and round from the job name first: the name's parser must invert job_name.
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


def test_malformed_worker_metadata_is_tolerated_not_raised() -> None:
    # A non-object workerMetadata / identityData used to raise AttributeError out of the worktime
    # Lambda, losing every record of the file; it is now recorded without the identity fields.
    assert LABELING_KEY is not None
    for meta in ("x", ["a"], {"identityData": "x"}, {"identityData": ["a"]}):
        doc = {"answers": [{"workerId": "private.us-east-1.a", "workerMetadata": meta, "timeSpentInSeconds": 3}]}
        (rec,) = parse_answers(doc, LABELING_CTX, LABELING_KEY)
        assert rec.worker_id == "private.us-east-1.a"
        assert rec.cognito_sub is None and rec.active_seconds == 3.0


def test_unstorable_times_are_recorded_as_missing() -> None:
    # An infinite timeSpentInSeconds (JSON 1e999, "inf") reached DynamoDB as N "inf", which it
    # refuses, failing the whole file; an offset time past year 9999 raised OverflowError.
    assert LABELING_KEY is not None
    doc = {
        "answers": [
            {
                "workerId": "private.us-east-1.a",
                "timeSpentInSeconds": float("inf"),
                "acceptanceTime": "9999-12-31T23:59:59-01:00",
                "submissionTime": "2026-11-24T10:01:54.343Z",
            },
            {"workerId": "private.us-east-1.b", "timeSpentInSeconds": "Infinity"},
            {"workerId": "private.us-east-1.c", "timeSpentInSeconds": 10**400},
        ]
    }
    a, b, c = parse_answers(doc, LABELING_CTX, LABELING_KEY)
    assert a.active_seconds is None and a.accepted_at is None and a.submitted_at == "2026-11-24T10:01:54.343Z"
    assert {"timeSpentInSeconds", "acceptanceTime"} <= set(a.missing)
    assert b.active_seconds is None and "timeSpentInSeconds" in b.missing
    assert c.active_seconds is None and "timeSpentInSeconds" in c.missing


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


def test_scores_keys_and_worker_response_keys_are_told_apart() -> None:
    scores = "jobs/gtaudit-labeling-r1-x/annotations/consolidated-annotation/scores/猫 の 写真 (1).json"
    k = parse_scores_key(scores)
    assert k is not None and (k.job_root, k.job, k.name) == (
        "jobs/gtaudit-labeling-r1-x",
        "gtaudit-labeling-r1-x",
        "猫 の 写真 (1)",
    )
    assert parse_trace_key(scores) == k and parse_trace_key(KEY) == parse_response_key(KEY)
    for other in (
        "jobs/j/annotations/consolidated-annotation/output/0_x.png",
        "jobs/j/annotations/consolidated-annotation/output/names/x.json",
        "jobs/j/annotations/consolidated-annotation/scores/sub/x.json",
        "jobs/j/annotations/consolidated-annotation/scores/x.png",
    ):
        assert parse_trace_key(other) is None


@pytest.mark.parametrize(
    ("defect", "verdict", "reasons", "outcome"),
    [
        ("missing-object", "reject", ("missing-object", "other"), "caught"),
        ("missing-object", "reject", ("wrong-class",), "caught-other-reason"),
        ("loose-boundary", "approve", (), "missed"),
        ("none", "approve", (), "passed"),
        ("none", "reject", ("extra-region",), "false-reject"),
        ("wrong-class", None, ("wrong-class",), None),
        (None, "reject", ("wrong-class",), None),
    ],
)
def test_seeded_outcome(defect: str | None, verdict: str | None, reasons: tuple[str, ...], outcome: str | None) -> None:
    assert seeded_outcome(defect, verdict, reasons) == outcome


def test_a_seeded_audit_records_the_auditors_outcome_and_judges_no_labeler() -> None:
    ctx = JobContext(
        "gtaudit-audit-r1-x", "audit", 1, "g-1", labeling_job="gtaudit-labeling-r1-x", seeded="wrong-class"
    )
    content = {"approve": {"on": False}, "reject": {"on": True}, "reason-wrong-class": {"on": True}}
    doc = {"answers": [{"workerId": "aud", "submissionTime": "2026-11-24T10:00:00Z", "answerContent": content}]}
    [r] = parse_answers(doc, ctx, parse_response_key(KEY))  # type: ignore[arg-type]
    assert (r.seeded, r.seeded_outcome, r.judged) == ("wrong-class", "caught", ())
    assert verdicts_of(r) == []


def test_a_scores_file_gives_one_record_per_worker_scored_against_either_reference() -> None:
    s = {"iou": 0.5, "classes": {"cat": {"inter": 1, "union": 2, "iou": 0.5}}, "confusion": []}
    doc = ScoresFile.model_validate(
        {"version": 1, "job": "j", "dataset-object-id": "4", "source-ref": None, "gold": True,
         "consensus": {"w2": s, "w1": s}, "truth": {"w3": s, "w1": s}, "seeded": "none"}
    )  # fmt: skip
    recs = parse_scores(doc, LABELING_CTX)
    assert [(r.worker_id, r.consensus is not None, r.truth is not None) for r in recs] == [
        ("w1", True, True),
        ("w2", True, False),
        ("w3", False, True),
    ]
    assert {(r.object_id, r.dataset_object_id, r.gold, r.seeded, r.stage) for r in recs} == {
        ("x-1a2b3c4d", "4", True, "none", "labeling")
    }
