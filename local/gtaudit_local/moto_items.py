"""DynamoDB items packed while moto serves them, so that its memory stays flat in the number of objects.

moto keeps an item as an ``Item`` of one ``DynamoType`` per attribute: a 30-attribute trace item of
1.6 KB of JSON took 8.2-8.6 KB of memory (measured: 4,000 items put through the API), and a
project has about ten per object (the lineage, time, score and verdict items), so 10,000 objects
meant some 850 MB in moto alone. ``install()`` makes every table with a range key (the trace and
pipeline tables) keep its items as zlib-packed DynamoDB JSON, about 0.6 KB each, and build moto's
``Item`` only when a request reads one.

moto changes an item in place in ``UpdateItem`` (it reads the item, runs the update expression on
it and returns it); here the read is a fresh copy, so the update is packed back when it returns.
Two updates of one item must then not interleave (the second would start from the first's old
copy and undo it): item writes take one lock. They are short (a few hundred microseconds), and
moto's in-place writes were never safe to interleave either (a conditional write checked and wrote
in two steps).
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from gtaudit_local.persist.moto_state import build_item, item_text

_MISSING = object()
_WRITES = threading.RLock()
_QUERIED = threading.local()  # .partition: (table, its items) while this thread runs a base-table Query


class PackedItems(dict):
    """One partition of a table with a range key: range key -> the item, packed.

    Stands where moto's ``table.items[hash_key]`` dict stands; reads give moto a fresh ``Item``.
    """

    def __init__(self, hash_attr: str, range_attr: str) -> None:
        super().__init__()
        self.hash_attr = hash_attr
        self.range_attr = range_attr

    def __setitem__(self, key: DynamoType, item: Item) -> None:
        super().__setitem__(key, pack(item))

    def __getitem__(self, key: DynamoType) -> Item:
        return self._unpack(super().__getitem__(key))

    def get(self, key: DynamoType, default: Any = None) -> Any:
        packed = super().get(key, _MISSING)
        return default if packed is _MISSING else self._unpack(packed)

    def pop(self, key: DynamoType, default: Any = _MISSING) -> Any:
        packed = super().pop(key, _MISSING)
        if packed is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return self._unpack(packed)

    def values(self) -> list[Item]:  # type: ignore[override]
        return [self._unpack(p) for p in list(super().values())]

    def items(self) -> list[tuple[DynamoType, Item]]:  # type: ignore[override]
        return [(k, self._unpack(p)) for k, p in list(super().items())]

    def __iter__(self) -> Iterator[DynamoType]:
        return iter(list(super().keys()))

    def __deepcopy__(self, memo: dict[int, Any]) -> PackedItems:
        """A copy for a transaction's rollback: the packed bytes are immutable, so they are shared."""
        copy = PackedItems(self.hash_attr, self.range_attr)
        dict.update(copy, dict(dict.items(self)))
        return copy

    def _unpack(self, packed: bytes) -> Item:
        return build_item(self.hash_attr, self.range_attr, json.loads(zlib.decompress(packed)))


def pack(item: Item) -> bytes:
    """The item as zlib-packed DynamoDB JSON (what :class:`PackedItems` keeps)."""
    return zlib.compress(item_text(item).encode(), 1)


def install() -> None:
    """Pack the items of every table with a range key created from now on (this process; idempotent)."""
    if getattr(Table.__init__, "_packs_items", False):
        return
    Table.__init__ = _packing_init(Table.__init__)  # type: ignore[method-assign]
    for name in ("put_item", "delete_item", "transact_write_items", "batch_write_item"):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.update_item = _packed_back(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
    Table.all_items = _queried_items(Table.all_items)  # type: ignore[method-assign,assignment]


def _packing_init(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def packing_init(table: Table, *args: Any, **kwargs: Any) -> None:
        init(table, *args, **kwargs)
        if table.range_key_attr is not None:
            table.items = defaultdict(functools.partial(PackedItems, table.hash_key_attr, table.range_key_attr))

    packing_init._packs_items = True  # type: ignore[attr-defined]
    return packing_init


def _serialized[**P, R](write: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(write)
    def serialized(*args: P.args, **kwargs: P.kwargs) -> R:
        with _WRITES:
            return write(*args, **kwargs)

    return serialized


def _packed_back(update: Callable[..., Item]) -> Callable[..., Item]:
    """``UpdateItem`` that stores the item it changed (moto changed a copy) under the write lock."""

    @functools.wraps(update)
    def packed_back(backend: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Item:
        with _WRITES:
            item = update(backend, table_name, *args, **kwargs)
            partition = backend.get_table(table_name).items.get(item.hash_key)
            if isinstance(partition, PackedItems) and item.range_key is not None:
                partition[item.range_key] = item
            return item

    return packed_back


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    """``Query`` on a table's own key that reads one partition, not the whole table.

    moto answers every Query by listing and sorting all the table's items (``all_items``), then
    keeping the partition's: at 10,000 objects that is 100,000 items per Query, and each one
    unpacked. While the wrapped Query runs, ``all_items`` gives it the queried partition only, in
    the same order (by range key); index queries and scans still see every item.
    """
    signature = inspect.signature(query)

    @functools.wraps(query)
    def partition_query(table: Table, *args: Any, **kwargs: Any) -> Any:
        called = signature.bind(table, *args, **kwargs).arguments
        hash_key = called.get("hash_key")
        if called.get("index_name") or hash_key is None or table.range_key_attr is None:
            return query(table, *args, **kwargs)
        partition = table.items.get(hash_key)
        found = sorted(partition.values(), key=lambda i: i.range_key) if partition else []
        _QUERIED.partition = (table, found)
        try:
            return query(table, *args, **kwargs)
        finally:
            _QUERIED.partition = None

    return partition_query


def _queried_items(all_items: Callable[[Table], list[Item]]) -> Callable[[Table], list[Item]]:
    @functools.wraps(all_items)
    def queried_items(table: Table) -> list[Item]:
        queried = getattr(_QUERIED, "partition", None)
        if queried is not None and queried[0] is table:
            return list(queried[1])
        return all_items(table)

    return queried_items
