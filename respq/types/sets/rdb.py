"""A set's RDB object (DUMP/RESTORE): SET_INTSET while an intset, SET (member strings) once a hashtable. The
restored encoding follows set-max-intset-entries and the members, as Redis converts a set it loads."""

from __future__ import annotations

from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.sets.model import SET, SetValue


class SetCodec:
    type_name = SET.name
    rdb_types = frozenset({rdb.TYPE_SET, rdb.TYPE_SET_INTSET})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, SetValue)
        if not value.hashtable:
            blob = rdb.intset([int(member) for member in value])
            return bytes((rdb.TYPE_SET_INTSET,)) + rdb.string(blob, compress=limits.compress)
        out = bytearray((rdb.TYPE_SET,))
        out += rdb.length(len(value))
        for member in value:
            out += rdb.string(member, compress=limits.compress)
        return bytes(out)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> list[bytes]:
        if rdb_type == rdb.TYPE_SET:
            members = [reader.string() for _ in range(reader.length())]
            if len(set(members)) != len(members):
                raise rdb.FormatError("a set member twice")  # an intset's duplicates pass, as without deep checks
        else:
            members = [b"%d" % number for number in rdb.intset_items(reader.string())]
        if not members:
            raise rdb.FormatError("empty set")
        return members

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, SetValue)
        value.add_many(parsed, limits.set_max_intset_entries)


CODEC = SetCodec()
