"""DynamoDB items packed in moto: every read and write answers as moto's own items did, in less memory."""

from __future__ import annotations

import gc
import json
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from gtaudit_local import moto_items
from gtaudit_local.aws import untrack_models
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

TABLE = "trace"


@pytest.fixture
def table() -> Iterator[Any]:
    moto_items.install()
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        t = ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "worker_pk", "worker_sk")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ByWorker",
                    "KeySchema": [
                        {"AttributeName": "worker_pk", "KeyType": "HASH"},
                        {"AttributeName": "worker_sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield t


def _moto_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)


ITEM = {
    "pk": "OBJ#a",
    "sk": "TASK#1",
    "seconds": Decimal("12.5"),
    "blob": b"\x00\xffbytes",
    "tags": {"x", "y"},
    "nested": {"list": [1, "two", {"three": True}], "none": None},
    "worker_pk": "W#ann",
    "worker_sk": "2026-11-29T10:00:00Z",
}


def test_items_are_kept_packed_and_read_back_exactly(table: Any) -> None:
    table.put_item(Item=ITEM)
    got = table.get_item(Key={"pk": "OBJ#a", "sk": "TASK#1"})["Item"]
    assert got == {**ITEM, "blob": boto3.dynamodb.types.Binary(ITEM["blob"])}
    partition = _moto_table().items.get(next(iter(_moto_table().items)))
    assert isinstance(partition, moto_items.PackedItems)
    assert all(isinstance(v[0], bytes) for v in dict.values(partition))  # what moto holds: bytes, not Items


def test_updates_conditions_deletes_and_rollbacks_behave_as_moto(table: Any) -> None:
    table.put_item(Item=ITEM)
    key = {"pk": "OBJ#a", "sk": "TASK#1"}
    table.update_item(
        Key=key,
        UpdateExpression="SET nested.#n = :v ADD seconds :s",
        ExpressionAttributeNames={"#n": "none"},
        ExpressionAttributeValues={":v": "set", ":s": Decimal(1)},
    )
    got = table.get_item(Key=key)["Item"]
    assert got["seconds"] == Decimal("13.5") and got["nested"]["none"] == "set"
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.put_item(Item={**ITEM, "seconds": 0}, ConditionExpression="attribute_not_exists(pk)")
    client = boto3.client("dynamodb", region_name="us-east-1")
    table.put_item(Item={"pk": "OBJ#b", "sk": "TASK#1"})
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "OBJ#a"}, "sk": {"S": "TASK#1"}},
                            "UpdateExpression": "SET seconds = :z", "ExpressionAttributeValues": {":z": {"N": "0"}}}},
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "OBJ#b"}, "sk": {"S": "TASK#1"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )  # fmt: skip
    assert table.get_item(Key=key)["Item"]["seconds"] == Decimal("13.5")  # rolled back
    old = table.delete_item(Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert old["seconds"] == Decimal("13.5")
    assert "Item" not in table.get_item(Key=key)


def test_queries_read_their_partition_in_order_and_indexes_see_every_partition(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with table.batch_writer() as batch:
        for p in range(40):
            for s in range(5):
                item = {"pk": f"OBJ#{p:02d}", "sk": f"S#{s}", "worker_pk": f"W#{s}", "worker_sk": f"{p:02d}"}
                batch.put_item(Item=item)
    unpacked = 0
    unpack = moto_items.PackedItems.unpack

    def counting(self: moto_items.PackedItems, packed: bytes, only: Any = None) -> Item:
        nonlocal unpacked
        unpacked += 1
        return unpack(self, packed, only)

    monkeypatch.setattr(moto_items.PackedItems, "unpack", counting)
    page = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07") & Key("sk").gte("S#2"), ScanIndexForward=False)
    assert [i["sk"] for i in page["Items"]] == ["S#4", "S#3", "S#2"]
    assert unpacked == 5  # the partition's items, not the table's 200
    first = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07"), Limit=2)
    rest = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07"), ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"] for i in first["Items"] + rest["Items"]] == [f"S#{s}" for s in range(5)]
    unpacked = 0
    by_worker = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"))
    assert [i["pk"] for i in by_worker["Items"]] == [f"OBJ#{p:02d}" for p in range(40)]
    assert unpacked == 40 + 40  # the index partition's items (as key items), then the page's, whole
    assert all(isinstance(i, moto_items.KeyItem) and len(i.attrs) == 4 for i in moto_items._last_marked[3])
    table.put_item(Item={"pk": "OBJ#99", "sk": "S#3", "worker_pk": "W#3", "worker_sk": "99"})  # a write
    unpacked = 0
    first = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"), Limit=15)
    rest = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"),
                       ExclusiveStartKey=first["LastEvaluatedKey"])  # fmt: skip
    assert [i["pk"] for i in first["Items"] + rest["Items"]] == [f"OBJ#{p:02d}" for p in [*range(40), 99]]
    assert unpacked == 41 + 41  # key items once for both pages (nothing was written between them), then the pages
    scanned = table.scan(Limit=7)
    assert [(i["pk"], i["sk"]) for i in scanned["Items"]] == [("OBJ#00", f"S#{s}") for s in range(5)] + [
        ("OBJ#01", "S#0"),
        ("OBJ#01", "S#1"),
    ]
    assert unpacked <= 82 + 8  # the scan unpacks what it reads, not the table
    assert table.scan(Select="COUNT")["Count"] == 201


def test_concurrent_updates_of_one_item_all_count(table: Any) -> None:
    table.put_item(Item={"pk": "RUN#r", "sk": "JOB#j", "done": 0})

    def add() -> None:
        for _ in range(40):
            table.update_item(Key={"pk": "RUN#r", "sk": "JOB#j"}, UpdateExpression="ADD done :one",
                              ExpressionAttributeValues={":one": 1})  # fmt: skip

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert table.get_item(Key={"pk": "RUN#r", "sk": "JOB#j"})["Item"]["done"] == 240


def test_moto_keeps_no_copy_of_what_it_answered(table: Any) -> None:
    untrack_models()
    table.put_item(Item=ITEM)
    gc.collect()
    before = sum(isinstance(o, Item) for o in gc.get_objects())
    for _ in range(200):
        table.query(KeyConditionExpression=Key("pk").eq("OBJ#a"))
        table.get_item(Key={"pk": "OBJ#a", "sk": "TASK#1"})
    gc.collect()
    assert sum(isinstance(o, Item) for o in gc.get_objects()) <= before + 2


def test_index_queries_over_key_items_answer_as_moto_over_whole_items(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with table.batch_writer() as batch:
        for p in range(30):
            for s in range(4):  # ties on the index's range key (broken by the table's keys), some items big
                key = {"pk": f"OBJ#{p:02d}", "sk": f"S#{s}", "worker_pk": f"W#{s % 2}", "worker_sk": f"T{p % 7}"}
                batch.put_item(Item={**key, "n": p * 10 + s, "pad": "x" * (90_000 * (p % 3))})
    table.put_item(Item={"pk": "OBJ#zz", "sk": "S#0", "worker_pk": "W#1"})  # not in the index: no range key
    queries: list[dict[str, Any]] = [
        {"KeyConditionExpression": Key("worker_pk").eq("W#1")},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0"), "ScanIndexForward": False, "Limit": 7},
        {"KeyConditionExpression": Key("worker_pk").eq("W#1") & Key("worker_sk").between("T2", "T5"), "Limit": 4},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0") & Key("worker_sk").begins_with("T3"),
         "ScanIndexForward": False},
        {"KeyConditionExpression": Key("worker_pk").eq("W#1"), "FilterExpression": Attr("n").gt(150), "Limit": 9},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0"), "ProjectionExpression": "pk, sk, n"},
        # pages read in windows: conditions whose matches end before the partition does, or start late
        {"KeyConditionExpression": Key("worker_pk").eq("W#1") & Key("worker_sk").lt("T4")},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0") & Key("worker_sk").lte("T4"), "Limit": 3},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0") & Key("worker_sk").gt("T3"), "Limit": 5},
        {"KeyConditionExpression": Key("worker_pk").eq("W#1") & Key("worker_sk").gte("T5")},
        {"KeyConditionExpression": Key("worker_pk").eq("W#1") & Key("worker_sk").eq("T2"), "Limit": 2},
        {"KeyConditionExpression": Key("worker_pk").eq("W#0") & Key("worker_sk").between("T1", "T1"), "Limit": 1},
        {"KeyConditionExpression": Key("worker_pk").eq("W#1") & Key("worker_sk").gt("T9")},
    ]  # fmt: skip

    def pages(query: dict[str, Any]) -> list[tuple[list[Any], int, Any]]:
        got, start = [], None
        while True:
            page = table.query(IndexName="ByWorker", **query, **({"ExclusiveStartKey": start} if start else {}))
            got.append(([(i["pk"], i["sk"], i.get("n"), len(i.get("pad", ""))) for i in page["Items"]],
                        page["ScannedCount"], page.get("LastEvaluatedKey")))  # fmt: skip
            if not (start := page.get("LastEvaluatedKey")):
                return got

    ours = [pages(q) for q in queries]
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)  # moto's own Query over whole items
    assert ours == [pages(q) for q in queries]
    assert len(ours[0]) > 1  # some answers took several pages (1 MB each)


def test_attribute_values_are_written_as_moto_writes_them(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sets = {"bins": {b"\x01", b"\x02\xff"}, "nums": {Decimal("1.5"), Decimal("-2")}}
    nested = {"list": [b"\x00", {"deep": [None, Decimal("3")]}]}
    everything = {**ITEM, **sets, **nested, "empty": "", "yes": True, "text": '検品 "quoted" \\ \n'}
    table.put_item(Item=everything)
    client = boto3.client("dynamodb", region_name="us-east-1")
    bodies: list[bytes] = []
    client.meta.events.register(
        "response-received.dynamodb.*", lambda response_dict, **_: bodies.append(response_dict["body"])
    )

    def answers() -> list[Any]:
        bodies.clear()
        client.get_item(TableName=TABLE, Key={"pk": {"S": "OBJ#a"}, "sk": {"S": "TASK#1"}})
        client.query(TableName=TABLE, IndexName="ByWorker", KeyConditionExpression="worker_pk = :w",
                     ExpressionAttributeValues={":w": {"S": "W#ann"}})  # fmt: skip
        client.scan(TableName=TABLE)
        client.update_item(TableName=TABLE, Key={"pk": {"S": "OBJ#a"}, "sk": {"S": "TASK#1"}},
                           UpdateExpression="SET yes = :f", ExpressionAttributeValues={":f": {"BOOL": False}},
                           ReturnValues="ALL_NEW")  # fmt: skip
        client.describe_table(TableName=TABLE)
        return [json.loads(b) for b in bodies]

    ours = answers()
    assert ours[0]["Item"]["bins"]["BS"] and ours[0]["Item"]["list"]["L"][0] == {"B": "AA=="}
    moto_own = BaseJSONSerializer._serialize_type_structure.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_own)
    table.put_item(Item=everything)
    theirs = answers()
    for answer in (ours, theirs):
        answer[-1]["Table"].pop("CreationDateTime")
        answer[0]["Item"]["bins"]["BS"].sort(), answer[0]["Item"]["nums"]["NS"].sort()  # sets: any order
    assert ours == theirs


def test_an_index_added_later_is_queried_with_its_own_key(table: Any) -> None:
    table.put_item(Item={**ITEM, "when": "2026-11-30"})
    schema = [{"AttributeName": "worker_pk", "KeyType": "HASH"}, {"AttributeName": "when", "KeyType": "RANGE"}]
    index = {"IndexName": "ByWhen", "Projection": {"ProjectionType": "ALL"}, "KeySchema": schema}
    table.meta.client.update_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("worker_pk", "when")],
        GlobalSecondaryIndexUpdates=[{"Create": index}],
    )
    got = table.query(IndexName="ByWhen", KeyConditionExpression=Key("worker_pk").eq("W#ann") & Key("when").gt("2026"))
    assert [i["pk"] for i in got["Items"]] == ["OBJ#a"]


def test_projections_answer_as_moto_projects(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = {**ITEM, "nums": {Decimal("1.50"), Decimal("-2")}, "zero": Decimal("0.000"), "empty": "", "yes": True,
                  "marks": [Decimal(1), {"deep": "x", "not": "this"}]}  # fmt: skip
    table.put_item(Item=everything)
    top = ("pk", "sk", "seconds", "blob", "tags", "nums", "zero", "empty", "yes", "absent")
    names = {"#l": "list", "#n": "nested", **{f"#{a}": a for a in top}}
    projections = [
        ", ".join(f"#{a}" for a in top),  # top-level names: picked as they are
        "#n.#l, marks[1].deep, #seconds",  # into a map and a list: moto's own way
        "#n, #l",  # "#l" names the top-level attribute "list", which this item lacks
    ]

    def answers() -> list[Any]:
        out = []
        for expr in projections:
            for kind in ("get", "query"):
                names_used = {k: names[k] for k in re.findall(r"#\w+", expr)}
                args: dict[str, Any] = {"ProjectionExpression": expr, "ExpressionAttributeNames": names_used}
                if kind == "get":
                    got = [table.get_item(Key={"pk": "OBJ#a", "sk": "TASK#1"}, **args)["Item"]]
                else:
                    got = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#ann"), **args)
                    got = got["Items"]
                out.append([{k: sorted(v) if isinstance(v, set) else v for k, v in i.items()} for i in got])
        return out

    ours = answers()
    assert ours[0][0]["zero"] == Decimal("0.000") and "absent" not in ours[0][0]
    assert ours[2][0] == {"nested": {"list": [1, "two", {"three": True}]}, "marks": [{"deep": "x"}], "seconds": 12.5}
    assert ours[4][0] == {"nested": {"list": [1, "two", {"three": True}], "none": None}}  # answers: get, query
    moto_own = Item.project.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(Item, "project", moto_own)
    assert ours == answers()


def test_each_page_of_an_index_query_reads_its_window_not_the_whole_answer(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with table.batch_writer() as batch:
        for n in range(1500):
            batch.put_item(Item={"pk": f"OBJ#{n:04d}", "sk": "S", "worker_pk": "W#a", "worker_sk": f"T{n % 997:03d}"})
    considered: list[int] = []  # the items moto filters and sorts for each page
    sort = Table.sorted_items

    def spy(self: Table, *args: Any) -> Any:
        considered.append(len(args[-1]))
        return sort(self, *args)

    monkeypatch.setattr(Table, "sorted_items", spy)
    got, start = [], None
    while True:
        page = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#a"), Limit=100,
                           **({"ExclusiveStartKey": start} if start else {}))  # fmt: skip
        got += [i["worker_sk"] for i in page["Items"]]
        if not (start := page.get("LastEvaluatedKey")):
            break
    assert len(got) == 1500 and got == sorted(got)
    assert len(considered) == 15 and max(considered) <= 102  # the page, its start key's item, the one after


@pytest.mark.parametrize(
    "between",
    [
        {"UpdateExpression": "SET worker_sk = :v", "ExpressionAttributeValues": {":v": "T9"}},  # moved later
        {"UpdateExpression": "SET worker_sk = :v", "ExpressionAttributeValues": {":v": "T0"}},  # moved earlier
        None,  # deleted
    ],
)
def test_a_page_after_its_start_keys_item_changed_answers_as_moto(
    table: Any, monkeypatch: pytest.MonkeyPatch, between: dict[str, Any] | None
) -> None:
    def pages() -> tuple[list[str], list[str], Any]:
        for n, sk in enumerate(("T1", "T2", "T3", "T4")):
            table.put_item(Item={"pk": f"OBJ#{n}", "sk": "S", "worker_pk": "W#a", "worker_sk": sk})
        query = {"IndexName": "ByWorker", "KeyConditionExpression": Key("worker_pk").eq("W#a"), "Limit": 2}
        first = table.query(**query)
        key = {"pk": "OBJ#1", "sk": "S"}  # the first page's last item: its start key
        table.update_item(Key=key, **between) if between else table.delete_item(Key=key)
        second = table.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])
        return [i["pk"] for i in first["Items"]], [i["pk"] for i in second["Items"]], second.get("LastEvaluatedKey")

    ours = pages()
    assert ours[1] == ["OBJ#2", "OBJ#3"]
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)  # moto's own Query over whole items
    assert ours == pages()


def test_a_query_while_an_item_is_stored_never_keeps_an_answer_without_it(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.put_item(Item={"pk": "OBJ#a", "sk": "S", "worker_pk": "W#a", "worker_sk": "T1"})

    def answer() -> list[str]:
        got = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#a"))
        return [i["pk"] for i in got["Items"]]

    pack, during = moto_items.pack, []

    def pack_then_query(item: Item) -> bytes:  # another thread queries while this write is stored
        packed = pack(item)
        if item.attrs["pk"].value == "OBJ#b":
            other = threading.Thread(target=lambda: during.append(answer()))
            other.start()
            other.join()
        return packed

    monkeypatch.setattr(moto_items, "pack", pack_then_query)
    table.put_item(Item={"pk": "OBJ#b", "sk": "S", "worker_pk": "W#a", "worker_sk": "T2"})
    assert during == [["OBJ#a"]]  # before the write is stored: the answer as it was
    assert answer() == ["OBJ#a", "OBJ#b"]  # after it: never that answer kept
