"""How long ``gtaudit report`` takes over 100,000 trace records (budget: 10 s on this machine).

Setup, honestly stated:

- The items are generated with the same code the worktime Lambda writes them with
  (``task_item``/``verdict_item``): 20 labelers, 4 auditors, 30 days, 2 labelers + 1 auditor per
  object, reworks for rejected objects.
- DynamoDB is played by a fake endpoint inside botocore (a ``before-send`` hook): it answers the
  report's real Query calls (calendar, then each ByDay partition, ProjectionExpression applied,
  1 MB pages with LastEvaluatedKey) with pre-serialised JSON pages. So the measurement covers
  everything on our side (botocore's request building and response parsing, our wire decoding,
  aggregation, rendering) and excludes DynamoDB's service time and the network: on AWS add
  roughly one round trip per 1 MB page (about 30 pages here, fetched 8 days in parallel).
- A second run against moto (in-process) with a smaller table checks that both give the same
  report; moto's Query is itself a linear scan per page, so it is not a speed reference.
- ``--embedded N``: what a local project's report costs. N records on one day (one ByDay
  partition, as a demo run writes them: N = 100,000 is a 10,000-object project) are loaded into the
  local runtime's DynamoDB process (moto with ``gtaudit_local.moto_items``) and reported from it,
  twice (the second with the sorted index answer cached); the ratio is to the same report from
  the fake's pages. Before it, 8,000 records on one day from in-process moto as it comes and with
  gtaudit's patches, in that order.

Prints the time, the ratio to the 10 s budget and to a floor (json.loads of the same pages,
the least any client must do), and the peak RSS.

    .venv/bin/python benchmarks/bench_report.py [RECORDS] [--embedded N]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from gtaudit.trace import make_report
from gtaudit.trace.items import CALENDAR_PK, INDEXES, task_item, verdict_item
from gtaudit.trace.records import Source, TaskRecord, iso, verdicts_of
from gtaudit.trace.render import render
from gtaudit.trace.store import REPORT_ATTRIBUTES

BUDGET_S = 10.0
PAGE_BYTES = 1_000_000  # DynamoDB's 1 MB Query page


def generate(
    n_records: int, *, seed: int = 7, days: int = 30, n_labelers: int = 20, n_auditors: int = 4
) -> list[dict[str, Any]]:
    """Wire-format items as the worktime function writes them: tasks plus verdicts, ~n_records in all."""
    rng = random.Random(seed)
    labelers = [f"private.us-east-1.{rng.getrandbits(64):016x}" for _ in range(n_labelers)]
    auditors = [f"private.us-east-1.{rng.getrandbits(64):016x}" for _ in range(n_auditors)]
    sloppiness = {w: rng.choice((0.05, 0.08, 0.1, 0.15, 0.3)) for w in labelers}
    start = datetime(2026, 10, 26, tzinfo=UTC)
    items: list[dict[str, Any]] = []
    obj = 0
    while len(items) < n_records:
        obj += 1
        oid = f"img{obj:07d}-{rng.getrandbits(32):08x}"
        day = start + timedelta(days=rng.randrange(days), hours=rng.uniform(0, 8) + 1)
        for rnd in (1, 2, 3):
            kind = "labeling" if rnd == 1 else "rework"
            lab_job, aud_job = f"gtaudit-{kind}-r{rnd}-b{obj // 500}", f"gtaudit-audit-r{rnd}-b{obj // 500}"
            pair = rng.sample(labelers, 2)
            t = day + timedelta(days=rnd - 1)
            for w in pair:
                spent = rng.uniform(60, 600)
                items.append(_task(lab_job, kind, rnd, oid, w, t, spent, rng))
            spent = rng.uniform(5, 60)
            reject = any(rng.random() < sloppiness[w] for w in pair) and rnd < 3
            auditor = rng.choice(auditors)
            rec = _record(aud_job, "audit", rnd, oid, auditor, t + timedelta(hours=2), spent, rng)
            rec = TaskRecord(**{**_fields(rec), "verdict": "reject" if reject else "approve", "judged": tuple(pair),
                                "labeling_job": lab_job})  # fmt: skip
            src = Source("bench", f"jobs/{aud_job}/x.json", None, None, "0")
            items.append(task_item(rec, src, fallback_time="", recorded_at="now"))
            items.extend(verdict_item(v, src, fallback_time="", recorded_at="now") for v in verdicts_of(rec))
            if not reject:
                break
    return items[:n_records]


def _fields(rec: TaskRecord) -> dict[str, Any]:
    return {f: getattr(rec, f) for f in rec.__dataclass_fields__}


def _record(job: str, stage: str, rnd: int, oid: str, worker: str, t: datetime, spent: float, rng: random.Random):
    accepted = t + timedelta(seconds=rng.uniform(0, 3600))
    submitted = accepted + timedelta(seconds=spent * rng.uniform(1.0, 1.6))
    return TaskRecord(
        job=job, stage=stage, round=rnd, object_id=oid, dataset_object_id=str(rng.randrange(500)), iteration=1,
        worker_id=worker, cognito_sub="00000000-0000-0000-0000-000000000000",
        cognito_issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench", identity_provider="Cognito",
        accepted_at=iso(accepted), submitted_at=iso(submitted), active_seconds=round(spent, 3),
        wall_seconds=round((submitted - accepted).total_seconds(), 3), missing=(),
    )  # fmt: skip


def _task(job: str, stage: str, rnd: int, oid: str, worker: str, t: datetime, spent: float, rng: random.Random):
    rec = _record(job, stage, rnd, oid, worker, t, spent, rng)
    return task_item(rec, Source("bench", f"jobs/{job}/x.json", None, None, "0"), fallback_time="", recorded_at="now")


class FakeDynamoDB:
    """Pre-serialised Query pages for the calendar and the ByDay partitions, served inside botocore."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        day_pk, day_sk = INDEXES["ByDay"]
        parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for it in items:
            parts[it[day_pk]["S"]].append(it)
        self.pages: dict[tuple[str, str], list[bytes]] = {}
        for pk, members in parts.items():
            members.sort(key=lambda it: it[day_sk]["S"])
            projected = [{k: v for k, v in it.items() if k in REPORT_ATTRIBUTES} for it in members]
            self.pages[("ByDay", pk)] = self._paginate(pk, projected)
        calendar = [{"pk": {"S": CALENDAR_PK}, "sk": {"S": "D#" + pk[2:]}} for pk in sorted(parts)]
        self.pages[("", CALENDAR_PK)] = self._paginate(CALENDAR_PK, calendar)
        self.requests = 0

    @staticmethod
    def _paginate(pk: str, items: list[dict[str, Any]]) -> list[bytes]:
        pages: list[list[dict[str, Any]]] = [[]]
        size = 0
        for it in items:
            n = len(json.dumps(it))
            if size + n > PAGE_BYTES and pages[-1]:
                pages.append([])
                size = 0
            pages[-1].append(it)
            size += n
        out = []
        for i, page in enumerate(pages):
            body: dict[str, Any] = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
            if i + 1 < len(pages):
                body["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": f"page#{i + 1}"}}
            out.append(json.dumps(body).encode())
        return out

    def handler(self, request: Any, **_: Any) -> AWSResponse:
        body = json.loads(request.body)
        pk = body["ExpressionAttributeValues"][":pk"]["S"]
        start = body.get("ExclusiveStartKey")
        page = int(start["sk"]["S"].split("#")[1]) if start else 0
        self.requests += 1
        data = self.pages.get((body.get("IndexName", ""), pk), [b'{"Items": [], "Count": 0, "ScannedCount": 0}'])
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(data[page]))

    def client(self) -> Any:
        ddb = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
            endpoint_url="http://127.0.0.1:9",  # never contacted: the hook answers first
        )  # fmt: skip
        ddb.meta.events.register("before-send.dynamodb.Query", self.handler)
        return ddb


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def run_fake(n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    items = generate(n)
    fake = FakeDynamoDB(items)
    setup = time.perf_counter() - t0
    ddb = fake.client()
    floor_t0 = time.perf_counter()
    for pages in fake.pages.values():
        for p in pages:
            json.loads(p)
    floor = time.perf_counter() - floor_t0
    t0 = time.perf_counter()
    report = make_report(ddb, "bench")
    html = render(report, "html")
    elapsed = time.perf_counter() - t0
    n_pages = sum(len(p) for p in fake.pages.values())
    print(f"setup: {len(items):,} items generated and paged in {setup:.1f} s ({n_pages} pages)")
    print(
        f"report over {report['totals']['tasks']:,} tasks + verdicts ({len(items):,} records), "
        f"{fake.requests} Query calls, HTML {len(html) // 1024} KiB: {elapsed:.2f} s"
    )
    print(f"  ratio to the 10 s budget: {elapsed / BUDGET_S:.3f}  ({'OK' if elapsed < BUDGET_S else 'OVER BUDGET'})")
    print(f"  ratio to the floor (json.loads of the same pages, {floor:.2f} s): {elapsed / floor:.1f}x")
    return report


def run_moto(n: int) -> dict[str, Any]:
    """The same report from moto, to check the fake answers what DynamoDB would."""
    from moto import mock_aws

    items = generate(n)
    with mock_aws():
        ddb = _bench_table()
        load = _load(ddb, items)
        t0 = time.perf_counter()
        report = make_report(ddb, "bench")
        elapsed = time.perf_counter() - t0
    print(f"moto: {len(items):,} records loaded in {load:.1f} s; report in {elapsed:.2f} s (moto scans per page)")
    return report


def one_day(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records on one day, as a project's demo run writes them (one ByDay partition)."""
    day_pk, day_sk = INDEXES["ByDay"]
    first = min(it[day_pk]["S"] for it in items)
    for it in items:
        it[day_pk]["S"] = first
        it[day_sk]["S"] = first[2:] + it[day_sk]["S"][10:]
    return items


def _bench_table(endpoint_url: str | None = None) -> Any:
    """A DynamoDB client with the template's trace table, named ``bench``, created at ``endpoint_url``."""
    sys.path.insert(0, "tests")
    from conftest import table_spec

    ddb = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        endpoint_url=endpoint_url,
    )  # fmt: skip
    ddb.create_table(TableName="bench", **table_spec("TraceTable"))
    return ddb


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two reports alike but for when they were made."""
    return {k: v for k, v in a.items() if k != "generated_at"} == {k: v for k, v in b.items() if k != "generated_at"}


def _load(ddb: Any, items: list[dict[str, Any]]) -> float:
    """Put ``items`` and their days' calendar items into ``bench``; the seconds it took."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()

    def put(chunk: list[dict[str, Any]]) -> None:
        ddb.batch_write_item(RequestItems={"bench": [{"PutRequest": {"Item": it}} for it in chunk]})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, [items[i : i + 25] for i in range(0, len(items), 25)]))
    for day in sorted({it["day_pk"]["S"][2:] for it in items}):
        ddb.put_item(TableName="bench", Item={"pk": {"S": CALENDAR_PK}, "sk": {"S": f"D#{day}"}})
    return time.perf_counter() - t0


def run_moto_ab(n: int) -> bool:
    """One day of ``n`` records, reported from in-process moto as it comes, then with gtaudit's patches.

    True when both give the same report.
    """
    from gtaudit_local import moto_items
    from moto import mock_aws

    times, reports = [], []
    for patched in (False, True):
        if patched:
            moto_items.install()  # for good: moto's classes stay patched in this process
        with mock_aws():
            ddb = _bench_table()
            _load(ddb, one_day(generate(n, days=1)))
            t0 = time.perf_counter()
            reports.append(make_report(ddb, "bench"))
            times.append(time.perf_counter() - t0)
    same = _same(*reports)
    print(
        f"one day of {n:,} records, in-process moto: as it comes {times[0]:.2f} s, with gtaudit's patches "
        f"(gtaudit_local.moto_items) {times[1]:.2f} s: {times[0] / times[1]:.1f}x faster; same report: {same}"
    )
    return same


def run_embedded(n: int) -> bool:
    """One day of ``n`` records (n/10 objects) from the local runtime's DynamoDB process; True if as the fake's."""
    import tempfile
    from pathlib import Path

    from gtaudit_local.moto_process import EmbeddedAws

    items = one_day(generate(n, days=1))
    fake = FakeDynamoDB(items)
    t0 = time.perf_counter()
    expected = make_report(fake.client(), "bench")
    floor = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as work, EmbeddedAws(project_dir=None, work_dir=Path(work)) as aws:
        ddb = _bench_table(aws.endpoint_for("dynamodb"))
        load = _load(ddb, items)
        elapsed = []
        for _ in range(2):
            t0 = time.perf_counter()
            report = make_report(ddb, "bench")
            elapsed.append(time.perf_counter() - t0)
    print(
        f"local runtime's DynamoDB process, one day of {len(items):,} records (loaded in {load:.1f} s): "
        f"report {elapsed[0]:.2f} s, again {elapsed[1]:.2f} s (no write between); "
        f"ratio to the same report from pre-serialised pages ({floor:.2f} s): {elapsed[0] / floor:.1f}x; "
        f"{report['totals']['tasks']:,} tasks"
    )
    same = _same(report, expected)
    print(f"  the same report as from the pre-serialised pages: {same}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=int, nargs="?", default=100_000)
    parser.add_argument(
        "--embedded",
        type=int,
        metavar="N",
        help="also N records of one day from the local runtime's DynamoDB process (and 8,000 from moto, "
        "without and with gtaudit's patches)",
    )
    args = parser.parse_args()
    n = args.records
    report = run_fake(n)
    small = 5_000
    fake_small = make_report(FakeDynamoDB(generate(small)).client(), "bench")
    moto_small = run_moto(small)
    same = _same(fake_small, moto_small)
    print(f"fake and moto give the same report over {small:,} records: {same}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")
    if args.embedded:
        same = run_moto_ab(8_000) and same
        same = run_embedded(args.embedded) and same
    return 0 if same and report["totals"]["tasks"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
