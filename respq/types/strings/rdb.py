"""A string's RDB object (DUMP/RESTORE): RDB_TYPE_STRING and the value as rdbSaveRawString writes it."""

from __future__ import annotations

from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.strings.model import STRING, StringValue


class StringCodec:
    type_name = STRING.name
    rdb_types = frozenset({rdb.TYPE_STRING})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, StringValue)
        return bytes((rdb.TYPE_STRING,)) + rdb.string(value.data, compress=limits.compress)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> bytes:
        return reader.string()

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, StringValue)
        value.set(parsed)


CODEC = StringCodec()
