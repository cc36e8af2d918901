"""The embedded AWS keeps S3 objects and DynamoDB items in the project folder and gets them back.

Each test writes through boto3 to ``MotoServer(store=AwsStore(project))``, stops, starts a new
server on the same folder, deploys the same buckets and tables, restores, and compares what S3
and DynamoDB answer, byte for byte, metadata included.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from gtaudit_local.aws import MotoServer, client
from gtaudit_local.persist import moto_state
from gtaudit_local.persist.store import AwsStore, StoreError
from support import table_spec

BUCKET = "gtaudit-databucket"  # versioned, with EventBridge notifications, as the template's
PLAIN = "gtaudit-plain"  # not versioned
TABLE = "gtaudit-TraceTable"
COUNTERS = "gtaudit-counters"  # a hash key only, and a number
# Keys of every shape the folder rule escapes (a newline is left out: moto itself refuses it in a key).
KEYS = ["images/cat 1.jpg", "写真/検品 (1).png", "100%/a b+c.json", "photos/", "a//b", "../../etc/passwd",
        "a/%2e%2e/b", "./dot", "/lead", "tab\there"]  # fmt: skip


def deploy(endpoint: str) -> tuple[Any, Any]:
    """What ``LocalRuntime.deploy`` makes of the template, for the parts kept."""
    s3, ddb = client("s3", endpoint), client("dynamodb", endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.create_bucket(Bucket=PLAIN)
    ddb.create_table(TableName=TABLE, **table_spec("TraceTable"))
    ddb.create_table(TableName=COUNTERS, KeySchema=[{"AttributeName": "n", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "n", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")  # fmt: skip
    return s3, ddb


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
def running(project: Path) -> Iterator[tuple[AwsStore, MotoServer]]:
    """A store on the project folder and a moto server keeping into it (deployed)."""
    with AwsStore(project) as store, MotoServer(store=store) as server:
        deploy(server.endpoint)
        yield store, server


@contextlib.contextmanager
def restarted(project: Path) -> Iterator[tuple[Any, Any, Any]]:
    """A new store and server on the same folder, deployed and restored: (s3, ddb, report)."""
    with AwsStore(project) as store, MotoServer(store=store) as server:
        s3, ddb = deploy(server.endpoint)
        report = store.restore(server)
        yield s3, ddb, report


def seen(s3: Any, ddb: Any) -> dict[str, Any]:
    """Everything a client can read of the kept parts, comparable with ``==``."""
    objects = {}
    for bucket in (BUCKET, PLAIN):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                got = s3.get_object(Bucket=bucket, Key=entry["Key"])
                tags = s3.get_object_tagging(Bucket=bucket, Key=entry["Key"])["TagSet"]
                objects[(bucket, entry["Key"])] = (
                    got["Body"].read(), got["ETag"], got["ContentType"], got["Metadata"], got.get("VersionId"),
                    got["LastModified"], got.get("CacheControl"), tags, entry["Size"],
                )  # fmt: skip
    items = sorted(ddb.scan(TableName=TABLE)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    counters = sorted(ddb.scan(TableName=COUNTERS)["Items"], key=lambda i: float(i["n"]["N"]))
    return {"objects": objects, "items": items, "counters": counters}


def item(pk: str, sk: str, **attrs: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **attrs}


def test_everything_written_comes_back_after_a_restart(project: Path, running: tuple[AwsStore, MotoServer]) -> None:
    store, server = running
    s3, ddb = client("s3", server.endpoint), client("dynamodb", server.endpoint)
    for i, key in enumerate(KEYS):
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"body {i}".encode(), ContentType="image/png",
                      Metadata={"worker": f"w{i}", "under_score": "x"}, CacheControl="no-cache")  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key="tagged.json", Body=b"{}", Tagging="stage=audit&round=2")
    s3.put_object(Bucket=BUCKET, Key="overwritten", Body=b"first")
    s3.put_object(Bucket=BUCKET, Key="overwritten", Body=b"second")
    s3.copy_object(Bucket=BUCKET, Key="copied/cat.jpg", CopySource={"Bucket": BUCKET, "Key": "images/cat 1.jpg"})
    big = os.urandom(9 * 1024 * 1024)  # boto3 goes multipart above 8 MB
    s3.upload_fileobj(io.BytesIO(big), BUCKET, "big/photo.tif", Config=TransferConfig(multipart_threshold=8 << 20))
    s3.put_object(Bucket=PLAIN, Key="gone", Body=b"x")
    s3.delete_object(Bucket=PLAIN, Key="gone")
    for name in ("batch/1", "batch/2", "batch/3"):
        s3.put_object(Bucket=PLAIN, Key=name, Body=name.encode())
    s3.delete_objects(Bucket=PLAIN, Delete={"Objects": [{"Key": "batch/1"}, {"Key": "batch/3"}]})
    s3.put_object(Bucket=BUCKET, Key="deleted-in-versioned", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="deleted-in-versioned")

    ddb.put_item(TableName=TABLE, Item=item("a", "1", n={"N": "1"}, m={"M": {"l": {"L": [{"S": "x"}, {"N": "2.5"}]}}}))
    ddb.update_item(TableName=TABLE, Key=item("a", "1"), UpdateExpression="SET n = n + :one",
                    ConditionExpression="n = :n",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":n": {"N": "1"}})  # fmt: skip
    ddb.put_item(TableName=TABLE, Item=item("b", "1", b={"B": b"\x00\xff"}))
    ddb.delete_item(TableName=TABLE, Key=item("b", "1"))
    ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": item("c", str(i))}} for i in range(30)][:25]})
    ddb.batch_write_item(RequestItems={TABLE: [{"DeleteRequest": {"Key": item("c", "3")}}]})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": item("d", "1", s={"SS": ["x", "y"]}, b={"B": b"\x00\xff"},
                                                 m={"M": {"bs": {"BS": [b"\x01", b"\x02"]}}})}},
        {"Update": {"TableName": TABLE, "Key": item("a", "1"), "UpdateExpression": "SET t = :t",
                    "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
        {"Delete": {"TableName": TABLE, "Key": item("c", "4")}},
    ])  # fmt: skip
    for n in ("1.0", "2", "3"):
        ddb.put_item(TableName=COUNTERS, Item={"n": {"N": n}, "v": {"S": f"v{n}"}})
    ddb.delete_item(TableName=COUNTERS, Key={"n": {"N": "1"}})  # the item written as 1.0
    ddb.update_item(TableName=COUNTERS, Key={"n": {"N": "2.00"}}, UpdateExpression="SET w = :w",
                    ExpressionAttributeValues={":w": {"NS": ["1", "2"]}})  # fmt: skip
    before = seen(s3, ddb)
    server.stop()
    store.close()

    with AwsStore(project, readonly=True) as kept:  # 1.0 and 1 are one key, as in DynamoDB
        assert [i["n"] for i in kept.items(COUNTERS)] == [{"N": "2"}, {"N": "3"}]
    assert (project / "bucket" / BUCKET / "images" / "cat 1.jpg").read_bytes() == b"body 0"
    assert (project / "bucket" / BUCKET / "big" / "photo.tif").read_bytes() == big
    assert not (project / "bucket" / PLAIN / "batch" / "1").exists()
    with restarted(project) as (s3, ddb, report):
        assert seen(s3, ddb) == before
        assert (report.adopted, report.dropped, report.unreadable) == ([], [], [])
        assert report.objects == len(before["objects"]) and report.items == len(before["items"]) + 2
    assert before["objects"][(BUCKET, "big/photo.tif")][1].endswith('-2"')  # a multipart ETag, kept as such
    assert len(before["items"]) == 1 + (25 - 2) + 1  # a; c0-c24 but c3 and c4; d


def test_a_refused_write_is_not_kept(monkeypatch: pytest.MonkeyPatch, running: tuple[AwsStore, MotoServer]) -> None:
    store, server = running
    s3, ddb = client("s3", server.endpoint), client("dynamodb", server.endpoint)
    s3.put_object(Bucket=BUCKET, Key="answer.json", Body=b"first answer", ContentType="application/json")
    ddb.put_item(TableName=TABLE, Item=item("a", "1", n={"N": "1"}))
    row, path = store.object_row(BUCKET, "answer.json"), store.object_file(BUCKET, "answer.json")
    stat = path.stat()
    writes: list[str] = []
    for name in ("write_object", "write_row", "remove_object", "write_items", "replace_table"):
        monkeypatch.setattr(store, name, lambda *a, name=name, **k: writes.append(name))

    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=BUCKET, Key="answer.json", Body=b"second answer", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ddb.update_item(TableName=TABLE, Key=item("a", "1"), UpdateExpression="SET n = :two",
                        ConditionExpression="n = :zero",
                        ExpressionAttributeValues={":two": {"N": "2"}, ":zero": {"N": "0"}})  # fmt: skip
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ddb.put_item(TableName=TABLE, Item=item("a", "1", n={"N": "3"}), ConditionExpression="attribute_not_exists(pk)")

    assert writes == []
    assert path.read_bytes() == b"first answer" and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert store.object_row(BUCKET, "answer.json") == row
    assert list(store.items(TABLE)) == [item("a", "1", n={"N": "1"})]


def test_objects_are_files_as_soon_as_the_put_returns(project: Path, running: tuple[AwsStore, MotoServer]) -> None:
    _store, server = running
    s3 = client("s3", server.endpoint)
    s3.put_object(Bucket=BUCKET, Key="jobs/j1/annotations/worker-response/iteration-1/0/a.json", Body=b"answer")
    folder = project / "bucket" / BUCKET / "jobs"
    assert (folder / "j1/annotations/worker-response/iteration-1/0/a.json").read_bytes() == b"answer"
    s3.delete_object(Bucket=BUCKET, Key="jobs/j1/annotations/worker-response/iteration-1/0/a.json")
    assert not folder.exists()  # the folders it emptied go too
    assert not [p for p in (project / "bucket").rglob("%tmp-*")]


def test_no_key_writes_outside_its_bucket_folder(
    tmp_path: Path, project: Path, running: tuple[AwsStore, MotoServer]
) -> None:
    _store, server = running
    s3 = client("s3", server.endpoint)
    evil = ["../../etc/passwd", "a/%2e%2e/b", "../x", "a/../../../y", "%2e%2e/%2e%2e/z", "..\\..\\w", "./."]
    for key in evil:
        s3.put_object(Bucket=PLAIN, Key=key, Body=key.encode())
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    inside = project / "bucket" / PLAIN
    assert len([p for p in files if inside in p.parents]) == len(evil)
    assert all(inside in p.parents or (project / "state") in p.parents for p in files)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=PLAIN)["Contents"]) == sorted(evil)


def test_a_version_replaced_while_being_copied_is_kept_newest(
    monkeypatch: pytest.MonkeyPatch, running: tuple[AwsStore, MotoServer]
) -> None:
    store, server = running
    s3 = client("s3", server.endpoint)
    copy = moto_state.copy_value

    def overtaken(key: Any, out: Any) -> None:
        if key.value == b"older":  # another PUT lands meanwhile, and moto closes this version's buffer
            moto_state.s3_backend(server.account_id).put_object(PLAIN, "raced.json", b"newer")
        copy(key, out)

    monkeypatch.setattr(moto_state, "copy_value", overtaken)
    s3.put_object(Bucket=PLAIN, Key="raced.json", Body=b"older")
    assert store.object_file(PLAIN, "raced.json").read_bytes() == b"newer"
    assert store.object_row(PLAIN, "raced.json").etag == hashlib.md5(b"newer").hexdigest()  # type: ignore[union-attr]


def test_a_key_that_would_be_a_file_and_a_folder_is_refused(running: tuple[AwsStore, MotoServer]) -> None:
    _store, server = running
    s3 = client("s3", server.endpoint)
    s3.put_object(Bucket=PLAIN, Key="a/b", Body=b"x")
    for key in ("a", "a/b/c"):
        with pytest.raises(ClientError, match="InvalidArgument") as refused:
            s3.put_object(Bucket=PLAIN, Key=key, Body=b"y")
        assert "cannot be kept as a file" in str(refused.value)
    with pytest.raises(ClientError, match="InvalidArgument"):
        s3.create_multipart_upload(Bucket=PLAIN, Key="a")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=PLAIN)["Contents"]] == ["a/b"]  # moto never stored them


def test_a_write_that_cannot_be_kept_is_not_answered_200(
    monkeypatch: pytest.MonkeyPatch, project: Path, running: tuple[AwsStore, MotoServer]
) -> None:
    store, server = running
    s3 = client("s3", server.endpoint)

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_object", disk_full)
    with pytest.raises(ClientError, match="InternalError") as failed:
        s3.put_object(Bucket=BUCKET, Key="lost.json", Body=b"x")
    assert "could not be kept on disk" in str(failed.value)
    assert not (project / "bucket" / BUCKET / "lost.json").exists()


def test_an_object_put_just_before_kill_9_is_there_after_restart(project: Path) -> None:
    serve = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from gtaudit_local.aws import MotoServer
        from gtaudit_local.persist.store import AwsStore
        server = MotoServer(store=AwsStore(Path(sys.argv[1]))).start()
        print(server.endpoint, flush=True)
        sys.stdin.read()  # until killed
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", serve, str(project)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        s3, ddb = deploy(endpoint)
        s3.put_object(Bucket=BUCKET, Key="answers/w1.json", Body=b'{"label": 3}', ContentType="application/json")
        ddb.put_item(TableName=TABLE, Item=item("job", "task-1", state={"S": "submitted"}))
        proc.kill()  # SIGKILL, right after the 200s
    finally:
        proc.kill()
        proc.wait()
    with restarted(project) as (s3, ddb, report):
        got = s3.get_object(Bucket=BUCKET, Key="answers/w1.json")
        assert (got["Body"].read(), got["ContentType"]) == (b'{"label": 3}', "application/json")
        assert ddb.get_item(TableName=TABLE, Key=item("job", "task-1"))["Item"]["state"] == {"S": "submitted"}
        assert report.adopted == [] and report.dropped == []


def test_a_stopped_project_reads_without_writing(project: Path, running: tuple[AwsStore, MotoServer]) -> None:
    store, server = running
    s3, ddb = client("s3", server.endpoint), client("dynamodb", server.endpoint)
    s3.put_object(Bucket=BUCKET, Key="out/manifest", Body=b"line\n", ContentType="text/plain")
    ddb.put_item(TableName=TABLE, Item=item("a", "1"))
    server.stop()
    store.close()

    with AwsStore(project, readonly=True) as reader:
        [record] = reader.objects(BUCKET, prefix="out/")
        assert (record.key, record.content_type) == ("out/manifest", "text/plain")
        assert reader.object_file(BUCKET, record.key).read_bytes() == b"line\n"
        assert reader.tables() == [TABLE] and list(reader.items(TABLE)) == [item("a", "1")]
        with pytest.raises(StoreError, match="read-only"):
            reader.remove_object(BUCKET, record.key)
        with MotoServer() as plain:  # a tool's own moto, keeping nothing
            s3, ddb = deploy(plain.endpoint)
            reader.restore(plain)
            assert s3.get_object(Bucket=BUCKET, Key="out/manifest")["Body"].read() == b"line\n"
            assert ddb.scan(TableName=TABLE)["Count"] == 1


def test_files_changed_while_stopped_are_taken_as_they_are(project: Path, running: tuple[AwsStore, MotoServer]) -> None:
    store, server = running
    s3 = client("s3", server.endpoint)
    s3.put_object(Bucket=BUCKET, Key="images/a.jpg", Body=b"old", ContentType="image/jpeg")
    s3.put_object(Bucket=BUCKET, Key="images/b.jpg", Body=b"b")
    server.stop()
    store.close()
    folder = project / "bucket" / BUCKET / "images"
    (folder / "a.jpg").write_bytes(b"edited by hand")
    (folder / "new photo.png").write_bytes(b"dropped in")
    (folder / "b.jpg").unlink()
    (folder / "%tmp-0123").write_bytes(b"an unfinished write")
    (folder / "a%zz").write_bytes(b"not a name the rule makes")
    (project / "bucket" / "Not A Bucket").mkdir()
    (project / "bucket" / "Not A Bucket" / "x.jpg").write_bytes(b"x")

    with restarted(project) as (s3, _ddb, report):
        assert sorted(report.adopted) == [f"{BUCKET}/images/a.jpg", f"{BUCKET}/images/new photo.png"]
        assert report.dropped == [f"{BUCKET}/images/b.jpg"]
        assert sorted(report.unreadable) == sorted([f"{BUCKET}/images/a%zz", "Not A Bucket/"])
        got = s3.get_object(Bucket=BUCKET, Key="images/new photo.png")
        assert (got["Body"].read(), got["ContentType"]) == (b"dropped in", "image/png")
        etag = s3.head_object(Bucket=BUCKET, Key="images/a.jpg")["ETag"]
        assert etag == f'"{hashlib.md5(b"edited by hand").hexdigest()}"'
    assert not (folder / "%tmp-0123").exists()
