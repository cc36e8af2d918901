"""DynamoDB items packed while moto serves them: a quarter of the memory per item, unpacked when read.

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

import base64
import bisect
import functools
import inspect
import itertools
import json
import re
import sys
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

from gtaudit_local.persist.moto_state import build_item, item_text

_MISSING = object()
_WRITES = threading.RLock()
# .partition: (table, its items, the key attributes they are sorted by or None) while this thread runs a Query
_QUERIED = threading.local()
# The last index Query's items, as key items, until the next write (see _marked):
# (table, mark, key attributes, items, _version).
_last_marked: tuple[Table, str, tuple[str, ...], list[Item], int] | None = None
_version = 0  # item writes so far
# That answer in moto's order: (the cached items, them in order).
_last_sorted: tuple[list[Item], _InOrder] | None = None
_INDEX_ATTRS = "_gtaudit_index_attrs"  # on a packed table: the index hash keys its items are marked with


class PackedItems(dict):
    """One partition of a table with a range key: range key -> ``(packed item, index marks, size)``.

    Stands where moto's ``table.items[hash_key]`` dict stands; reads give moto a fresh ``Item``.
    The marks name the item's values of the table's index hash keys (see :func:`mark`), so that an
    index Query unpacks only the items it answers with.
    """

    def __init__(self, hash_attr: str, range_attr: str, index_attrs: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.index_attrs = index_attrs

    def __setitem__(self, key: DynamoType, item: Item) -> None:
        marks = tuple(mark(a, v) for a in self.index_attrs if (v := item.attrs.get(a)) is not None and v.type == "S")
        super().__setitem__(key, (pack(item), marks, item.size()))
        _written()  # after: a Query between the two would cache an answer without the item, as current

    def __getitem__(self, key: DynamoType) -> Item:
        return self._unpack(super().__getitem__(key))

    def get(self, key: DynamoType, default: Any = None) -> Any:
        packed = super().get(key, _MISSING)
        return default if packed is _MISSING else self._unpack(packed)

    def pop(self, key: DynamoType, default: Any = _MISSING) -> Any:
        packed = super().pop(key, _MISSING)
        _written()
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
        copy = PackedItems(self.hash_attr, self.range_attr, self.index_attrs)
        dict.update(copy, dict(dict.items(self)))
        return copy

    def marked(self, wanted: str, key_attrs: tuple[str, ...]) -> list[Item]:
        """The items whose index marks include ``wanted``, as :class:`KeyItem` of ``key_attrs``."""
        return [KeyItem(self, p[0], key_attrs, p[2]) for p in list(super().values()) if wanted in p[1]]

    def _unpack(self, packed: tuple[bytes, tuple[str, ...], int]) -> Item:
        return self.unpack(packed[0])

    def unpack(self, packed: bytes, only: Iterable[str] | None = None) -> Item:
        """The packed item as moto's ``Item``; with ``only``, just those of its attributes."""
        attrs = json.loads(zlib.decompress(packed))
        if only is not None:
            attrs = {name: attrs[name] for name in only if name in attrs}
        return build_item(self.hash_attr, self.range_attr, attrs)


class KeyItem(Item):
    """An item with only its key attributes (the table's and its indexes'), standing for the whole item.

    What moto needs of every item an index Query matches (to sort them, skip to the page's start
    and compare the range key) is in the keys; the page's own items are then copied
    (``copy.deepcopy``) before moto projects and filters them, and the copy of a key item is the
    whole item, unpacked. ``size()`` is the whole item's, so pages end where they did (1 MB).
    A key item is a fifth of an unpacked trace item: a report's query of one day at 10,000 objects
    (100,000 items) held 500 MB of them unpacked in moto.
    """

    def __init__(self, partition: PackedItems, packed: bytes, key_attrs: Iterable[str], size: int) -> None:
        keys = partition.unpack(packed, only=key_attrs)
        self.hash_key, self.range_key, self.attrs = keys.hash_key, keys.range_key, keys.attrs
        self._size = size
        self._whole = (partition, packed)

    def size(self) -> int:
        return self._size

    def __deepcopy__(self, memo: dict[int, Any]) -> Item:
        partition, packed = self._whole
        return partition.unpack(packed)


def _written() -> None:
    """An item changed: the cached index answer is stale (and its memory goes back at once)."""
    global _last_marked, _last_sorted, _version
    _version += 1
    _last_marked = _last_sorted = None


def mark(attr: str, value: DynamoType) -> str:
    """``attr`` having string ``value``, as one interned string (items of a job or worker share it).

    Strings only: a number has several spellings of one value (``1``, ``1.0``) that a Query matches.
    """
    return sys.intern(f"{attr}\x00{value.type}\x00{value.value!r}")


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
    Table.sorted_items = _sorted_already(Table.sorted_items)  # type: ignore[method-assign]
    BaseJSONSerializer._serialize_type_structure = _attribute_values_as_they_are(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_type_structure
    )
    Item.project = _projected_once(Item.project)  # type: ignore[method-assign,assignment]


_LIST_INDEX = re.compile(r".+\[\d+\]$")  # a path part that names a list element: ``marks[2]``


def _projected_once(project: Callable[[Item, list[list[str]]], Item]) -> Callable[[Item, list[list[str]]], Item]:
    """``Item.project`` that picks top-level attributes as they are; other paths go to moto's own.

    moto projects an item by turning the whole item into Python values once per projected path
    (``to_regular_json`` inside the loop) and serialising the result back: a report's query of 25
    attributes from 30-attribute items spent 60% of the DynamoDB process there (8,000 items: 7 s).
    A path of one attribute name takes that attribute's value as stored, as moto's GetItem without a
    projection answers it (the round trip respelled numbers, ``007`` as ``7``, and reordered sets);
    paths into maps or lists (``a.b``, ``a[0]``) keep moto's way.
    """

    @functools.wraps(project)
    def projected(item: Item, projection_expressions: list[list[str]]) -> Item:
        if not all(len(path) == 1 and not _LIST_INDEX.match(path[0]) for path in projection_expressions):
            return project(item, projection_expressions)
        out = cast(Item, Item.__new__(Item))  # a part of a valid item: moto's size check would pass
        out.hash_key, out.range_key = item.hash_key, item.range_key
        out.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        for path in projection_expressions:
            if (value := item.attrs.get(path[0])) is not None:
                dict.__setitem__(out.attrs, path[0], DynamoType(value))
        return out

    return projected


def _attribute_values_as_they_are(serialize: Callable[..., None]) -> Callable[..., None]:
    """moto's JSON serializer, writing a DynamoDB attribute value as it stands (binary in base64).

    moto writes a response by walking the operation's output shape member by member; an
    attribute value is a structure of ten possible members (S, N, B, M, L, ...), each looked up
    under several aliases: 1.5-2 ms per 30-attribute item, most of moto's time in a Query
    answering with items (a report's one-day query at 10,000 objects: some 200 s). moto has
    already turned the value into its wire shape (``dynamo_to_dict``) but for binary, which is
    base64-encoded here as the serializer would.
    """

    @functools.wraps(serialize)
    def serialize_structure(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue" and "NULL" in shape.members and isinstance(value, dict):
            serialized[self.get_serialized_name(shape, key)] = _wire(value)
        else:
            serialize(self, serialized, value, shape, key)

    return serialize_structure


def _wire(value: dict[str, Any]) -> dict[str, Any]:
    """One attribute value of ``dynamo_to_dict`` as DynamoDB JSON on the wire."""
    [(kind, inner)] = value.items()
    if kind == "B":
        return {kind: _base64(inner)}
    if kind == "BS":
        return {kind: [_base64(b) for b in inner]}
    if kind == "M":
        return {kind: {k: _wire(v) for k, v in inner.items()}}
    if kind == "L":
        return {kind: [_wire(v) for v in inner]}
    if kind in ("S", "N"):
        return {kind: str(inner)}
    if kind in ("SS", "NS"):
        return {kind: [str(v) for v in inner]}
    return {kind: inner}  # BOOL, NULL


def _base64(value: bytes | str) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def _packing_init(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def packing_init(table: Table, *args: Any, **kwargs: Any) -> None:
        init(table, *args, **kwargs)
        if table.range_key_attr is not None:
            index_attrs = tuple(
                hashes[0]
                for index in table.all_indexes()
                if len(hashes := [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]) == 1
            )
            table.items = defaultdict(
                functools.partial(PackedItems, table.hash_key_attr, table.range_key_attr, index_attrs)
            )
            setattr(table, _INDEX_ATTRS, index_attrs)  # what every partition marks

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
    """``Query`` that unpacks only the items it can answer with, not the whole table.

    moto answers every Query by listing and sorting all the table's items (``all_items``), then
    keeping the ones with the queried hash key: at 10,000 objects that is 100,000 items per Query
    (and per page of its answer), each one unpacked. While the wrapped Query runs, ``all_items``
    gives it the queried partition only (a Query on the table's key, in the same order) or the
    items marked with the index's hash key value as :class:`KeyItem` (a Query on an index), and
    for an index with a range key read forwards only the page's window of them (:class:`_InOrder`);
    scans still see every item.
    """
    signature = inspect.signature(query)

    def run(table: Table, items: list[Item], order: tuple[str, ...] | None, *args: Any, **kwargs: Any) -> Any:
        _QUERIED.partition = (table, items, order)
        try:
            return query(table, *args, **kwargs)
        finally:
            _QUERIED.partition = None

    @functools.wraps(query)
    def partition_query(table: Table, *args: Any, **kwargs: Any) -> Any:
        called = signature.bind(table, *args, **kwargs).arguments
        hash_key, index_name = called.get("hash_key"), called.get("index_name")
        if hash_key is None or table.range_key_attr is None:
            return query(table, *args, **kwargs)
        if not index_name:
            partition = table.items.get(hash_key)
            return run(table, sorted(partition.values(), key=_range_key) if partition else [], None, *args, **kwargs)
        schema = table.get_index(index_name).schema
        hashes = [k["AttributeName"] for k in schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
        if (
            len(hashes) != 1
            or hash_key.type != "S"
            or hashes[0] not in getattr(table, _INDEX_ATTRS, ())
            or called.get("filter_kwargs")  # a legacy QueryFilter reads any attribute of every match
        ):
            return query(table, *args, **kwargs)
        found = _marked(table, mark(hashes[0], hash_key))
        if len(ranges) != 1:
            return run(table, found, None, *args, **kwargs)
        sort_ranges: list[str | None] = [ranges[0], table.range_key_attr]
        order = tuple(table._generate_attr_to_sort_by([hashes[0], table.hash_key_attr], sort_ranges))
        answer = _in_order(found, order)
        if called.get("scan_index_forward") is False:
            return run(table, answer.items, order, *args, **kwargs)
        start = answer.start(called, ranges[0])
        end = answer.window_end(start, called.get("limit"))
        result = run(table, answer.items[start:end], order, *args, **kwargs)
        if end < len(answer.items) and result[2] is None:  # the window ran out before the page filled
            result = run(table, answer.items[start:], order, *args, **kwargs)
        return result

    return partition_query


# Key conditions whose every match sorts at or after their first value.
_FROM_FIRST_VALUE = frozenset({"EQ", "=", "GE", ">=", "GT", ">", "BETWEEN", "BEGINS_WITH"})


class _InOrder:
    """A cached index answer sorted as moto sorts it, and the items' sizes.

    moto sorts every item an index Query matches for each page of its answer, walks from the first
    to the page's start key, then fills the page (1 MB): a report's query of one day at 10,000
    objects (100,000 items, 50 pages) sorted 100,000 items 50 times and walked 2.5 million of them
    (331 s). Sorted here once per cached answer. A page (read forwards) is then given only its
    window: from its start key (or the first item its key condition can match) to where the page
    must be full by size and count, so that moto ends the page inside the window exactly as it
    would with every item; if it does not (its key condition stopped matching), the Query runs
    again with everything after the start. Items lacking a key it sorts by are left out, as moto
    leaves out an item without the index's range key.
    """

    __slots__ = ("ends", "items", "order")

    def __init__(self, found: list[Item], order: tuple[str, ...]) -> None:
        self.order = order
        self.items = sorted((i for i in found if all(a in i.attrs for a in order)), key=self.key)
        self.ends = list(itertools.accumulate(i.size() for i in self.items))  # size up to and with each item

    def key(self, item: Item) -> tuple[DynamoType, ...]:
        """What moto sorts an item by, and compares it with a start key by."""
        return tuple(item.attrs[a] for a in self.order)

    def start(self, called: dict[str, Any], range_attr: str) -> int:
        """The first item a forward page can answer with: its start key, else its key condition's first value."""
        first = 0
        comparison, values = called.get("range_comparison"), called.get("range_objs") or []
        conditions = called.get("range_key_conditions") or []
        if comparison in _FROM_FIRST_VALUE and values and (not conditions or conditions[-1][0] == range_attr):
            first = bisect.bisect_left(self.items, values[0], key=lambda i: i.attrs[range_attr])
        start_key = called.get("exclusive_start_key")
        if start_key and all(a in start_key for a in self.order):
            # moto walks past every item up to the start key's values (its item may have moved or
            # gone since the last page): the first item not below them is where that walk ends.
            after = tuple(DynamoType(start_key[a]) for a in self.order)
            first = max(first, bisect.bisect_left(self.items, after, key=self.key))
        return first

    def window_end(self, start: int, limit: int | None) -> int:
        """Where a page starting at ``start`` has passed moto's size limit or its item limit.

        Two items more than the page holds: the start key's own item, which moto walks past, and
        the one that no longer fits, at which moto ends the page.
        """
        before = self.ends[start] if start < len(self.ends) else 0
        end = bisect.bisect_right(self.ends, before + RESULT_SIZE_LIMIT) + 1
        if limit:
            end = min(end, start + limit + 2)
        return min(end, len(self.items))


def _in_order(found: list[Item], order: tuple[str, ...]) -> _InOrder:
    """``found`` (a cached index answer) in moto's order by ``order``; kept with the cache."""
    global _last_sorted
    cached, marked = _last_sorted, _last_marked
    if cached is not None and cached[0] is found and cached[1].order == order:
        return cached[1]
    answer = _InOrder(found, order)
    if marked is not None and marked[3] is found:  # still the cached answer: keep its order too
        _last_sorted = (found, answer)
    return answer


def _sorted_already(sort: Callable[..., list[Item]]) -> Callable[..., list[Item]]:
    """``Table.sorted_items`` that leaves a Query's items as they are when :func:`_in_order` sorted them so."""

    @functools.wraps(sort)
    def sorted_items(
        table: Table, hash_key_attrs: list[str], range_key_attrs: list[Any], items: list[Item]
    ) -> list[Item]:
        queried = getattr(_QUERIED, "partition", None)
        if (
            queried is not None
            and queried[0] is table
            and queried[2] is not None
            and tuple(table._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)) == queried[2]
        ):
            return items  # kept in order: moto's filter keeps the order it is given
        return sort(table, hash_key_attrs, range_key_attrs, items)

    return sorted_items


def _marked(table: Table, wanted: str) -> list[Item]:
    """The items marked ``wanted`` as key items; the same list again for the next pages of that Query.

    moto answers each page of an index Query by collecting and sorting every matching item, then
    skipping to the page's start: a report's query of one day at 10,000 objects (100,000 items,
    50 pages) unpacked the day's items 50 times. Kept until the next write, as moto's own items
    were kept for good.
    """
    global _last_marked, _last_sorted
    cached, version = _last_marked, _version
    # The table's key and every index's key, as they are now (an index may have been added since).
    keys = [
        table.hash_key_attr,
        table.range_key_attr,
        *(k["AttributeName"] for i in table.all_indexes() for k in i.schema),
    ]
    key_attrs = tuple(dict.fromkeys(a for a in keys if a))
    if cached is not None and cached[:3] == (table, wanted, key_attrs) and cached[4] == version:
        return cached[3]
    found = [i for p in list(table.items.values()) if isinstance(p, PackedItems) for i in p.marked(wanted, key_attrs)]
    if _version == version:  # no write meanwhile (one that lands just after leaves a stale version)
        _last_marked, _last_sorted = (table, wanted, key_attrs, found, version), None  # the old order goes too
    return found


def _range_key(item: Item) -> Any:
    return item.range_key


def _queried_items(all_items: Callable[[Table], list[Item]]) -> Callable[[Table], Iterable[Item]]:
    @functools.wraps(all_items)
    def queried_items(table: Table) -> Iterable[Item]:
        queried = getattr(_QUERIED, "partition", None)
        if queried is not None and queried[0] is table:
            return list(queried[1])
        if table.range_key_attr is not None and all(isinstance(p, PackedItems) for p in list(table.items.values())):
            return _in_key_order(table)
        return all_items(table)

    return queried_items


def _in_key_order(table: Table) -> Iterator[Item]:
    """Every item of a packed table in moto's order (hash key, range key), unpacked one at a time.

    A Scan reads a page (1 MB) and stops: it never holds the whole table unpacked.
    """
    for hash_key in sorted(list(table.items)):
        partition = table.items.get(hash_key)
        for range_key in sorted(list(dict.keys(partition or {}))):
            item = partition.get(range_key) if partition is not None else None
            if item is not None:
                yield item
