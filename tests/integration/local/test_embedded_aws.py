"""The runtime's embedded AWS: DynamoDB in one moto process, the other services in another.

Both children journal into one project store; each restores only its own part on a restart.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
from gtaudit_local.aws import client
from gtaudit_local.moto_process import EmbeddedAws
from gtaudit_local.persist.records import RestoreReport
from support import table_spec

BUCKET = "gtaudit-databucket"
TABLE = "gtaudit-TraceTable"
N = 40  # objects and items written side by side


def deploy(aws: EmbeddedAws) -> tuple[Any, Any]:
    """The template's bucket and table, each on the process that serves it (as ``LocalRuntime.deploy``)."""
    s3, ddb = client("s3", aws.endpoint_for("s3")), client("dynamodb", aws.endpoint_for("dynamodb"))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ddb.create_table(TableName=TABLE, **table_spec("TraceTable"))
    return s3, ddb


def _item(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"OBJ#{i:03d}"}, "sk": {"S": "LINEAGE"}, "n": {"N": str(i)}}


def test_dynamodb_has_a_process_of_its_own(tmp_path: Path) -> None:
    with EmbeddedAws(project_dir=None, work_dir=tmp_path) as aws:
        _, ddb = deploy(aws)
        assert aws.endpoints == {"": aws.endpoint, "DYNAMODB": aws.endpoint_for("dynamodb")}
        assert aws.endpoint_for("dynamodb") != aws.endpoint == aws.endpoint_for("s3") == aws.endpoint_for("events")
        assert aws.environ() == {"AWS_ENDPOINT_URL": aws.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": ddb.meta.endpoint_url}
        assert ddb.list_tables()["TableNames"] == [TABLE]
        assert client("dynamodb", aws.endpoint).list_tables()["TableNames"] == []  # not where S3 is
        assert client("s3", aws.endpoint_for("dynamodb")).list_buckets()["Buckets"] == []
        listening = {c.laddr.port: c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
        pids = {listening[port] for port in aws.ports}
        assert len(pids) == 2 and os.getpid() not in pids
    assert all(p.pid not in pids for p in psutil.Process().children(recursive=True))


def test_each_process_keeps_and_restores_its_own_part(tmp_path: Path) -> None:
    project = tmp_path / "project"
    with EmbeddedAws(project_dir=project, work_dir=tmp_path / "w1") as aws:
        s3, ddb = deploy(aws)
        assert replace(aws.restore(), seconds=0.0) == RestoreReport()  # a new project: nothing yet

        def put(i: int) -> None:  # both children write to the one store at the same moments
            s3.put_object(Bucket=BUCKET, Key=f"masks/{i:03d}.png", Body=b"\x89PNG" + bytes([i]) * 300)
            ddb.put_item(TableName=TABLE, Item=_item(i))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(N)))
    with EmbeddedAws(project_dir=project, work_dir=tmp_path / "w2") as aws:
        s3, ddb = deploy(aws)
        report = aws.restore()
        assert (report.objects, report.items) == (N, N)
        assert report.object_bytes == N * 304
        # Each child restored only its own part: the S3 one has no table (it would report the
        # items as skipped), the DynamoDB one no bucket (it would have made one).
        assert report.skipped_tables == [] and report.created_buckets == []
        assert client("s3", aws.endpoint_for("dynamodb")).list_buckets()["Buckets"] == []
        assert s3.get_object(Bucket=BUCKET, Key="masks/007.png")["Body"].read() == b"\x89PNG" + bytes([7]) * 300
        items = ddb.scan(TableName=TABLE)["Items"]
        assert sorted(items, key=lambda it: it["pk"]["S"]) == [_item(i) for i in range(N)]


def test_a_child_that_cannot_start_stops_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws = EmbeddedAws(project_dir=None, work_dir=tmp_path)
    monkeypatch.setattr(aws.dynamodb, "part", "no-such-part")  # the child's arguments refuse it: it exits
    with pytest.raises(RuntimeError, match="ended with exit code 2"):
        aws.start()
    assert aws.main._child is None and aws.dynamodb._child is None


def test_reports_of_two_restores_add_up() -> None:
    objects = RestoreReport(objects=3, object_bytes=900, seconds=1.5, adopted=["b/k"], created_buckets=["b"])
    items = RestoreReport(items=7, seconds=0.5, skipped_tables=["t"])
    assert objects.merged(items) == RestoreReport(
        objects=3, object_bytes=900, items=7, seconds=1.5, adopted=["b/k"], created_buckets=["b"], skipped_tables=["t"]
    )
