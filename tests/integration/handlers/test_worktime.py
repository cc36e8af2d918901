"""The worktime function and the trace commands against moto (S3 + DynamoDB from template.yaml)."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from gtaudit.trace import lineage, make_report, write_report
from gtaudit.trace.activity import import_activity_log
from gtaudit.trace.ingest import ManifestIndex, backfill_worker_responses, record_file
from gtaudit.trace.store import query_job
from gtaudit_local.cli import main
from support import REGION, load_event

LABEL_JOB = "gtaudit-labeling-r1-demo"
AUDIT_JOB = "gtaudit-audit-r1-demo"
REWORK_JOB = "gtaudit-rework-r2-demo"
A = "private.us-east-1.aaaa1111"
B = "private.us-east-1.bbbb2222"
AUD = "private.us-east-1.cccc3333"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"


class FakeSageMaker:
    """DescribeLabelingJob for the jobs these tests create (moto has no labeling-job API)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.calls = 0

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        self.calls += 1
        uri = f"s3://{self.bucket}/manifests/{LabelingJobName}.manifest"
        return {"InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": uri}}}}


def answer(worker: str, content: dict[str, Any], *, accepted: str | None, submitted: str, spent: float | None):
    a: dict[str, Any] = {
        "answerContent": content,
        "submissionTime": submitted,
        "workerId": worker,
        "workerMetadata": {
            "identityData": {"identityProviderType": "Cognito", "issuer": ISSUER, "sub": f"sub-{worker[-4:]}"}
        },
    }
    if accepted is not None:
        a["acceptanceTime"] = accepted
    if spent is not None:
        a["timeSpentInSeconds"] = spent
    return a


SEG = {"crowd-semantic-segmentation": {"labeledImage": {"pngImageData": "iVBO"}, "labelMappings": {}}}


def verdict(v: str, *reasons: str) -> dict[str, Any]:
    out: dict[str, Any] = {"approve": {"on": v == "approve"}, "reject": {"on": v == "reject"}, "comment": ""}
    for r in reasons:
        out[f"reason-{r}"] = {"on": True}
    return out


def put_manifest(s3: Any, bucket: str, job: str, lines: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=bucket, Key=f"manifests/{job}.manifest", Body=body.encode())


def put_response(s3: Any, bucket: str, job: str, index: int, answers: list[dict[str, Any]], *, it: int = 1) -> str:
    key = f"jobs/{job}/annotations/worker-response/iteration-{it}/{index}/2026-11-24_10:0{index}:00.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"answers": answers}).encode())
    return key


@pytest.fixture
def env(s3: Any, bucket: str, trace_table: str) -> dict[str, Any]:
    put_manifest(
        s3,
        bucket,
        LABEL_JOB,
        [
            {"source-ref": f"s3://{bucket}/images/a.jpg", "object-id": "a-11111111"},
            {"source-ref": f"s3://{bucket}/images/b.jpg", "object-id": "b-22222222"},
        ],
    )
    put_manifest(
        s3,
        bucket,
        AUDIT_JOB,
        [
            {
                "source-ref": f"s3://{bucket}/jobs/{LABEL_JOB}/overlays/{i}.jpg",
                "object-id": oid,
                "gtaudit": {"stage": "audit", "round": 1, "labelers": [A, B], "labeling-job": LABEL_JOB},
            }
            for i, oid in enumerate(["a-11111111", "b-22222222"])
        ],
    )
    ddb = boto3.client("dynamodb", region_name=REGION)
    sm = FakeSageMaker(bucket)
    return {"s3": s3, "ddb": ddb, "bucket": bucket, "table": trace_table, "sm": sm, "manifests": ManifestIndex(s3, sm)}


def ingest(env: dict[str, Any], key: str, **kw: Any):
    return record_file(
        s3=env["s3"],
        ddb=env["ddb"],
        table=env["table"],
        manifests=env["manifests"],
        bucket=env["bucket"],
        key=key,
        now=datetime(2026, 11, 24, 12, tzinfo=UTC),
        **kw,
    )


def count(env: dict[str, Any]) -> int:
    return int(env["ddb"].scan(TableName=env["table"], Select="COUNT")["Count"])  # test inspection only


def labeled_and_audited(env: dict[str, Any]) -> None:
    """Object a: labeled by A and B, rejected. Object b: labeled by A and B, approved."""
    s3, b = env["s3"], env["bucket"]
    for i in (0, 1):
        ingest(
            env,
            put_response(
                s3,
                b,
                LABEL_JOB,
                i,
                [
                    answer(A, SEG, accepted=f"2026-11-24T09:0{i}:00Z", submitted=f"2026-11-24T09:0{i}:50Z", spent=40),
                    answer(B, SEG, accepted=f"2026-11-24T09:0{i}:00Z", submitted=f"2026-11-24T09:0{i}:30Z", spent=20),
                ],
            ),
        )
    ingest(
        env,
        put_response(
            s3,
            b,
            AUDIT_JOB,
            0,
            [answer(AUD, verdict("reject", "loose-boundary"), accepted="2026-11-24T11:00:00Z",
                    submitted="2026-11-24T11:00:10Z", spent=9.5)],
        ),
    )  # fmt: skip
    ingest(
        env,
        put_response(
            s3,
            b,
            AUDIT_JOB,
            1,
            [
                answer(
                    AUD, verdict("approve"), accepted="2026-11-24T11:01:00Z", submitted="2026-11-24T11:01:06Z", spent=6
                )
            ],
        ),
    )


def test_a_labeling_answer_becomes_one_record_with_identity_and_times(env: dict[str, Any]) -> None:
    key = put_response(
        env["s3"],
        env["bucket"],
        LABEL_JOB,
        1,
        [answer(A, SEG, accepted="2026-11-24T09:58:01.123Z", submitted="2026-11-24T10:01:54.343Z", spent=231.2)],
    )
    res = ingest(env, key)
    assert (res.records, res.written, res.unchanged, res.missing) == (1, 1, 0, ())
    [rec] = lineage(env["ddb"], env["table"], "b-22222222")
    assert rec["stage"] == "labeling" and rec["round"] == 1 and rec["job"] == LABEL_JOB
    assert rec["worker_id"] == A and rec["cognito_sub"] == "sub-1111" and rec["cognito_issuer"] == ISSUER
    assert rec["accepted_at"] == "2026-11-24T09:58:01.123Z" and rec["submitted_at"] == "2026-11-24T10:01:54.343Z"
    assert rec["active_seconds"] == 231.2
    assert rec["wall_seconds"] == pytest.approx(233.22)
    assert rec["dataset_object_id"] == "1" and rec["iteration"] == 1
    assert rec["src_key"] == key and "missing" not in rec
    assert "worker_email" not in rec and "email" not in rec  # no directory configured


def test_old_format_file_is_recorded_with_what_is_missing(env: dict[str, Any]) -> None:
    # The seed's 2020 job: no acceptanceTime, no timeSpentInSeconds.
    key = put_response(env["s3"], env["bucket"], LABEL_JOB, 0, [answer(A, SEG, accepted=None,
                       submitted="2020-06-01T03:04:05Z", spent=None)])  # fmt: skip
    res = ingest(env, key)
    assert res.written == 1 and res.missing == ("acceptanceTime", "timeSpentInSeconds")
    [rec] = lineage(env["ddb"], env["table"], "a-11111111")
    assert rec["missing"] == ["acceptanceTime", "timeSpentInSeconds"]
    assert (
        "active_seconds" not in rec and "wall_seconds" not in rec and rec["submitted_at"] == "2020-06-01T03:04:05.000Z"
    )
    report = make_report(env["ddb"], env["table"])
    [w] = report["workers"]
    assert (w["tasks"], w["active_hours"], w["tasks_missing_time"], w["objects_per_hour"]) == (1, 0.0, 1, None)
    assert report["days"][0]["day"] == "2020-06-01"


def test_duplicate_event_changes_nothing(env: dict[str, Any]) -> None:
    key = put_response(env["s3"], env["bucket"], LABEL_JOB, 0, [answer(A, SEG, accepted="2026-11-24T09:00:00Z",
                       submitted="2026-11-24T09:01:00Z", spent=50)])  # fmt: skip
    first = ingest(env, key, sequencer="0055AED6DCD90281E5")
    n = count(env)
    again = ingest(env, key, sequencer="0055AED6DCD90281E5")
    assert (first.written, again.written, again.unchanged) == (1, 0, 1)
    assert count(env) == n == 2  # the task and its day's calendar item
    assert len(make_report(env["ddb"], env["table"])["workers"]) == 1


def test_out_of_order_versions_never_regress(env: dict[str, Any]) -> None:
    s3, b = env["s3"], env["bucket"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v1 = answer(A, SEG, accepted="2026-11-24T09:00:00Z", submitted="2026-11-24T09:01:00Z", spent=10)
    v2 = answer(A, SEG, accepted="2026-11-24T09:00:00Z", submitted="2026-11-24T09:01:00Z", spent=55)
    key = put_response(s3, b, LABEL_JOB, 0, [v1])
    ver1 = s3.head_object(Bucket=b, Key=key)["VersionId"]
    put_response(s3, b, LABEL_JOB, 0, [v2])
    ver2 = s3.head_object(Bucket=b, Key=key)["VersionId"]
    assert ingest(env, key, version_id=ver2, sequencer="0066A8D0E77DE42BC6").written == 1
    late = ingest(env, key, version_id=ver1, sequencer="0066A8D0E77DE42BC5")
    assert (late.written, late.unchanged) == (0, 1)
    [rec] = lineage(env["ddb"], env["table"], "a-11111111")
    assert rec["active_seconds"] == 55 and rec["src_version"] == ver2


def test_audit_verdicts_link_to_the_labelers_they_judged(env: dict[str, Any]) -> None:
    labeled_and_audited(env)
    items = lineage(env["ddb"], env["table"], "a-11111111")
    audit = next(i for i in items if i.get("stage") == "audit")
    assert audit["verdict"] == "reject" and audit["reasons"] == ["loose-boundary"]
    assert audit["judged"] == [A, B] and audit["labeling_job"] == LABEL_JOB
    verdicts = [i for i in items if i["kind"] == "verdict"]
    assert sorted(v["labeler"] for v in verdicts) == [A, B] and {v["worker_id"] for v in verdicts} == {AUD}
    # lineage order: labeling (round 1) before audit
    assert [i.get("stage") for i in items if i["kind"] == "task"] == ["labeling", "labeling", "audit"]

    report = make_report(env["ddb"], env["table"], since="2026-11-24", until="2026-11-24")
    rows = {w["worker_id"]: w for w in report["workers"]}
    assert rows[A]["labels_judged"] == 2 and rows[A]["labels_rejected"] == 1
    assert rows[A]["rejection_rate"] == 0.5 and rows[A]["first_pass_acceptance_rate"] == 0.5
    assert rows[A]["tasks"] == 2 and rows[A]["active_hours"] == pytest.approx(80 / 3600, abs=1e-4)
    assert rows[A]["objects_per_hour"] == pytest.approx(2 / (80 / 3600), rel=1e-3)
    assert rows[AUD]["tasks"] == 2 and rows[AUD]["labels_judged"] == 0 and rows[AUD]["rejection_rate"] is None
    jobs = {j["job"]: j for j in report["jobs"]}
    assert jobs[AUDIT_JOB]["objects_rejected"] == 1 and jobs[AUDIT_JOB]["rejection_rate"] == 0.5
    assert jobs[LABEL_JOB]["objects_rejected"] == 1 and jobs[LABEL_JOB]["tasks"] == 4
    assert report["totals"]["tasks"] == 6 and report["schema"] == "gtaudit.report/2"

    # One worker through ByWorker: the verdicts on their labels come with them.
    only_b = make_report(env["ddb"], env["table"], worker=B)
    assert [w["worker_id"] for w in only_b["workers"]] == [B]
    assert only_b["workers"][0]["rejection_rate"] == 0.5 and only_b["workers"][0]["tasks"] == 2
    # The time range excludes what lies outside it.
    assert make_report(env["ddb"], env["table"], since="2026-11-25")["totals"]["tasks"] == 0
    assert make_report(env["ddb"], env["table"], until="2026-11-24T10:00:00Z")["totals"]["tasks"] == 4
    assert len(query_job(env["ddb"], env["table"], AUDIT_JOB)) == 2
    # One job through ByJob: its tasks and the verdicts on its labels, without the audit job's tasks.
    by_job = make_report(env["ddb"], env["table"], job=LABEL_JOB)
    assert [j["job"] for j in by_job["jobs"]] == [LABEL_JOB] and by_job["jobs"][0]["objects_rejected"] == 1
    assert {w["worker_id"]: w["rejection_rate"] for w in by_job["workers"]} == {A: 0.5, B: 0.5}
    assert make_report(env["ddb"], env["table"], job=LABEL_JOB, since="2026-11-25")["totals"]["tasks"] == 0
    # Manifests are read once per job.
    assert env["sm"].calls == 2


def test_any_reject_wins_over_several_auditors(env: dict[str, Any]) -> None:
    key = put_response(
        env["s3"],
        env["bucket"],
        AUDIT_JOB,
        0,
        [
            answer(AUD, verdict("approve"), accepted="2026-11-24T11:00:00Z", submitted="2026-11-24T11:00:10Z", spent=9),
            answer(B + "x", verdict("reject"), accepted="2026-11-24T11:00:00Z", submitted="2026-11-24T11:00:20Z",
                   spent=19),
        ],
    )  # fmt: skip
    assert ingest(env, key).verdicts == 4
    rows = {w["worker_id"]: w for w in make_report(env["ddb"], env["table"])["workers"]}
    assert rows[A]["labels_judged"] == 1 and rows[A]["labels_rejected"] == 1


def test_unresolvable_object_is_kept_and_marked(env: dict[str, Any]) -> None:
    key = put_response(env["s3"], env["bucket"], "other-labeling-r1-x", 3, [answer(A, SEG,
                       accepted="2026-11-24T09:00:00Z", submitted="2026-11-24T09:01:00Z", spent=5)])  # fmt: skip
    res = ingest(env, key)
    assert res.written == 1 and res.missing == ("object-id",)
    assert make_report(env["ddb"], env["table"])["totals"]["tasks"] == 1


def test_other_keys_are_skipped(env: dict[str, Any]) -> None:
    res = ingest(env, f"jobs/{LABEL_JOB}/annotations/consolidated-annotation/output/0_x.png")
    assert res.skipped and res.written == 0 and count(env) == 0


def test_handler_records_the_sample_events(env: dict[str, Any], lambda_context: Any, monkeypatch) -> None:
    monkeypatch.setenv("TRACE_TABLE", env["table"])
    from worktime import app

    monkeypatch.setattr(app, "TABLE", env["table"])
    monkeypatch.setattr(app, "s3", env["s3"])
    monkeypatch.setattr(app, "ddb", env["ddb"])
    monkeypatch.setattr(app, "manifests", env["manifests"])
    for name in ("worktime-labeling", "worktime-old-format"):
        event = load_event(name)
        obj = event["detail"]["object"]
        idx = int(obj["key"].split("/")[-2])
        spent = None if "old" in name else 60.0
        accepted = None if "old" in name else "2026-11-24T09:00:00Z"
        put_response(env["s3"], env["bucket"], LABEL_JOB, idx, [answer(A, SEG, accepted=accepted,
                     submitted="2026-11-24T09:01:00Z", spent=spent)])  # fmt: skip
        assert event["detail"]["bucket"]["name"] == env["bucket"]
        out = app.lambda_handler(event, lambda_context)
        assert out["written"] == 1, out
    audit_event = load_event("worktime-audit")
    audit = answer(AUD, verdict("reject", "missing-object"), accepted="2026-11-24T11:00:00Z",
                   submitted="2026-11-24T11:00:10Z", spent=8)  # fmt: skip
    env["s3"].put_object(Bucket=env["bucket"], Key=audit_event["detail"]["object"]["key"],
                         Body=json.dumps({"answers": [audit]}).encode())  # fmt: skip
    out = app.lambda_handler(audit_event, lambda_context)
    assert (out["written"], out["verdicts"]) == (3, 2)  # the audit task and one verdict per judged labeler
    out = app.lambda_handler(load_event("worktime-activity"), lambda_context)
    assert out == {"activity": 2, "written": 1, "unchanged": 0}
    report = make_report(env["ddb"], env["table"])
    assert report["totals"]["returned_tasks"] == 1 and report["totals"]["tasks"] == 3
    rows = {w["worker_id"]: w for w in report["workers"]}
    assert rows[A]["returned_hours"] == pytest.approx(300 / 3600, abs=1e-4)
    assert (rows[A]["labels_judged"], rows[A]["rejection_rate"]) == (1, 1.0)


def test_activity_event_is_a_valid_cloudwatch_logs_payload() -> None:
    data = load_event("worktime-activity")["awslogs"]["data"]
    decoded = json.loads(gzip.decompress(base64.b64decode(data)))
    assert decoded["logGroup"] == "/aws/sagemaker/groundtruth/WorkerActivity" and len(decoded["logEvents"]) == 2


def test_cli_report_and_trace(env: dict[str, Any], tmp_path, capsys, monkeypatch) -> None:
    labeled_and_audited(env)
    monkeypatch.setenv("GTAUDIT_TRACE_TABLE", env["table"])
    assert main(["report", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "gtaudit.report/2" and doc["totals"]["tasks"] == 6
    assert main(["report", "--table", env["table"], "--format", "csv", "-o", str(tmp_path / "r.csv")]) == 0
    csv_text = (tmp_path / "r.csv").read_text()
    assert csv_text.startswith("section,worker_id,") and csv_text.count("\nworker,") == 3
    assert main(["report", "--since", "not-a-date"]) == 2
    assert main(["trace", "a-11111111"]) == 0
    text = capsys.readouterr().out
    assert "round 1" in text and "verdict reject (loose-boundary)" in text and A in text
    assert main(["trace", "nope"]) == 1
    paths = write_report(env["table"], tmp_path / "demo", ddb=env["ddb"])
    html = paths["html"].read_text()
    assert "<svg" in html and "<script" not in html and "http" not in html.replace(ISSUER, "")


def test_backfill_is_idempotent(env: dict[str, Any]) -> None:
    s3, b = env["s3"], env["bucket"]
    for i in (0, 1):
        put_response(s3, b, LABEL_JOB, i, [answer(A, SEG, accepted=None, submitted="2026-11-24T09:00:00Z", spent=None)])
    s3.put_object(Bucket=b, Key=f"jobs/{LABEL_JOB}/annotations/worker-response/iteration-1/2/bad.json", Body=b"{")
    s3.put_object(Bucket=b, Key=f"jobs/{LABEL_JOB}/manifests/output/output.manifest", Body=b"{}\n")
    kw = {"s3": s3, "ddb": env["ddb"], "table": env["table"], "manifests": env["manifests"], "bucket": b}
    first = backfill_worker_responses(**kw, prefix="jobs/")
    assert sorted((r.written, bool(r.skipped)) for r in first) == [(0, True), (1, False), (1, False)]
    again = backfill_worker_responses(**kw, prefix="jobs/")
    assert sum(r.written for r in again) == 0 and sum(r.unchanged for r in again) == 2


def test_activity_log_import(env: dict[str, Any]) -> None:
    logs = boto3.client("logs", region_name=REGION)
    group = "/aws/sagemaker/groundtruth/WorkerActivity"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="team")
    base = {"worker_id": B, "labeling_job_arn": f"arn:aws:sagemaker:us-east-1:1:labeling-job/{LABEL_JOB}",
            "task_accepted_time": "Tue Nov 24 09:00:00 UTC 2026"}  # fmt: skip
    now = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000  # CloudWatch refuses future events
    events = [
        {**base, "task_declined_time": "Tue Nov 24 09:20:00 UTC 2026", "event_type": "TasksDeclined"},
        {**base, "task_submitted_time": "Tue Nov 24 09:05:00 UTC 2026", "event_type": "TasksSubmitted"},
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="team",
        logEvents=[{"timestamp": now + i, "message": json.dumps(e)} for i, e in enumerate(events)],
    )
    assert import_activity_log(logs, env["ddb"], env["table"]).written == 1
    assert import_activity_log(logs, env["ddb"], env["table"]).unchanged == 1
    [row] = make_report(env["ddb"], env["table"], worker=B)["workers"]
    assert (row["tasks"], row["returned_tasks"], row["returned_hours"]) == (0, 1, pytest.approx(1200 / 3600, abs=1e-4))


def test_manifest_cache_keeps_the_most_recent_jobs(env: dict[str, Any]) -> None:
    env["manifests"] = ManifestIndex(env["s3"], env["sm"], max_jobs=1)
    s3, b = env["s3"], env["bucket"]
    a = answer(A, SEG, accepted=None, submitted="2026-11-24T09:00:00Z", spent=None)
    for job in (LABEL_JOB, LABEL_JOB, AUDIT_JOB, LABEL_JOB):
        assert ingest(env, put_response(s3, b, job, 0, [a])).missing == ("acceptanceTime", "timeSpentInSeconds")
    assert env["sm"].calls == 3  # the second LABEL_JOB file hit the cache; the last one was evicted by AUDIT_JOB
