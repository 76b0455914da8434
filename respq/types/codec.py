"""DUMP/RESTORE's payload of a value, one codec per type (``respq/types/<type>/rdb.py``), registered in
``respq.types.RDB_CODECS``: the command layer asks the codec of a value's type for its RDB object, and the codec
that claims a payload's RDB type byte for its contents. No switch over types outside ``respq/types``.

A codec's ``parse`` reads and checks the whole object before anything changes (RESTORE of a malformed payload
changes nothing); ``fill`` then writes what it parsed into a new, empty value of its type, inside the caller's
atomic block, choosing the encoding as Redis does when it loads (by the configured limits, not the payload's form).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from respq.storage.port import Value


@dataclass(frozen=True, slots=True)
class Limits:
    """The directives a payload's form and a restored value's encoding depend on (rdbcompression, the
    list/hash/set/zset encoding limits)."""

    compress: bool = True
    list_max_listpack_size: int = -2
    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Limits:
        """From a configuration's ``values`` (directive name -> value)."""
        return cls(
            bool(values["rdbcompression"]),
            values["list-max-listpack-size"],
            values["hash-max-listpack-entries"],
            values["hash-max-listpack-value"],
            values["set-max-intset-entries"],
            values["zset-max-listpack-entries"],
            values["zset-max-listpack-value"],
        )


class Codec(Protocol):
    type_name: str  # the ValueType's name
    rdb_types: frozenset[int]  # the RDB object type bytes it parses

    def dump(self, value: Value, limits: Limits) -> bytes:
        """The RDB object: type byte, then body, as Redis 7.0.15 writes it for the value's encoding."""

    def parse(self, rdb_type: int, reader: Any) -> Any:
        """The contents of an object of ``rdb_type`` read from ``reader`` (a ``respq.rdb.Reader`` past the type
        byte); ``respq.rdb.FormatError`` if malformed or empty."""

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        """Writes ``parse``'s result into ``value``, new and empty, of this codec's type."""


class CodecTable:
    """The codecs by type name and by RDB type byte; refuses, at import, a type byte two codecs claim."""

    def __init__(self, codecs: Iterable[Codec]) -> None:
        self.by_name: dict[str, Codec] = {}
        self.by_rdb_type: dict[int, Codec] = {}
        for codec in codecs:
            self.by_name[codec.type_name] = codec
            for code in codec.rdb_types:
                other = self.by_rdb_type.get(code)
                if other is not None:
                    raise ValueError(f"RDB type {code} claimed by {codec.type_name} and {other.type_name}")
                self.by_rdb_type[code] = codec
