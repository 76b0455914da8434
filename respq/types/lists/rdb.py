"""A list's RDB object (DUMP/RESTORE): LIST_QUICKLIST_2, its nodes listpacks cut where Redis's quicklist cuts
them when RPUSH builds the list under list-max-listpack-size (a value of packed_threshold, 1 GiB, or more gets a
plain node of its own). RESTORE also reads LIST_QUICKLIST (ziplist nodes), LIST_ZIPLIST and LIST of older dumps,
and fills the list node by node: a large list never becomes one Python list of all its values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.lists.model import LIST, RIGHT, ListLog

_PACKED = 2  # QUICKLIST_NODE_CONTAINER_PACKED
_PLAIN = 1
_PLAIN_SIZE = 1 << 30  # packed_threshold: values this long get a plain node
_SIZE_ESTIMATE_OVERHEAD = 8
_SIZE_SAFETY_LIMIT = 8192
_OPTIMIZATION_LEVEL = (4096, 8192, 16384, 32768, 65536)
_BATCH = 1024  # values pushed per write when a payload's node holds more


def _allow_insert(node_bytes: int, count: int, fill: int, size: int) -> bool:
    """_quicklistNodeAllowInsert of a packed node of ``node_bytes`` bytes and ``count`` values."""
    new_size = node_bytes + size + _SIZE_ESTIMATE_OVERHEAD
    if fill < 0 and -fill - 1 < len(_OPTIMIZATION_LEVEL) and new_size <= _OPTIMIZATION_LEVEL[-fill - 1]:
        return True
    if new_size > _SIZE_SAFETY_LIMIT:
        return False
    return count < fill


def nodes(values: Iterable[bytes], fill: int) -> Iterator[tuple[int, bytes]]:
    """(container, blob) of each quicklist node RPUSH of ``values`` makes: a listpack, or a plain value."""
    entries: list[bytes] = []
    node_bytes = 0
    for value in values:
        size = len(value)
        if size >= _PLAIN_SIZE:
            if entries:
                yield _PACKED, _listpack(entries, node_bytes)
                entries, node_bytes = [], 0
            yield _PLAIN, value
            continue
        if entries and _allow_insert(node_bytes, len(entries), fill, size):
            entry = rdb.lp_entry(value)
            entries.append(entry)
            node_bytes += len(entry)
            continue
        if entries:
            yield _PACKED, _listpack(entries, node_bytes)
        entry = rdb.lp_entry(value)
        entries, node_bytes = [entry], rdb.LISTPACK_HEADER + 1 + len(entry)
    if entries:
        yield _PACKED, _listpack(entries, node_bytes)


def _listpack(entries: list[bytes], total: int) -> bytes:
    return total.to_bytes(4, "little") + min(len(entries), 65535).to_bytes(2, "little") + b"".join(entries) + b"\xff"


class ListCodec:
    type_name = LIST.name
    rdb_types = frozenset({rdb.TYPE_LIST, rdb.TYPE_LIST_ZIPLIST, rdb.TYPE_LIST_QUICKLIST, rdb.TYPE_LIST_QUICKLIST_2})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, ListLog)
        out = bytearray()
        count = 0
        for container, blob in nodes(value, limits.list_max_listpack_size):
            out += rdb.length(container)
            out += rdb.string(blob, compress=limits.compress)
            count += 1
        return bytes((rdb.TYPE_LIST_QUICKLIST_2,)) + rdb.length(count) + bytes(out)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> list[tuple[int, Any]]:
        """The nodes, checked, each as (kind, data) decoded again by ``fill`` one at a time: RDB_TYPE_LIST's values
        are one node; ziplist and listpack nodes stay their blobs."""
        parsed: list[tuple[int, Any]] = []
        total = 0
        if rdb_type == rdb.TYPE_LIST:
            values = [reader.string() for _ in range(reader.length())]
            parsed.append((rdb.TYPE_LIST, values))
            total = len(values)
        elif rdb_type == rdb.TYPE_LIST_ZIPLIST:
            blob = reader.string()
            total = len(rdb.ziplist_items(blob))
            parsed.append((rdb.TYPE_LIST_ZIPLIST, blob))
        else:
            for _ in range(reader.length()):
                if rdb_type == rdb.TYPE_LIST_QUICKLIST:
                    blob = reader.string()
                    count = len(rdb.ziplist_items(blob))
                    kind = rdb.TYPE_LIST_ZIPLIST
                else:
                    container = reader.length()
                    blob = reader.string()
                    if container == _PLAIN:
                        parsed.append((rdb.TYPE_LIST, [blob]))
                        total += 1
                        continue
                    if container != _PACKED:
                        raise rdb.FormatError("unknown quicklist container")
                    count = len(rdb.listpack_items(blob))
                    kind = rdb.TYPE_LIST_QUICKLIST_2
                if count:  # Redis skips an empty node
                    parsed.append((kind, blob))
                    total += count
        if not total:
            raise rdb.FormatError("empty list")
        return parsed

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, ListLog)
        for kind, data in parsed:
            if kind == rdb.TYPE_LIST:
                values = data
            else:
                items = rdb.listpack_items(data) if kind == rdb.TYPE_LIST_QUICKLIST_2 else rdb.ziplist_items(data)
                values = [rdb.as_bytes(item) for item in items]
            for start in range(0, len(values), _BATCH):
                value.push(RIGHT, values[start : start + _BATCH])


CODEC = ListCodec()
