"""A stream's RDB object (DUMP/RESTORE): STREAM_LISTPACKS_2, as Redis 7.0.15 writes it. Its listpacks are cut
where respq's stream records Redis would cut them (``StreamLog.listpacks``), each with its master entry and the
entries delta-encoded against it; then length, last, first and max-deleted IDs, entries added, and each group
(name order) with its last ID, entries read, PEL (delivery time and count) and consumers (name order, seen time,
their pending IDs). Deleted entries are not kept by respq: a listpack that had some is written with its live
entries only. RESTORE also reads STREAM_LISTPACKS (6.x), whose missing counters are derived as 7.0 derives them.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

from respq import rdb
from respq.storage.port import Value
from respq.types.codec import Limits
from respq.types.streams.model import STREAM, StreamLog, id_of, split_id

_FLAG_DELETED = 1
_FLAG_SAMEFIELDS = 2
_RAW_ID = struct.Struct(">QQ")
_U64 = 1 << 64
_BATCH = 1024  # entries added per write


def _raw_id(stream_id: int) -> bytes:
    return _RAW_ID.pack(*split_id(stream_id))


def _signed(number: int) -> int:
    """A length field holding a C long long (entries read: -1 is "unknown")."""
    return number - _U64 if number >= 1 << 63 else number


def _listpack_of(master: int, fields_of_master: tuple[bytes, ...], entries: list[tuple[int, list[bytes]]]) -> bytes:
    master_ms, master_seq = split_id(master)
    items: list[bytes | int] = [len(entries), 0, len(fields_of_master), *fields_of_master, 0]
    for stream_id, flat in entries:
        names = tuple(flat[::2])
        ms, seq = split_id(stream_id)
        same = names == fields_of_master
        items += [_FLAG_SAMEFIELDS if same else 0, ms - master_ms, seq - master_seq]
        if same:
            items += flat[1::2]
            items.append(len(names) + 3)
        else:
            items.append(len(names))
            items += flat
            items.append(2 * len(names) + 4)
    return rdb.listpack(items)


@dataclass
class _Consumer:
    name: bytes
    seen: int
    pending: list[int]


@dataclass
class _Group:
    name: bytes
    last_id: int
    entries_read: int | None  # None: a 6.x payload, estimated once the entries are in
    pel: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> delivery time, count
    consumers: list[_Consumer] = field(default_factory=list)


@dataclass
class _Stream:
    entries: list[tuple[int, list[bytes]]]
    last_id: int
    entries_added: int | None
    max_deleted_id: int
    groups: list[_Group]


class StreamCodec:
    type_name = STREAM.name
    rdb_types = frozenset({rdb.TYPE_STREAM_LISTPACKS, rdb.TYPE_STREAM_LISTPACKS_2})

    def dump(self, value: Value, limits: Limits) -> bytes:
        assert isinstance(value, StreamLog)
        compress = limits.compress
        body = bytearray()
        count = 0
        for first, last, live, _total, _size, names in value.listpacks():
            if not live:
                continue  # Redis drops a listpack when its last live entry goes
            entries = value.range(first, last)
            if not entries:
                continue
            master = names if names is not None else tuple(entries[0][1][::2])
            body += rdb.string(_raw_id(first), compress=compress)
            body += rdb.string(_listpack_of(first, master, entries), compress=compress)
            count += 1
        out = bytearray((rdb.TYPE_STREAM_LISTPACKS_2,))
        out += rdb.length(count)
        out += body
        out += rdb.length(value.length)
        for stream_id in (value.last_id, value.first_id, value.max_deleted_id):
            out += b"".join(map(rdb.length, split_id(stream_id)))
        out += rdb.length(value.entries_added)
        groups = sorted(value.groups.items())
        out += rdb.length(len(groups))
        for name, group in groups:
            out += rdb.string(name, compress=compress)
            out += b"".join(map(rdb.length, split_id(group.last_id)))
            out += rdb.length(group.entries_read % _U64)
            pending = list(group.iter_pending())
            out += rdb.length(len(pending))
            for entry in pending:
                out += _raw_id(entry.id) + rdb.millis(entry.delivered) + rdb.length(entry.count)
            consumers = sorted(group.consumers.items())
            out += rdb.length(len(consumers))
            for consumer_name, consumer in consumers:
                out += rdb.string(consumer_name, compress=compress)
                out += rdb.millis(consumer.seen)
                out += rdb.length(len(consumer.pel))
                out += b"".join(_raw_id(stream_id) for stream_id in consumer.pel)
        return bytes(out)

    def parse(self, rdb_type: int, reader: rdb.Reader) -> _Stream:
        entries: list[tuple[int, list[bytes]]] = []
        masters: set[int] = set()
        for _ in range(reader.length()):
            key = reader.string()
            if len(key) != _RAW_ID.size:
                raise rdb.FormatError("a listpack key is not a stream ID")
            master = id_of(*_RAW_ID.unpack(key))
            if master in masters:
                raise rdb.FormatError("a listpack key twice")
            masters.add(master)
            items = rdb.listpack_items(reader.string())
            if not items:
                raise rdb.FormatError("empty listpack inside stream")
            entries += _entries(master, items)
        entries.sort(key=lambda entry: entry[0])
        if any(a[0] == b[0] for a, b in itertools.pairwise(entries)):
            raise rdb.FormatError("an entry ID twice")
        reader.length()  # the entry count: respq counts the entries it adds
        last_id = id_of(reader.length(), reader.length())
        entries_added: int | None = None
        max_deleted_id = 0
        if rdb_type == rdb.TYPE_STREAM_LISTPACKS_2:
            reader.length(), reader.length()  # the first entry's ID: respq's is its first live entry
            max_deleted_id = id_of(reader.length(), reader.length())
            entries_added = reader.length()
        if entries and entries[-1][0] > last_id:
            raise rdb.FormatError("an entry past the last ID")
        groups: list[_Group] = []
        names: set[bytes] = set()
        for _ in range(reader.length()):
            group = _Group(reader.string(), id_of(reader.length(), reader.length()), None)
            if rdb_type == rdb.TYPE_STREAM_LISTPACKS_2:
                group.entries_read = _signed(reader.length())
            if group.name in names:
                raise rdb.FormatError("a group twice")
            names.add(group.name)
            for _ in range(reader.length()):
                stream_id = id_of(*_RAW_ID.unpack(reader.take(_RAW_ID.size)))
                if stream_id in group.pel:
                    raise rdb.FormatError("a pending entry twice")
                group.pel[stream_id] = (reader.millis(), reader.length())
            owned: set[int] = set()
            consumer_names: set[bytes] = set()
            for _ in range(reader.length()):
                consumer = _Consumer(reader.string(), reader.millis(), [])
                if consumer.name in consumer_names:
                    raise rdb.FormatError("a consumer twice")
                consumer_names.add(consumer.name)
                for _ in range(reader.length()):
                    stream_id = id_of(*_RAW_ID.unpack(reader.take(_RAW_ID.size)))
                    if stream_id not in group.pel or stream_id in owned:
                        raise rdb.FormatError("a consumer's pending entry not in its group's PEL, or owned twice")
                    owned.add(stream_id)
                    consumer.pending.append(stream_id)
                group.consumers.append(consumer)
            if len(owned) != len(group.pel):
                # Redis keeps such an entry without an owner unless it checks deeply; respq's PEL needs one.
                raise rdb.FormatError("a pending entry no consumer owns")
            groups.append(group)
        return _Stream(entries, last_id, entries_added, max_deleted_id, groups)

    def fill(self, value: Value, parsed: Any, limits: Limits) -> None:
        assert isinstance(value, StreamLog)
        stream: _Stream = parsed
        entries = stream.entries
        for start in range(0, len(entries), _BATCH):
            batch = entries[start : start + _BATCH]
            ids = [stream_id for stream_id, _ in batch]
            fields = [flat for _, flat in batch]
            added = 0
            while added < len(batch):  # add_many stops early only on a storage error, which the next call raises
                added += value.add_many(ids[added:], fields[added:])
        entries_added = stream.entries_added if stream.entries_added is not None else value.length
        if (stream.last_id, entries_added, stream.max_deleted_id) != (
            value.last_id, value.entries_added, value.max_deleted_id
        ):
            value.set_id(stream.last_id, entries_added, stream.max_deleted_id)
        for parsed_group in stream.groups:
            entries_read = parsed_group.entries_read
            if entries_read is None:
                entries_read = value.estimate_entries_read(parsed_group.last_id)
            group = value.set_group(parsed_group.name, parsed_group.last_id, entries_read)
            for parsed_consumer in parsed_group.consumers:
                consumer, _ = value.create_consumer(group, parsed_consumer.name, parsed_consumer.seen)
                items = [(stream_id, *parsed_group.pel[stream_id]) for stream_id in parsed_consumer.pending]
                value.set_pending(group, consumer, items)


CODEC = StreamCodec()


def _entries(master: int, items: list[bytes | int]) -> list[tuple[int, list[bytes]]]:
    """The live entries of one stream listpack (Redis's layout: master entry, then each entry and its lp-count)."""
    try:
        live, deleted, count = items[0], items[1], items[2]
        if not all(type(n) is int and n >= 0 for n in (live, deleted, count)):
            raise rdb.FormatError("bad master entry")
        master_fields = [rdb.as_bytes(item) for item in items[3 : 3 + count]]  # type: ignore[operator]
        pos = 3 + count  # type: ignore[operator]
        if items[pos] != 0:
            raise rdb.FormatError("master entry not terminated")
        pos += 1
        master_ms, master_seq = split_id(master)
        out: list[tuple[int, list[bytes]]] = []
        while pos < len(items):
            flags, ms_diff, seq_diff = items[pos], items[pos + 1], items[pos + 2]
            if not all(type(n) is int for n in (flags, ms_diff, seq_diff)):
                raise rdb.FormatError("bad entry header")
            pos += 3
            if flags & _FLAG_SAMEFIELDS:  # type: ignore[operator]
                values = [rdb.as_bytes(item) for item in items[pos : pos + len(master_fields)]]
                pos += len(master_fields)
                flat = [item for pair in zip(master_fields, values, strict=True) for item in pair]
            else:
                n = items[pos]
                if type(n) is not int or n < 0:
                    raise rdb.FormatError("bad field count")
                flat = [rdb.as_bytes(item) for item in items[pos + 1 : pos + 1 + 2 * n]]
                if len(flat) != 2 * n:
                    raise rdb.FormatError("entry cut short")
                pos += 1 + 2 * n
            if type(items[pos]) is not int:
                raise rdb.FormatError("bad lp-count")
            pos += 1
            ms = (master_ms + ms_diff) % _U64  # type: ignore[operator]
            seq = (master_seq + seq_diff) % _U64  # type: ignore[operator]
            if not flags & _FLAG_DELETED:  # type: ignore[operator]
                out.append((id_of(ms, seq), flat))
        return out
    except (IndexError, ValueError) as error:
        if isinstance(error, rdb.FormatError):
            raise
        raise rdb.FormatError("stream listpack cut short") from None
