"""The store's one window into moto's models: read an object or item back, put them back on restore.

moto runs in this process, so its backends (``moto.backends.get_backend("s3")[account]["aws"]``,
``get_backend("dynamodb")[account][region]``) are plain Python objects. This module is the only
one that touches their insides (``FakeKey``'s value buffer and attributes, ``Table.items``), so a
moto upgrade that moves them breaks here, and ``tests/integration/local/test_project_store.py``
says so by comparing every object and item, metadata included, across a restart.

Restoring through the backend, not HTTP, is what makes a resume fast (no request per object) and
exact: ETag (a multipart one too), version ID and last-modified come back as they were, and no
S3 event is sent for objects the pipeline has already seen.
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, cast

from moto.backends import get_backend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeBucket, FakeKey, S3Backend
from moto.utilities.utils import LowercaseDict

from gtaudit_local.persist.records import ObjectRecord, RestoreReport

CHUNK = 1 << 20  # bytes copied at a time between moto's buffer and a file: memory stays flat
# What a PUT can set on a FakeKey beside metadata, under moto's own attribute names.
_EXTRA = ("_storage_class", "checksum_algorithm", "checksum_value", "checksum_type", "checksum_parts",
          "encryption", "kms_key_id", "bucket_key_enabled", "lock_mode", "lock_legal_status", "lock_until",
          "website_redirect_location")  # fmt: skip


def s3_backend(account_id: str) -> S3Backend:
    """moto's S3 backend of ``account_id`` (S3 is one backend per partition)."""
    backend: S3Backend = get_backend("s3")[account_id]["aws"]
    return backend


def dynamodb_backend(account_id: str, region: str) -> Any:
    """moto's DynamoDB backend of ``account_id`` in ``region``."""
    return get_backend("dynamodb")[account_id][region]


# S3.
def current_key(backend: S3Backend, bucket: str, key: str) -> FakeKey | None:
    """The object's current version in moto; ``None`` if none (or a delete marker, or no bucket)."""
    found = backend.buckets.get(bucket)
    if found is None or key not in found.keys:
        return None
    current = found.keys[key]
    return current if isinstance(current, FakeKey) else None


def object_record(backend: S3Backend, bucket: str, key: FakeKey) -> ObjectRecord:
    """What to keep of ``key`` beside its bytes."""
    extra: dict[str, Any] = {a: getattr(key, a) for a in _EXTRA if getattr(key, a, None) is not None}
    tags = backend.tagger.get_tag_dict_for_resource(key.arn)
    if tags:
        extra["tags"] = tags
    return ObjectRecord(
        bucket=bucket,
        key=key.name,
        etag=key.etag.strip('"'),
        version_id=key._version_id,
        last_modified=key.last_modified.isoformat(),
        metadata=dict(key.metadata.items()),
        extra=extra,
        size=key.size,
    )


class KeyReplaced(Exception):
    """The version being copied was replaced meanwhile, and moto closed its buffer: read again."""


def copy_value(key: FakeKey, out: BinaryIO) -> None:
    """Write the object's bytes to ``out`` a chunk at a time (moto spills big values to disk)."""
    with key.lock:  # moto's own reads take it too: they would move the buffer's position
        buf = key._value_buffer
        try:
            buf.seek(0)
            shutil.copyfileobj(buf, out, CHUNK)
        except ValueError as exc:  # "I/O operation on closed file": a newer PUT disposed of this one
            raise KeyReplaced(key.name) from exc


def _fake_key(backend: S3Backend, bucket: FakeBucket, record: ObjectRecord, path: Path) -> FakeKey:
    version_id = record.version_id
    if version_id is None:
        version_id = str(uuid.uuid4()) if bucket.is_versioned else "null"
    key = FakeKey(name=record.key, value=b"", account_id=backend.account_id, region_name=backend.region_name,
                  etag=record.etag, is_versioned=bucket.is_versioned, version_id=version_id,
                  bucket_name=bucket.name)  # fmt: skip
    for attr in _EXTRA:
        if attr in record.extra:
            setattr(key, attr, record.extra[attr])
    key.last_modified = datetime.fromisoformat(record.last_modified)
    key._metadata = LowercaseDict()
    key._metadata.update(record.metadata)
    with path.open("rb") as f:
        if record.size <= key._max_buffer_size:
            key.value = f.read()  # type: ignore[misc]  # moto's property has a setter
        else:  # past moto's spill size: copy a chunk at a time into its (then on-disk) buffer
            shutil.copyfileobj(f, key._value_buffer, CHUNK)
            key.contentsize = key._value_buffer.tell()
    if tags := record.extra.get("tags"):
        backend.tagger.tag_resource(key.arn, [{"Key": k, "Value": v} for k, v in tags.items()])
    return key


# DynamoDB.
def item_key(table: Table, attrs: Mapping[str, Any]) -> str:
    """The canonical JSON of an item's key attributes, as sent (numbers normalised: moto, as
    DynamoDB, takes ``1.0`` and ``1`` for one key)."""
    key = {}
    for name in table.table_key_attrs:
        value = attrs[name]
        if "N" in value:
            value = {"N": format(Decimal(value["N"]).normalize(), "f")}
        key[name] = value
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def item_json(table: Table, key: str) -> str | None:
    """The item with key JSON ``key`` as moto holds it now (DynamoDB JSON), ``None`` if absent."""
    attrs = json.loads(key)
    hash_key = DynamoType(_parsed(attrs[table.hash_key_attr]))
    found: Any = table.items.get(hash_key)  # .get: moto's defaultdict would grow on a miss
    if found is not None and table.range_key_attr is not None:
        found = found.get(DynamoType(_parsed(attrs[table.range_key_attr])))
    return None if found is None else item_text(found)


def table_items(table: Table) -> list[tuple[str, str]]:
    """Every item of ``table`` as ``(key JSON, item JSON)``."""
    out = []
    for item in table.all_items():
        text = item_text(item)
        out.append((item_key(table, json.loads(text)), text))
    return out


def _put_item(table: Table, attrs: Mapping[str, Any]) -> None:
    """Insert a kept item as ``Table.put_item`` would, without re-validating it (see :func:`build_item`)."""
    item = build_item(table.hash_key_attr, table.range_key_attr, attrs)
    if item.range_key is None:
        table.items[item.hash_key] = item  # type: ignore[assignment]  # as in moto's Table.put_item
    else:
        table.items[item.hash_key][item.range_key] = item


def build_item(hash_attr: str, range_attr: str | None, attrs: Mapping[str, Any]) -> Item:
    """moto's ``Item`` of DynamoDB JSON ``attrs`` (as :func:`item_text` writes it), without re-validating it.

    The item passed moto's checks when it was written. ``Item()`` would check its size again
    attribute by attribute (``LimitedSizeDict``: quadratic, 1-2 ms for a 30-attribute trace item,
    most of a restore); moto's own ``Item.__deepcopy__`` skips that check the same way.
    """
    item = cast(Item, Item.__new__(Item))
    item.hash_key = DynamoType(_parsed(attrs[hash_attr]))
    item.range_key = DynamoType(_parsed(attrs[range_attr])) if range_attr else None
    item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    for name, value in attrs.items():
        dict.__setitem__(item.attrs, name, DynamoType(_parsed(value)))
    return item


def item_text(item: Item) -> str:
    """DynamoDB JSON as on the wire: binary values in base64 (moto holds them as bytes)."""
    return dynamo_json_dump(item.to_json()["Attributes"])


def _parsed(value: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB JSON value as moto's request parser hands it to the backend: binary as bytes."""
    [(kind, inner)] = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _parsed(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_parsed(v) for v in inner]}
    return value


def load(
    found: Iterable[tuple[ObjectRecord, Path]],
    buckets: Iterable[str],
    tables: Mapping[str, Iterable[dict[str, Any]]],
    account_id: str,
    region: str,
    report: RestoreReport,
) -> None:
    """Put objects (with their files) and items into moto's backends; counts go to ``report``."""
    s3 = s3_backend(account_id)
    for name in buckets:
        if name not in s3.buckets:
            try:
                s3.create_bucket(name, region)
            except S3ClientError:  # a folder made by hand, not named as a bucket can be
                report.unreadable.append(f"{name}/")
                continue
            report.created_buckets.append(name)
    for record, path in found:
        bucket = s3.buckets.get(record.bucket)
        if bucket is None:
            continue
        key = _fake_key(s3, bucket, record, path)
        bucket.keys.setlist(record.key, [key])
        report.objects += 1
        report.object_bytes += key.size
    ddb = dynamodb_backend(account_id, region)
    for name, items in tables.items():
        table = ddb.tables.get(name)
        if table is None:
            report.skipped_tables.append(name)
            continue
        for attrs in items:
            _put_item(table, attrs)
            report.items += 1
