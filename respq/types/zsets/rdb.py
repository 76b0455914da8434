"""A sorted set's RDB object (DUMP/RESTORE): ZSET_LISTPACK (member, score, ... in order; scores as d2string
prints them) while a listpack, ZSET_2 (member strings and binary doubles, highest score first) once a skiplist;
RESTORE also reads ZSET (scores as text) and ZSET_ZIPLIST of older dumps. The restored encoding follows the
configured limits, as Redis converts a sorted set it loads."""

from __future__ import annotations

import math
from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.zsets.model import ZSET, ZSetValue, format_score

_EXACT_INT = 4503599627370496.0  # 2**52: below it d2string prints a whole score as an integer


def _score_text(score: float) -> bytes:
    """d2string (7.0): whole scores inside +-2**52 as integers, others as %.17g."""
    if -_EXACT_INT < score < _EXACT_INT and score == int(score):
        return b"%d" % int(score)
    return format_score(score)


class ZSetCodec:
    type_name = ZSET.name
    rdb_types = frozenset({rdb.TYPE_ZSET, rdb.TYPE_ZSET_2, rdb.TYPE_ZSET_ZIPLIST, rdb.TYPE_ZSET_LISTPACK})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, ZSetValue)
        pairs = value.by_rank(0, len(value))
        if not value.skiplist:
            flat = [item for score, member in pairs for item in (member, _score_text(score))]
            return bytes((rdb.TYPE_ZSET_LISTPACK,)) + rdb.string(rdb.listpack(flat), compress=limits.compress)
        out = bytearray((rdb.TYPE_ZSET_2,))
        out += rdb.length(len(pairs))
        for score, member in reversed(pairs):  # from the skiplist's tail, as rdbSaveObject walks it
            out += rdb.string(member, compress=limits.compress)
            out += rdb.binary_double(score)
        return bytes(out)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> list[tuple[bytes, float]]:
        if rdb_type in (rdb.TYPE_ZSET, rdb.TYPE_ZSET_2):
            read_score = reader.binary_double if rdb_type == rdb.TYPE_ZSET_2 else reader.string_double
            pairs = []
            for _ in range(reader.length()):
                member = reader.string()
                pairs.append((member, read_score()))
            if len({member for member, _ in pairs}) != len(pairs):
                raise rdb.FormatError("a member twice")  # a listpack's duplicates pass, as without deep checks
        else:
            blob = reader.string()
            items = rdb.listpack_items(blob) if rdb_type == rdb.TYPE_ZSET_LISTPACK else rdb.ziplist_items(blob)
            if len(items) % 2:
                raise rdb.FormatError("a member without its score")
            pairs = []
            for member, score in zip(items[::2], items[1::2], strict=True):
                try:
                    pairs.append((rdb.as_bytes(member), float(rdb.as_bytes(score))))
                except ValueError:
                    raise rdb.FormatError("bad score") from None
        if not pairs or any(math.isnan(score) for _, score in pairs):
            raise rdb.FormatError("empty sorted set or a NaN score")
        return pairs

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, ZSetValue)
        value.set_scores(parsed, limits.zset_max_listpack_entries, limits.zset_max_listpack_value)


CODEC = ZSetCodec()
