"""DynamoDB items packed in moto: every read and write answers as moto's own items did, in less memory."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from gtaudit_local import moto_items
from gtaudit_local.aws import untrack_models
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item

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
    client = table.meta.client
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
    unpack = moto_items.PackedItems._unpack

    def counting(self: moto_items.PackedItems, packed: bytes) -> Item:
        nonlocal unpacked
        unpacked += 1
        return unpack(self, packed)

    monkeypatch.setattr(moto_items.PackedItems, "_unpack", counting)
    page = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07") & Key("sk").gte("S#2"), ScanIndexForward=False)
    assert [i["sk"] for i in page["Items"]] == ["S#4", "S#3", "S#2"]
    assert unpacked == 5  # the partition's items, not the table's 200
    first = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07"), Limit=2)
    rest = table.query(KeyConditionExpression=Key("pk").eq("OBJ#07"), ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"] for i in first["Items"] + rest["Items"]] == [f"S#{s}" for s in range(5)]
    unpacked = 0
    by_worker = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"))
    assert [i["pk"] for i in by_worker["Items"]] == [f"OBJ#{p:02d}" for p in range(40)]
    assert unpacked == 40  # the index partition's items
    table.put_item(Item={"pk": "OBJ#99", "sk": "S#3", "worker_pk": "W#3", "worker_sk": "99"})  # a write
    unpacked = 0
    first = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"), Limit=15)
    rest = table.query(IndexName="ByWorker", KeyConditionExpression=Key("worker_pk").eq("W#3"),
                       ExclusiveStartKey=first["LastEvaluatedKey"])  # fmt: skip
    assert [i["pk"] for i in first["Items"] + rest["Items"]] == [f"OBJ#{p:02d}" for p in [*range(40), 99]]
    assert unpacked == 41  # once for both pages: nothing was written between them
    scanned = table.scan(Limit=7)
    assert [(i["pk"], i["sk"]) for i in scanned["Items"]] == [("OBJ#00", f"S#{s}") for s in range(5)] + [
        ("OBJ#01", "S#0"),
        ("OBJ#01", "S#1"),
    ]
    assert unpacked <= 41 + 8  # the scan unpacks what it reads, not the table
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
