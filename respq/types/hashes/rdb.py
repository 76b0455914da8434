"""A hash's RDB object (DUMP/RESTORE): HASH_LISTPACK while a listpack, HASH (field and value strings) once a
hashtable; RESTORE also reads HASH_ZIPLIST and HASH_ZIPMAP of older dumps. The restored encoding follows the
configured limits, as Redis converts a hash it loads."""

from __future__ import annotations

import itertools
from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.hashes.model import HASH, HashValue


class HashCodec:
    type_name = HASH.name
    rdb_types = frozenset({rdb.TYPE_HASH, rdb.TYPE_HASH_ZIPMAP, rdb.TYPE_HASH_ZIPLIST, rdb.TYPE_HASH_LISTPACK})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, HashValue)
        flat = list(itertools.chain.from_iterable(value.items()))
        if not value.hashtable:
            return bytes((rdb.TYPE_HASH_LISTPACK,)) + rdb.string(rdb.listpack(flat), compress=limits.compress)
        out = bytearray((rdb.TYPE_HASH,))
        out += rdb.length(len(value))
        for item in flat:
            out += rdb.string(item, compress=limits.compress)
        return bytes(out)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> list[bytes]:
        if rdb_type == rdb.TYPE_HASH:
            flat = [reader.string() for _ in range(2 * reader.length())]
            if len(set(flat[::2])) * 2 != len(flat):
                raise rdb.FormatError("a hash field twice")  # a listpack's duplicates pass, as without deep checks
        elif rdb_type == rdb.TYPE_HASH_ZIPMAP:
            flat = rdb.zipmap_items(reader.string())
        else:
            blob = reader.string()
            items = rdb.listpack_items(blob) if rdb_type == rdb.TYPE_HASH_LISTPACK else rdb.ziplist_items(blob)
            flat = [rdb.as_bytes(item) for item in items]
        if not flat or len(flat) % 2:
            raise rdb.FormatError("empty hash, or a field without its value")
        return flat

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, HashValue)
        value.set_many(parsed, limits.hash_max_listpack_entries, limits.hash_max_listpack_value)


CODEC = HashCodec()
