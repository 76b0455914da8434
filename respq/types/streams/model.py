"""A stream stored as a sparse index of nodes over its segment files, with consumer groups kept as data.

Entries are records in the stream's own segment files, the only copy of them (the journal says where they are);
they are read back from disk whenever served. A record (``REC_STREAM_COMPACT``) holds a tag, the ID, and the
field/value strings each after its length as a varint. The first entry of a node carries its whole ID (tag
``FULL_ID``); the others its milliseconds as a distance from the node's first ID (tag = distance + 1) and its
sequence number, as varints: two bytes for an entry added within 127 ms of its node's first, as Redis's listpack
stores deltas from its master entry. Nodes written before that format (``REC_STREAM_ENTRY``: 16-byte ID, then
u32-length strings) are read as they are. The only per-entry memory is for entries
that are deleted but still inside a node, and for pending entries of consumer groups.

A node is a run of up to ``NODE_ENTRIES`` consecutive records of one segment file: the sparse index reads go by.
Apart from them, the stream keeps where Redis would cut its entries into listpack nodes of its radix tree, since
approximate trimming (``~``) removes whole listpacks and ``XINFO STREAM`` counts them: a compact array with, per
listpack, its first and last IDs, live and total entries and its size in Redis's listpack encoding (and a list of
its master field names). Redis starts a listpack when the last one holds ``stream-node-max-entries`` entries
(live or deleted) or when the next entry would take it to ``stream-node-max-bytes``, with the directives in force
at XADD time; one goes when its last live entry is deleted. Recovery decides again for each replayed entry, with
the same state and the directives the journal says were in force (the type's settings, ``OP_TYPE_SETTINGS``),
so the listpacks come back the same; checkpoints write the array.

IDs are Python ints: ``ms << 64 | seq``, so they compare and sort as stream IDs do.

Consumer-group state is journaled as data (upserts and removals of pending entries, group positions, consumer
creation), never as commands to replay, and the whole of it goes into each checkpoint.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence

from sortedcontainers import SortedList

from respq import speedups
from respq.storage import framing, journal
from respq.storage.errors import StorageError
from respq.storage.port import SegmentRecovery, StorePort, Value, ValueType
from respq.storage.segments import SegmentStore
from respq.types import memory

# Journal record types of streams: entries, and consumer-group state as the data it sets. Values are part of the
# on-disk format: never renumber. Each payload starts with the stream's queue id.
OP_XADD = 31  # an entry whole: journals of builds before entries were written once (replayed, never written)
OP_XDEL = 32
OP_XTRIM = 33
OP_XSETID = 34
OP_XGROUP = 35  # create a group or set its position
OP_XGROUP_DEL = 36
OP_XCONSUMER = 37
OP_XCONSUMER_DEL = 38
OP_XPEL = 39  # set owner, delivery time and count of pending entries
OP_XPEL_DEL = 41  # (40 is the manifest record type)
OP_XADD_AT = 42  # entries appended to the stream's segment file: where they are, not what they hold
OP_XPEL_RANGE = 43  # the live entries of an ID range became pending for a consumer (an XREADGROUP's batch)
OP_XPEL_DEL_RANGE = 44  # every pending entry of a group within an ID range was acknowledged

REC_STREAM_ENTRY = 2  # segment record: one stream entry, in nodes written before REC_STREAM_COMPACT
REC_STREAM_COMPACT = 3  # segment record: one stream entry, its ID relative to its node's first
# A compact record's tag: bit 0 set when the journal was not known clean as it was appended (NOTED: recovery may
# keep it only through an XADD_AT record); tag >> 1 is 0 when the whole ID follows (a node's first record), else
# the distance in milliseconds from the node's first ID, plus one.
NOTED = 1
NODE_COMPACT = 1 << 31  # in a dumped node's record count: its records are REC_STREAM_COMPACT
MALFORMED_ENTRY = "malformed stream entry"  # also the C twin's text
NODE_ENTRIES = 100  # records per node at most
STREAM_CODE = 2  # the stream type's code (StreamType.code): its settings are engine.settings[STREAM_CODE]
NODE_MAX_ENTRIES = 100  # Redis's stream-node-max-entries default
NODE_MAX_BYTES = 4096  # Redis's stream-node-max-bytes default
LISTPACK_MAX_SIZE = 1 << 30  # Redis's STREAM_LISTPACK_MAX_SIZE: the byte limit when the directive is 0 or above


def node_settings(max_entries: int, max_bytes: int) -> bytes:
    """The stream type's settings payload (Engine.set_type_settings) for stream-node-max-entries and
    stream-node-max-bytes: when an entry starts a new listpack (StreamLog._place). As in Redis, a byte limit of 0,
    or one above what a listpack may hold, means that much."""
    return SETTINGS.pack(max_entries, max_bytes if 0 < max_bytes <= LISTPACK_MAX_SIZE else LISTPACK_MAX_SIZE)


# A listpack in StreamLog._lp: 7 unsigned 64-bit slots.
LP_FIRST_MS, LP_FIRST_SEQ, LP_LAST_MS, LP_LAST_SEQ, LP_LIVE, LP_TOTAL, LP_SIZE = range(7)
LP_SLOTS = 7
LP_UNKNOWN = (1 << 64) - 1  # the size of a listpack of an earlier build's stream: no entry joins it
MAX_ID = (1 << 128) - 1
INVALID_ENTRIES_READ = -1  # a group whose read counter is unknown (Redis's SCG_INVALID_ENTRIES_READ)
# Measured by tests/unit/test_storage_stream.py (tracemalloc): Python bytes one pending entry costs, all
# structures included (group dict slot, key and value ints, the owner's sorted list). Reported in INFO.
PEL_BYTES_PER_ENTRY = 115

ID = struct.Struct(">QQ")
QID = struct.Struct("<Q")
SETTINGS = struct.Struct("<qq")  # the type's settings payload: stream-node-max-entries, the byte limit in force
XADD_AT = struct.Struct("<QQQII")  # qid, file id, offset of the first record, bytes, records
XADD_AT_RECORD = XADD_AT.size + framing.OVERHEAD
ENTRY_GROWTH = framing.OVERHEAD + 1 + 16 + XADD_AT_RECORD  # disk an entry takes beyond its fields, at most
NAME_LEN = struct.Struct("<I")
_LITTLE_ENDIAN = sys.byteorder == "little"
TRIM_OP = struct.Struct("<QBBqQQ")  # qid, strategy, approx, limit, threshold (ms, seq or maxlen, 0)
SETID_OP = struct.Struct("<QQQQQQ")  # qid, last id, entries added, max deleted id
GROUP_OP = struct.Struct("<QQQq")  # qid, last id, entries read; then the name
PEL_HEAD = struct.Struct("<Qq")  # qid, consumer seen time; then group, consumer names and entries
PEL_ITEM = struct.Struct(">QQqq")  # id, delivery time ms, delivery count
CONSUMER_OP = struct.Struct("<Qq")  # qid, seen time; then group and consumer names
PEL_RANGE = struct.Struct("<QqQQQQqI")  # qid, seen time, first and last ID, delivery time, entries; then the names
PEL_DEL_RANGE = struct.Struct("<QQQQQ")  # qid, first and last ID; then the group name
# An acknowledgement is journaled as an ID range when it covers this many entries or more (a list of IDs is shorter
# below), and when the group has few enough consumers for the check that the range holds nothing else to be cheap.
ACK_RANGE_MIN = 3
ACK_RANGE_CONSUMERS = 32

STATE_HEAD = struct.Struct("<QQQQQQQQqQII")  # ids, entries added, length, flags (STATE_PACKS), file, counts
STATE_PACKS = 1  # in STATE_HEAD's flags: the listpacks follow the groups (without it: one per node, size unknown)
# Listpacks, and the bytes that follow: zlib (level 1) of their slots, then of each one's master field names. The
# array is mostly zero bytes (small counts, sequence numbers): ~6 bytes a listpack instead of 56, for ~1 ms a MB.
PACKS_HEAD = struct.Struct("<II")
SAME_NAMES = 0xFFFF_FFFF  # in place of a listpack's field count: the names of the listpack before it
NODE = struct.Struct("<QQQIIQQQQI")
GROUP_STATE = struct.Struct("<QQqI")
CONSUMER_STATE = struct.Struct("<qQ")

MAXLEN = 0
MINID = 1

# Redis 7.0's structures, for MEMORY USAGE: sizeof stream, streamCG, streamConsumer, streamNACK; the listpack a
# new node allocates up front; the entry flag for fields the same as the node's master entry's.
STREAM_STRUCT = 80
GROUP_STRUCT = 40
CONSUMER_STRUCT = 24
NACK_STRUCT = 24
STREAM_LISTPACK_PREALLOC = 4096
STREAM_SAMEFIELDS = 2

# The packed value of a pending entry: delivery time in the low 44 bits, then the owner's slot, then the count.
_TIME_BITS = 44
_TIME_MASK = (1 << _TIME_BITS) - 1
_SLOT_BITS = 32
_SLOT_MASK = (1 << _SLOT_BITS) - 1


def id_of(ms: int, seq: int) -> int:
    return ms << 64 | seq


_SEQ_MASK = 0xFFFF_FFFF_FFFF_FFFF


def split_id(stream_id: int) -> tuple[int, int]:
    return stream_id >> 64, stream_id & _SEQ_MASK


def format_id(stream_id: int) -> bytes:
    return b"%d-%d" % (stream_id >> 64, stream_id & 0xFFFF_FFFF_FFFF_FFFF)


def _pack_id(stream_id: int) -> bytes:
    return ID.pack(stream_id >> 64, stream_id & 0xFFFF_FFFF_FFFF_FFFF)


def _unpack_id(data: bytes | memoryview, offset: int = 0) -> int:
    ms, seq = ID.unpack_from(data, offset)
    return ms << 64 | seq


def _varint(number: int) -> bytes:
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError(MALFORMED_ENTRY)
        byte = data[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number, pos
        shift += 7


def py_encode_fields(values: Sequence[bytes]) -> bytes:
    return b"".join(_varint(len(value)) + value for value in values)


def py_decode_fields(data: bytes | memoryview, start: int = 0) -> list[bytes]:
    """The values ``encode_fields`` wrote, from ``start`` on; ValueError if they do not fill the data exactly."""
    values = []
    pos, end = start, len(data)
    if not 0 <= pos <= end:
        raise ValueError(MALFORMED_ENTRY)
    while pos < end:
        length, pos = _read_varint(data, pos)
        if length > end - pos:
            raise ValueError(MALFORMED_ENTRY)
        values.append(bytes(data[pos : pos + length]))
        pos += length
    return values


encode_fields = speedups.encode_fields or py_encode_fields  # the C twins, when built: the same results
decode_fields = speedups.decode_fields or py_decode_fields


# -- the bytes Redis's listpack encoding takes (listpack.c), which decide where Redis starts a node

LP_EMPTY = 7  # a listpack's header (total bytes, element count) and its end byte
_LP_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def lp_int_size(value: int) -> int:
    """Bytes of an integer element: its encoding and the one-byte back length."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -2147483648 <= value <= 2147483647:
        return 6
    return 10


def lp_string_size(value: bytes) -> int:
    """Bytes of a string element, stored as an integer when it is one in canonical form (lpStringToInt64)."""
    length = len(value)
    if length <= 20 and _LP_INTEGER.fullmatch(value):
        number = int(value)
        if _INT64_MIN <= number <= _INT64_MAX:
            return lp_int_size(number)
    encoded = length + (1 if length < 64 else 2 if length < 4096 else 5)
    if encoded <= 127:
        return encoded + 1
    if encoded < 16383:
        return encoded + 2
    if encoded < 2097151:
        return encoded + 3
    return encoded + (4 if encoded < 268435455 else 5)


def _signed64(value: int) -> int:
    value &= _SEQ_MASK
    return value - (1 << 64) if value > _INT64_MAX else value


def py_lp_entry(fields: Sequence[bytes], master: Sequence[bytes] | None, ms_diff: int, seq_diff: int, room: int) -> int:
    """The bytes an entry with these fields and values adds to a listpack whose master entry has the field names
    ``master``, its ID that far from the master ID (each part as a 64-bit difference), if the fields and values
    come to less than ``room`` bytes (Redis's test for a listpack node being full); otherwise, or with ``master``
    None, minus the bytes of a new listpack holding it alone. Neither counts the listpack's live and deleted
    counters, which change as entries are deleted.

    An entry is flags, the two ID differences, [the field count and names, unless they are the master's], the
    values, and the count of elements before it (streamAppendItem)."""
    count = len(fields) // 2
    names_size = values_size = total = 0
    for index in range(0, 2 * count, 2):
        name, value = fields[index], fields[index + 1]
        names_size += lp_string_size(name)
        values_size += lp_string_size(value)
        total += len(name) + len(value)
    if master is None or total >= room:
        return -(LP_EMPTY + lp_int_size(count) + names_size + 2 + 6 + values_size + lp_int_size(count + 3))
    added = 2 + lp_int_size(_signed64(ms_diff)) + lp_int_size(_signed64(seq_diff)) + values_size
    if len(master) == count and all(master[i] == fields[2 * i] for i in range(count)):
        return added + lp_int_size(count + 3)
    return added + lp_int_size(count) + names_size + lp_int_size(2 * count + 4)


def py_lp_place(
    listpacks: array,
    fields: Sequence[bytes],
    names: Sequence[bytes] | None,
    ms: int,
    seq: int,
    max_entries: int,
    max_bytes: int,
) -> int:
    """streamAppendItem's choice for an entry with ID ``ms``-``seq``: the bytes it adds to the last of
    ``listpacks`` (StreamLog._lp; the last one's master field names are ``names``), which it updates; or minus the
    bytes of a new listpack holding it, which the caller appends. Redis starts one when the last holds
    ``max_entries`` entries (0: no limit), or would reach ``max_bytes`` bytes with the entry's fields and values."""
    end = len(listpacks)
    if end and names is not None and listpacks[end - 1] != LP_UNKNOWN:
        base = end - LP_SLOTS
        live, total, size = listpacks[base + LP_LIVE], listpacks[base + LP_TOTAL], listpacks[base + LP_SIZE]
        if not (max_entries and total >= max_entries):
            counters = 4 if total <= 127 else lp_int_size(live) + lp_int_size(total - live)  # 2 bytes each below 128
            ms_diff, seq_diff = ms - listpacks[base], (seq - listpacks[base + 1]) & _SEQ_MASK
            added = py_lp_entry(fields, names, ms_diff, seq_diff, max_bytes - size - counters)
            if added >= 0:
                listpacks[base + LP_LAST_MS], listpacks[base + LP_LAST_SEQ] = ms, seq
                listpacks[base + LP_LIVE], listpacks[base + LP_TOTAL] = live + 1, total + 1
                listpacks[base + LP_SIZE] = size + added
            return added
    return py_lp_entry(fields, None, 0, 0, 0)


def py_lp_join_many(
    listpacks: array,
    names: Sequence[bytes] | None,
    fields_list: Sequence[Sequence[bytes]],
    ids: Sequence[int],
    start: int,
    max_entries: int,
    max_bytes: int,
) -> tuple[int, int]:
    """``py_lp_place`` of the entries from ``start`` on while each joins the last listpack: how many did, and minus
    the bytes of a listpack holding the next one alone (0 if none is left)."""
    for index in range(start, len(ids)):
        stream_id = ids[index]
        added = py_lp_place(
            listpacks, fields_list[index], names, stream_id >> 64, stream_id & _SEQ_MASK, max_entries, max_bytes
        )
        if added < 0:
            return index - start, added
    return len(ids) - start, 0


lp_entry = speedups.lp_entry or py_lp_entry
lp_place = speedups.lp_place or py_lp_place
lp_join_many = speedups.lp_join_many or py_lp_join_many


def _id_prefix(stream_id: int, first_ms: int, noted: int) -> bytes:
    """A compact record's tag and ID, for an entry of the node whose first ID has milliseconds ``first_ms``."""
    tag, seq = ((stream_id >> 64) - first_ms + 1) << 1 | noted, stream_id & _SEQ_MASK
    if tag < 0x80 and seq < 0x80:
        return bytes((tag, seq))
    return _varint(tag) + _varint(seq)


def _starts_node(payload: bytes | memoryview) -> bool:
    """A compact record carrying its ID whole: the first of a node."""
    return payload[0] >> 1 == 0


def _compact_id(data: bytes | memoryview, first_ms: int) -> tuple[int, int]:
    """The ID of a compact record of the node whose first ID has milliseconds ``first_ms``, and where its fields
    start. (A node's first record carries its ID whole.)"""
    tag = data[0]
    if tag >> 1 == 0:
        return _unpack_id(data, 1), 1 + ID.size
    if tag < 0x80 and data[1] < 0x80:
        return (first_ms + (tag >> 1) - 1) << 64 | data[1], 2
    tag, pos = _read_varint(data, 0)
    seq, pos = _read_varint(data, pos)
    return (first_ms + (tag >> 1) - 1) << 64 | seq, pos


def _pel_items(data: bytes | memoryview) -> list[tuple[int, int, int]]:
    """(id, delivery time, delivery count) of each packed PEL_ITEM in ``data``."""
    return [(ms << 64 | seq, delivered, count) for ms, seq, delivered, count in PEL_ITEM.iter_unpack(data)]


def _name(data: bytes) -> bytes:
    return NAME_LEN.pack(len(data)) + data


def _read_name(data: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    (length,) = NAME_LEN.unpack_from(data, pos)
    pos += NAME_LEN.size
    return bytes(data[pos : pos + length]), pos + length


class Node:
    """A run of records in one file. ``deleted`` holds IDs of deleted records still inside [start, end)."""

    __slots__ = ("compact", "deleted", "end", "fid", "first", "last", "live", "start", "total")

    def __init__(
        self, fid: int, start: int, end: int, total: int, live: int, first: int, last: int, compact: bool = True
    ) -> None:
        self.compact = compact  # REC_STREAM_COMPACT records (False: a node written before them)
        self.fid = fid
        self.start = start
        self.end = end
        self.total = total  # records ever appended (live + deleted): a node holding NODE_ENTRIES is full
        self.live = live
        self.first = first  # ID of the node's first record ever (Redis's master ID): the index key
        self.last = last  # ID of the node's last record (live or deleted)
        self.deleted: set[int] | None = None


class Consumer:
    __slots__ = ("name", "pel", "seen", "slot")

    def __init__(self, name: bytes, slot: int, seen: int) -> None:
        self.name = name
        self.slot = slot
        self.seen = seen
        self.pel: SortedList = SortedList()


class Pending:
    """One pending entry, unpacked (the PEL itself stores a packed int per entry)."""

    __slots__ = ("consumer", "count", "delivered", "id")

    def __init__(self, stream_id: int, consumer: Consumer, delivered: int, count: int) -> None:
        self.id = stream_id
        self.consumer = consumer
        self.delivered = delivered
        self.count = count


class Group:
    __slots__ = ("consumers", "entries_read", "last_id", "name", "next_slot", "pel", "redeliveries", "slots")

    def __init__(self, name: bytes, last_id: int, entries_read: int) -> None:
        self.name = name
        # Deliveries of entries already pending (XREADGROUP of history, XCLAIM, XAUTOCLAIM) since start: a metrics
        # counter, not persisted (a restart is a counter reset to Prometheus).
        self.redeliveries = 0
        self.last_id = last_id
        self.entries_read = entries_read
        self.consumers: dict[bytes, Consumer] = {}
        self.slots: dict[int, Consumer] = {}
        self.next_slot = 0
        self.pel: dict[int, int] = {}  # id -> delivery time | owner slot | delivery count, packed

    def consumer(self, name: bytes, seen: int) -> tuple[Consumer, bool]:
        found = self.consumers.get(name)
        if found is not None:
            return found, False
        consumer = Consumer(name, self.next_slot, seen)
        self.next_slot += 1
        self.consumers[name] = consumer
        self.slots[consumer.slot] = consumer
        return consumer, True

    def pending(self, stream_id: int) -> Pending | None:
        packed = self.pel.get(stream_id)
        if packed is None:
            return None
        return self._unpack(stream_id, packed)

    def _unpack(self, stream_id: int, packed: int) -> Pending:
        return Pending(
            stream_id,
            self.slots[(packed >> _TIME_BITS) & _SLOT_MASK],
            packed & _TIME_MASK,
            packed >> (_TIME_BITS + _SLOT_BITS),
        )

    def set_pending_many(self, consumer: Consumer, items: Sequence[tuple[int, int, int]]) -> None:
        """Makes ``consumer`` the owner of each (id, delivery time, delivery count), creating entries as needed; new
        entries join the consumer's PEL at once."""
        pel, slots = self.pel, self.slots
        fresh = []
        for stream_id, delivered, count in items:
            old = pel.get(stream_id)
            if old is None:
                fresh.append(stream_id)
            else:
                owner = slots[(old >> _TIME_BITS) & _SLOT_MASK]
                if owner is not consumer:
                    owner.pel.remove(stream_id)
                    consumer.pel.add(stream_id)
            pel[stream_id] = (count << _SLOT_BITS | consumer.slot) << _TIME_BITS | (delivered & _TIME_MASK)
        if len(fresh) > 1:
            consumer.pel.update(fresh)
        elif fresh:
            consumer.pel.add(fresh[0])

    def drop_pending_many(self, ids: Sequence[int]) -> None:
        """``drop_pending`` of each of ``ids`` (all pending, no repeats). Acknowledging a consumer's oldest entries,
        the usual case, cuts the front of its PEL in one step."""
        by_owner: dict[int, list[int]] = {}
        pel = self.pel
        for stream_id in ids:
            slot = (pel.pop(stream_id) >> _TIME_BITS) & _SLOT_MASK
            owned = by_owner.get(slot)
            if owned is None:
                by_owner[slot] = [stream_id]
            else:
                owned.append(stream_id)
        for slot, gone in by_owner.items():
            owner_pel = self.slots[slot].pel
            gone.sort()
            if len(gone) > 1 and owner_pel[: len(gone)] == gone:
                del owner_pel[: len(gone)]
            else:
                for stream_id in gone:
                    owner_pel.remove(stream_id)

    def drop_pending(self, stream_id: int) -> bool:
        packed = self.pel.pop(stream_id, None)
        if packed is None:
            return False
        self.slots[(packed >> _TIME_BITS) & _SLOT_MASK].pel.remove(stream_id)
        return True

    def drop_consumer(self, consumer: Consumer) -> int:
        pending = len(consumer.pel)
        for stream_id in consumer.pel:
            del self.pel[stream_id]
        del self.consumers[consumer.name]
        del self.slots[consumer.slot]
        return pending

    def iter_pending(self, start: int = 0, end: int = MAX_ID, consumer: Consumer | None = None) -> Iterator[Pending]:
        """Pending entries with start <= id <= end in ID order (of one consumer, or of the whole group)."""
        if consumer is not None:
            ids: Iterable[int] = consumer.pel.irange(start, end)
        else:
            ids = heapq.merge(*(c.pel.irange(start, end) for c in self.consumers.values() if c.pel))
        pel = self.pel
        for stream_id in ids:
            packed = pel.get(stream_id)
            if packed is not None:  # the caller may drop entries while iterating
                yield self._unpack(stream_id, packed)

    def pending_bounds(self) -> tuple[int, int] | None:
        lows = [c.pel[0] for c in self.consumers.values() if c.pel]
        if not lows:
            return None
        return min(lows), max(c.pel[-1] for c in self.consumers.values() if c.pel)


class StreamLog(Value):
    """One stream key, and its catalog entry. Mutations are journaled through the engine; entry bodies are read from
    the segments."""

    __slots__ = (
        "_engine",
        "_fid",
        "_keys",
        "_lp",
        "_lp_fields",
        "_nodes",
        "_unnoted",
        "entries_added",
        "first_id",
        "groups",
        "last_id",
        "length",
        "max_deleted_id",
        "qid",
        "store",
    )
    type = "stream"

    def __init__(self, engine: StorePort, qid: int) -> None:
        super().__init__()
        self._engine = engine
        self.store: SegmentStore = engine.store
        self.qid = qid
        self._nodes: list[Node] = []
        self._keys: list[int] = []  # node.first of each node, for bisect
        # The listpacks Redis would cut the entries into, LP_SLOTS numbers each, oldest first; and each one's master
        # field names (None: unknown), shared with the listpack before when they are the same.
        self._lp = array("Q")
        self._lp_fields: list[tuple[bytes, ...] | None] = []
        self._fid = 0  # the file appended to (0: none yet)
        # [file, offset, bytes, records] appended since the last XADD_AT record: journaled only when a journal record
        # follows (see Engine.write_notes), since recovery finds the last file's entries without one
        self._unnoted: list[int] | None = None
        self.length = 0
        self.last_id = 0
        self.first_id = 0  # first live entry (0 when empty), Redis's recorded-first-entry-id
        self.max_deleted_id = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    def __repr__(self) -> str:
        return f"StreamLog(qid={self.qid}, length={self.length}, nodes={len(self._nodes)})"

    @property
    def node_count(self) -> int:
        """Listpacks: Redis's radix-tree keys."""
        return len(self._lp) // LP_SLOTS

    @property
    def radix_tree_nodes(self) -> int:
        lp = self._lp
        return radix_tree_nodes([lp[i] << 64 | lp[i + 1] for i in range(0, len(lp), LP_SLOTS)])

    def listpacks(self) -> list[tuple[int, int, int, int, int | None, tuple[bytes, ...] | None]]:
        """(first ID, last ID, live entries, entries added, size or None, master field names) of each listpack."""
        lp = self._lp
        return [
            (
                lp[i] << 64 | lp[i + 1],
                lp[i + 2] << 64 | lp[i + 3],
                lp[i + LP_LIVE],
                lp[i + LP_TOTAL],
                None if lp[i + LP_SIZE] == LP_UNKNOWN else lp[i + LP_SIZE],
                self._lp_fields[i // LP_SLOTS],
            )
            for i in range(0, len(lp), LP_SLOTS)
        ]

    def _listpack_of(self, stream_id: int) -> int:
        """Index of the listpack holding ``stream_id`` (the last one whose first ID is not above it)."""
        lp = self._lp
        firsts = range(0, len(lp), LP_SLOTS)
        return bisect.bisect_right(firsts, stream_id, key=lambda base: lp[base] << 64 | lp[base + 1]) - 1

    # -- adding

    def add(self, stream_id: int, fields: Sequence[bytes]) -> None:
        """Appends an entry; the caller has checked that ``stream_id`` is above ``last_id``."""
        engine = self._engine
        body = encode_fields(fields)
        engine.before_write(len(body) + ENTRY_GROWTH if engine.maxdisk else 0)
        self._append((stream_id,), (body,), (fields,))

    def add_many(self, ids: Sequence[int], fields_list: Sequence[Sequence[bytes]]) -> int:
        """Appends entries as ``add`` would one by one (IDs ascending, the first above ``last_id``), writing the
        records that fit the active file with one append and one journal record. Returns how many were added; a
        failure after the first entry stops there without raising (those added stay, journaled)."""
        engine = self._engine
        bodies = [encode_fields(fields) for fields in fields_list]
        engine.before_write(sum(map(len, bodies)) + ENTRY_GROWTH * len(bodies) if engine.maxdisk else 0)
        added = 0
        try:
            while added < len(bodies):
                added += self._append(ids[added:], bodies[added:], fields_list[added:])
        except StorageError:
            if not added:
                raise
        return added

    def _append(self, ids: Sequence[int], bodies: Sequence[bytes], fields_list: Sequence[Sequence[bytes]]) -> int:
        """Appends the entries (``encode_fields`` of each one's fields) that fit the active file, at least the first
        (a full file is rolled first), framed in one buffer, and indexes them; returns how many. A failure changes
        nothing.

        The segment holds the only copy of an entry, and the group commit syncs it. The journal's XADD_AT record of
        where the entries are is written when the next journal record is (recovery must replay them before it),
        when a file is started, or at once inside an atomic block; entries appended after the last one are found by
        recovery at the end of the stream's file (``recover_tail``)."""
        store, engine = self.store, self._engine
        if STREAM_CODE in engine.settings_unnoted:
            engine.note_settings(STREAM)  # which listpack each entry joins depends on them: replay must know
        created = 0
        fid = self._fid
        if fid == 0 or store.size(fid) >= store.segment_size:
            fid = created = store.create(self.qid, commit=True)
        # With the journal clean (everything before durable) and no other stream's entries unnoted, these entries
        # are the newest operations: recovery may keep any first part of them without a note and still hold a
        # prefix of what happened. Otherwise they are NOTED at once, and kept only if their note survives.
        unnoted = engine.notes_pending()
        lazy = not created and engine.journal_clean() and (not unnoted or (len(unnoted) == 1 and self.qid in unnoted))
        noted = 0 if lazy else NOTED
        # Which node each record joins decides how it is written: the last one while it takes more, else a new one.
        node = self._nodes[-1] if self._nodes else None
        offset = store.size(fid)
        if node is not None and node.compact and node.fid == fid and node.end == offset:
            in_node, first_ms = node.total, node.first >> 64
        else:
            in_node, first_ms = NODE_ENTRIES, 0
        if len(ids) == 1:  # a single XADD: the common case, kept short
            if in_node < NODE_ENTRIES:
                payload = _id_prefix(ids[0], first_ms, noted) + bodies[0]
            else:
                payload = b"%c%s%s" % (noted, _pack_id(ids[0]), bodies[0])
            count, data = 1, framing.frame(REC_STREAM_COMPACT, payload)
            payloads: Sequence[bytes] = (payload,)
        else:
            payloads = []
            for stream_id, body in zip(ids, bodies, strict=True):
                if in_node < NODE_ENTRIES:
                    payloads.append(_id_prefix(stream_id, first_ms, noted) + body)
                    in_node += 1
                else:
                    payloads.append(b"%c%s%s" % (noted, _pack_id(stream_id), body))
                    in_node, first_ms = 1, stream_id >> 64
            count = framing.fitting(framing.record_ends(payloads), 0, store.segment_size - offset)
            data = framing.frame_values(REC_STREAM_COMPACT, payloads[:count])
        try:
            offset = store.append(fid, data, commit=True)
        except BaseException:
            if created:
                store.kill(created)
            raise
        if created:
            self._roll_to(created)
        engine.appended_outside(len(data))
        self._index(ids, payloads[:count], fid, offset)
        if count == 1:  # _place of one entry, inline: the common case
            stream_id, fields = ids[0], fields_list[0]
            ms, seq = stream_id >> 64, stream_id & _SEQ_MASK
            names = self._lp_fields[-1] if self._lp_fields else None
            max_entries, max_bytes = engine.settings[STREAM_CODE]
            added = lp_place(self._lp, fields, names, ms, seq, max_entries, max_bytes)
            if added < 0:
                self._start_listpack(ms, seq, fields, -added)
        else:
            self._place(ids, fields_list, count)
        if not engine.replaying:
            unnoted = self._unnoted
            if unnoted is not None and unnoted[0] == fid and unnoted[1] + unnoted[2] == offset:
                unnoted[2] += len(data)
                unnoted[3] += count
            else:
                if unnoted is not None:
                    self.write_note()
                self._unnoted = [fid, offset, len(data), count]
            engine.mark_note(self)
            if not lazy:
                engine.write_notes()
        return count

    def _append_node(self, ids: Sequence[int], bodies: Sequence[bytes]) -> None:
        """Appends one whole node (COPY): records of these IDs and field bodies, the first carrying its ID whole,
        in the active file unless it would overflow it (a node never spans files). Journaled at once, as inside
        an atomic block every append is. The entries go into listpacks as XADD would place them, with the settings
        in force (replay of the XADD_AT record places them again the same way)."""
        store, engine = self.store, self._engine
        if STREAM_CODE in engine.settings_unnoted:
            engine.note_settings(STREAM)
        first_ms = ids[0] >> 64
        payloads = [b"%c%s%s" % (NOTED, _pack_id(ids[0]), bodies[0])]
        payloads += [_id_prefix(i, first_ms, NOTED) + body for i, body in zip(ids[1:], bodies[1:], strict=True)]
        data = framing.frame_values(REC_STREAM_COMPACT, payloads)
        fid = self._fid
        created = 0
        if not fid or (
            store.size(fid) > framing.SEGMENT_HEADER.size and store.size(fid) + len(data) > store.segment_size
        ):
            fid = created = store.create(self.qid, commit=True)
        try:
            offset = store.append(fid, data, commit=True)
        except BaseException:
            if created:
                store.kill(created)
            raise
        if created:
            self._roll_to(created)
        engine.appended_outside(len(data))
        fields_list = [decode_fields(body, 0) for body in bodies]
        self._index(ids, payloads, fid, offset)
        self._place(ids, fields_list, len(ids))
        if self._unnoted is not None:
            self.write_note()
        self._unnoted = [fid, offset, len(data), len(payloads)]
        engine.mark_note(self)
        engine.write_notes()

    def _node_copy(self, node: Node) -> tuple[list[int], list[bytes], list[int]]:
        """(IDs, field bodies, IDs deleted) of every record a copy of ``node`` holds: its records, deleted ones
        included, preceded by stand-ins for the records its start has moved past, so the copy counts as many
        entries towards the node's 100 as Redis's copied listpack does."""
        ids: list[int] = []
        bodies: list[bytes] = []
        for stream_id, _, _, payload, fields_at in self._records(node):
            ids.append(stream_id)
            if node.compact:
                bodies.append(bytes(payload[fields_at:]))
            else:
                bodies.append(encode_fields(journal.decode_values(payload, fields_at)))
        # The records dropped from the front held IDs from node.first up, all below the first one left.
        skipped = [node.first + index for index in range(node.total - len(ids))]
        deleted = skipped + sorted(node.deleted or ())
        return skipped + ids, [b""] * len(skipped) + bodies, deleted

    def write_note(self) -> None:
        """Journals the XADD_AT record of the entries appended since the last one (Engine.write_notes)."""
        unnoted, self._unnoted = self._unnoted, None
        if unnoted is not None:
            self._engine.log_note(OP_XADD_AT, XADD_AT.pack(self.qid, *unnoted))

    def _roll_to(self, fid: int) -> None:
        old, self._fid = self._fid, fid
        if old:
            self._release(old)

    def _place(self, ids: Sequence[int], fields_list: Sequence[Sequence[bytes]], count: int) -> None:
        """Adds the first ``count`` entries, just indexed (or replayed), to the listpacks, each where Redis would put
        it (lp_place)."""
        engine = self._engine
        max_entries, max_bytes = engine.settings[STREAM_CODE]
        lp = self._lp
        names = self._lp_fields[-1] if self._lp_fields else None
        if count < len(ids):
            ids = ids[:count]
        index = 0
        while index < count:
            joined, alone = lp_join_many(lp, names, fields_list, ids, index, max_entries, max_bytes)
            index += joined
            if index < count:  # this one starts a listpack
                stream_id = ids[index]
                names = self._start_listpack(stream_id >> 64, stream_id & _SEQ_MASK, fields_list[index], -alone)
                index += 1

    def _start_listpack(self, ms: int, seq: int, fields: Sequence[bytes], size: int) -> tuple[bytes, ...]:
        """A new listpack holding the entry ms-seq (of ``size`` bytes); returns its master field names."""
        self._lp.extend((ms, seq, ms, seq, 1, 1, size))
        names = tuple(fields[0::2])
        if self._lp_fields and self._lp_fields[-1] == names:
            names = self._lp_fields[-1]  # the listpack before's, shared
        self._lp_fields.append(names)
        return names

    def _index(self, ids: Sequence[int], payloads: Sequence[bytes], fid: int, offset: int) -> None:
        """Adds the compact records just appended (or replayed) at ``offset`` of ``fid`` to the nodes: one whose ID is
        whole starts a node, the others join the last one."""
        nodes = self._nodes
        node = nodes[-1] if nodes else None
        count = len(payloads)
        for index in range(count):
            stream_id = ids[index]
            end = offset + len(payloads[index]) + framing.OVERHEAD
            if not _starts_node(payloads[index]):
                if node is None or not node.compact or node.fid != fid or node.end != offset:
                    raise ValueError("a stream entry written as part of a node follows no such node")
                node.end = end
                node.total += 1
                node.live += 1
                node.last = stream_id
            else:
                node = Node(fid, offset, end, 1, 1, stream_id, stream_id)
                nodes.append(node)
                self._keys.append(stream_id)
            offset = end
        if not self.length:
            self.first_id = ids[0]
        self.length += count
        self.entries_added += count
        self.last_id = ids[count - 1]

    def _adopt(self, fid: int, offset: int, length: int, count: int) -> None:
        """Replay of XADD_AT: indexes the records a journaled XADD appended, read back from the segment (the
        engine raises TornReference if a power cut left them incomplete)."""
        payloads = self._engine.appended_records(self.qid, fid, offset, length, count)
        store = self.store
        if fid != self._fid:
            if fid not in store.files:
                store.adopt(self.qid, fid)
            self._roll_to(fid)
        if store.size(fid) != offset:
            raise ValueError(f"entries journaled at offset {offset} of file {fid}, which ends at {store.size(fid)}")
        ids, fields_list = self._decode(payloads)
        store.extend(fid, length)
        self._engine.appended_outside(length)
        self._index(ids, payloads, fid, offset)
        self._place(ids, fields_list, len(ids))  # as _append decided, again

    def _decode(self, payloads: Sequence[bytes]) -> tuple[list[int], list[list[bytes]]]:
        """The IDs and fields of compact records about to be indexed after the last node (the IDs checked to ascend
        from last_id)."""
        node = self._nodes[-1] if self._nodes else None
        first_ms = node.first >> 64 if node is not None and node.compact else -1
        ids = []
        fields_list = []
        for payload in payloads:
            if _starts_node(payload):
                stream_id = _unpack_id(payload, 1)
                first_ms = stream_id >> 64
                fields_at = 1 + ID.size
            elif first_ms < 0:
                raise ValueError("a stream entry written as part of a node follows no such node")
            else:
                stream_id, fields_at = _compact_id(payload, first_ms)
            ids.append(stream_id)
            fields_list.append(decode_fields(payload, fields_at))
        if ids[0] <= self.last_id or any(b <= a for a, b in itertools.pairwise(ids)):
            raise ValueError("stream entries out of ID order")
        return ids, fields_list

    def recover_tail(self, fid: int, size_on_disk: int) -> int:
        """Recovery, after replay: indexes the entries appended to the stream's last file that no XADD_AT record
        names (``_append`` leaves the newest ones unnoted): the whole records past the last replayed entry, up to
        the first NOTED one (its note did not survive) or a torn one. Returns how many. Only the stream's last file
        (``fid``, of ``size_on_disk`` bytes) can hold such entries."""
        store = self.store
        if not fid or fid != self._fid or fid not in store.files or size_on_disk <= store.size(fid):
            return 0
        offset = store.size(fid)
        payloads = []
        for payload in self._engine.tail_records(self.qid, fid, offset, size_on_disk):
            if payload[0] & NOTED:
                break
            payloads.append(payload)
        if not payloads:
            return 0
        ids, fields_list = self._decode(payloads)
        length = sum(len(payload) + framing.OVERHEAD for payload in payloads)
        store.extend(fid, length)
        self._engine.recovered_outside(length)
        self._index(ids, payloads, fid, offset)
        self._place(ids, fields_list, len(ids))
        # The journal names them first thing (Engine._recover), or notes of later entries would leave a gap.
        self._unnoted = [fid, offset, length, len(ids)]
        self._engine.mark_note(self)
        return len(ids)

    def _release(self, fid: int) -> None:
        if fid == self._fid or fid not in self.store.files:
            return
        if any(node.fid == fid for node in self._nodes):
            return
        self.store.kill(fid)

    # -- reading

    def _records(self, node: Node, reverse: bool = False) -> Iterator[tuple[int, int, int, memoryview, int]]:
        """(id, record start, record end, payload, where its fields start) of every record in the node, deleted ones
        included."""
        store, fid = self.store, node.fid
        first_ms = node.first >> 64 if node.compact else -1
        if not reverse:
            offset, overhead = node.start, framing.OVERHEAD
            while offset < node.end:
                payloads, _ = store.read_many_forward(fid, offset, node.end, NODE_ENTRIES)
                for payload in payloads:
                    after = offset + len(payload) + overhead
                    view = memoryview(payload)
                    if first_ms < 0:
                        yield _unpack_id(view), offset, after, view, ID.size
                    else:
                        stream_id, fields_at = _compact_id(payload, first_ms)
                        yield stream_id, offset, after, view, fields_at
                    offset = after
        else:
            end = node.end
            while end > node.start:
                payload, before = store.read_backward(fid, end, node.start)
                view = memoryview(payload)  # type: ignore[arg-type]
                if first_ms < 0:
                    yield _unpack_id(view), before, end, view, ID.size
                else:
                    stream_id, fields_at = _compact_id(view, first_ms)
                    yield stream_id, before, end, view, fields_at
                end = before

    def _node_index(self, stream_id: int) -> int:
        """Index of the last node whose first ID is <= stream_id (-1 if none)."""
        return bisect.bisect_right(self._keys, stream_id) - 1

    def range(self, start: int, end: int, count: int = 0, reverse: bool = False) -> list[tuple[int, list[bytes]]]:
        """Live entries with start <= id <= end, at most ``count`` (0: all), oldest first unless ``reverse``."""
        return list(self.iter_range(start, end, count, reverse))

    def iter_range(
        self, start: int, end: int, count: int = 0, reverse: bool = False
    ) -> Iterator[tuple[int, list[bytes]]]:
        if start > end or not self.length:
            return
        nodes = self._nodes
        emitted = 0
        if not reverse:
            index = max(0, self._node_index(start))
            while index < len(nodes):
                node = nodes[index]
                index += 1
                if node.first > end:
                    return
                if node.last < start or not node.live:
                    continue
                deleted = node.deleted
                decode = decode_fields if node.compact else journal.decode_values
                for stream_id, _, _, payload, fields_at in self._records(node):
                    if stream_id > end:
                        return
                    if stream_id < start or (deleted and stream_id in deleted):
                        continue
                    yield stream_id, decode(payload, fields_at)
                    emitted += 1
                    if emitted == count:
                        return
        else:
            index = self._node_index(end)
            while index >= 0:
                node = nodes[index]
                index -= 1
                if node.last < start:
                    return
                if node.first > end or not node.live:
                    continue
                deleted = node.deleted
                decode = decode_fields if node.compact else journal.decode_values
                for stream_id, _, _, payload, fields_at in self._records(node, reverse=True):
                    if stream_id < start:
                        return
                    if stream_id > end or (deleted and stream_id in deleted):
                        continue
                    yield stream_id, decode(payload, fields_at)
                    emitted += 1
                    if emitted == count:
                        return

    def _live_ids(self, start: int, end: int) -> list[int]:
        """IDs of the live entries with start <= id <= end (``iter_range`` without decoding the fields)."""
        ids: list[int] = []
        nodes = self._nodes
        for index in range(max(0, self._node_index(start)), len(nodes)):
            node = nodes[index]
            if node.first > end:
                break
            if node.last < start or not node.live:
                continue
            deleted = node.deleted
            for stream_id, *_ in self._records(node):
                if stream_id > end:
                    return ids
                if stream_id >= start and not (deleted and stream_id in deleted):
                    ids.append(stream_id)
        return ids

    def get(self, stream_id: int) -> list[bytes] | None:
        for _, fields in self.iter_range(stream_id, stream_id, 1):
            return fields
        return None

    def exists(self, stream_id: int) -> bool:
        return self._find(stream_id) is not None

    def last_live_id(self) -> int:
        """The newest entry's ID (0 if the stream is empty); ``last_id`` may be higher after XDEL or XSETID."""
        for stream_id, _ in self.iter_range(0, MAX_ID, 1, reverse=True):
            return stream_id
        return 0

    def _find(self, stream_id: int) -> tuple[Node, int, int] | None:
        """The node holding live entry ``stream_id`` and the record's offsets."""
        index = self._node_index(stream_id)
        if index < 0:
            return None
        node = self._nodes[index]
        if stream_id > node.last or not node.live or (node.deleted and stream_id in node.deleted):
            return None
        for found, start, end, *_ in self._records(node):
            if found == stream_id:
                return node, start, end
            if found > stream_id:
                return None
        return None

    # -- deleting and trimming

    def delete(self, ids: Sequence[int]) -> int:
        """XDEL: removes the live entries among ``ids``; returns how many."""
        targets = [i for i in dict.fromkeys(ids) if self._find(i) is not None]
        if not targets:
            return 0
        self._engine.before_write(0)
        self._delete(targets)
        self._engine.log(OP_XDEL, QID.pack(self.qid) + b"".join(map(_pack_id, targets)))
        return len(targets)

    def _delete(self, ids: Sequence[int]) -> None:
        first_deleted = False
        for stream_id in ids:
            found = self._find(stream_id)
            if found is None:
                continue
            node, start, end = found
            pack = self._listpack_of(stream_id) * LP_SLOTS
            if self._lp[pack + LP_LIVE] == 1:  # its listpack goes with its last live entry
                del self._lp[pack : pack + LP_SLOTS]
                del self._lp_fields[pack // LP_SLOTS]
            else:
                self._lp[pack + LP_LIVE] -= 1
            node.live -= 1
            self.length -= 1
            if stream_id == self.first_id:
                first_deleted = True
            if stream_id > self.max_deleted_id:
                self.max_deleted_id = stream_id
            if not node.live:
                self._drop_node(node)
            elif start == node.start:
                node.start = end
                self._skip_deleted_prefix(node)
            else:
                if node.deleted is None:
                    node.deleted = set()
                node.deleted.add(stream_id)
        if not self.length:
            self.first_id = 0
        elif first_deleted:
            self.first_id = self._first_live()

    def _skip_deleted_prefix(self, node: Node) -> None:
        """Moves ``node.start`` past deleted records so scans do not read them again."""
        deleted = node.deleted
        if not deleted:
            return
        for stream_id, _, end, *_ in self._records(node):
            if stream_id not in deleted:
                break
            deleted.discard(stream_id)
            node.start = end
        if not deleted:
            node.deleted = None

    def _drop_node(self, node: Node) -> None:
        index = self._nodes.index(node)
        del self._nodes[index]
        del self._keys[index]
        self._release(node.fid)

    def _first_live(self) -> int:
        for stream_id, _ in self.iter_range(0, MAX_ID, 1):
            return stream_id
        return 0

    def trim(self, strategy: int, threshold: int, approx: bool, limit: int) -> int:
        """XTRIM / XADD trimming with Redis's node rules: MAXLEN ``threshold`` entries or MINID ``threshold``."""
        if not self._lp or (strategy == MAXLEN and self.length <= threshold):
            return 0
        self._engine.before_write(0)
        packs = len(self._lp)
        deleted = self._trim(strategy, threshold, approx, limit)
        if deleted or len(self._lp) != packs:
            high = threshold if strategy == MINID else 0
            self._engine.log(
                OP_XTRIM,
                TRIM_OP.pack(
                    self.qid,
                    strategy,
                    approx,
                    limit,
                    high >> 64 if strategy == MINID else threshold,
                    high & 0xFFFF_FFFF_FFFF_FFFF,
                ),
            )
        return deleted

    def _trim(self, strategy: int, threshold: int, approx: bool, limit: int) -> int:
        """streamTrim: whole listpacks from the oldest while the strategy allows, and at most ``limit`` live entries
        in all (0: no limit; entries deleted inside a listpack do not count); then, unless ``approx``, the oldest
        entries of the first listpack left, up to the threshold."""
        lp = self._lp
        if approx and lp:  # most calls (XADD with `~`) can remove nothing: the first listpack stays
            entries = lp[4]  # its live entries
            if (limit and entries > limit) or (
                self.length - entries < threshold if strategy == MAXLEN else (lp[2] << 64 | lp[3]) >= threshold
            ):
                return 0
        packs = len(lp) // LP_SLOTS
        deleted = removed = 0
        inside = False
        while removed < packs:
            length = self.length - deleted
            if strategy == MAXLEN and length <= threshold:
                break
            base = removed * LP_SLOTS
            entries = lp[base + LP_LIVE]
            if limit and deleted + entries > limit:
                break
            if strategy == MAXLEN:
                remove = length - entries >= threshold
            else:
                remove = (lp[base + LP_LAST_MS] << 64 | lp[base + LP_LAST_SEQ]) < threshold
            if not remove:
                inside = not approx
                break
            deleted += entries
            removed += 1
        if removed:
            base = removed * LP_SLOTS
            boundary = lp[base] << 64 | lp[base + 1] if removed < packs else MAX_ID + 1
            cut = self._cut(boundary, deleted, exact=True)
            assert cut == deleted, (cut, deleted)
            del lp[:base]
            del self._lp_fields[:removed]
            self.length -= deleted
        if inside:
            if strategy == MAXLEN:
                cut = self._cut(MAX_ID + 1, self.length - threshold, exact=True)
            else:
                cut = self._cut(threshold, self.length)
            lp[LP_LIVE] -= cut  # those entries stay in their listpack, deleted
            self.length -= cut
            deleted += cut
        if not self.length:
            self.first_id = 0
        elif deleted:
            self.first_id = self._first_live()
        return deleted

    def _cut(self, boundary: int, count: int, exact: bool = False) -> int:
        """Deletes the oldest live entries with IDs below ``boundary``, at most ``count`` (``exact``: exactly that
        many are there); returns how many. Whole nodes go without being read; at most one is read, to move its
        start (without decoding its records, when the count is exact and it holds no deleted ones)."""
        nodes = self._nodes
        removed = drop = 0
        while drop < len(nodes) and nodes[drop].last < boundary and removed + nodes[drop].live <= count:
            removed += nodes[drop].live
            drop += 1
        if drop:
            gone = nodes[:drop]
            del nodes[:drop]
            del self._keys[:drop]
            for fid in dict.fromkeys(node.fid for node in gone):
                self._release(fid)
        if not nodes or removed >= count:
            return removed
        node = nodes[0]
        if exact and not node.deleted and node.compact:
            left, offset = count - removed, node.start
            while left:  # the node's first records are the ones to go
                values, offset = self.store.read_many_forward(node.fid, offset, node.end, left)
                left -= len(values)
            node.start = offset
            node.live -= count - removed
            return count
        marked = node.deleted or set()
        new_start = node.start
        for stream_id, _, end, *_ in self._records(node):
            if stream_id >= boundary or removed >= count:
                break
            if stream_id in marked:
                marked.discard(stream_id)
            else:
                node.live -= 1
                removed += 1
            new_start = end
        node.start = new_start
        node.deleted = marked or None
        if not node.live:
            self._drop_node(node)
        return removed

    def set_id(self, last_id: int, entries_added: int, max_deleted_id: int) -> None:
        """XSETID with the values already validated (the caller passes the current ones to keep them)."""
        self._engine.before_write(0)
        self._set_id(last_id, entries_added, max_deleted_id)
        self._engine.log(
            OP_XSETID,
            SETID_OP.pack(self.qid, *split_id(last_id), entries_added, *split_id(max_deleted_id)),
        )

    def _set_id(self, last_id: int, entries_added: int, max_deleted_id: int) -> None:
        self.last_id = last_id
        self.entries_added = entries_added
        self.max_deleted_id = max_deleted_id

    # -- consumer groups: state changes, each journaled as the data it sets

    def set_group(self, name: bytes, last_id: int, entries_read: int) -> Group:
        """Creates the group or moves its position (XGROUP CREATE / SETID, and reads past its last ID)."""
        self._engine.before_write(0)
        group = self._set_group(name, last_id, entries_read)
        self._engine.log(OP_XGROUP, GROUP_OP.pack(self.qid, *split_id(last_id), entries_read) + name)
        return group

    def _set_group(self, name: bytes, last_id: int, entries_read: int) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, last_id, entries_read)
        else:
            group.last_id, group.entries_read = last_id, entries_read
        return group

    def destroy_group(self, name: bytes) -> bool:
        if name not in self.groups:
            return False
        self._engine.before_write(0)
        del self.groups[name]
        self._engine.log(OP_XGROUP_DEL, QID.pack(self.qid) + name)
        return True

    def create_consumer(self, group: Group, name: bytes, now: int, refresh: bool = True) -> tuple[Consumer, bool]:
        """The named consumer, created (and journaled) if missing; its seen time becomes ``now`` (if ``refresh``)."""
        consumer = group.consumers.get(name)
        if consumer is not None:
            if refresh:
                consumer.seen = now  # not journaled alone: an idle time lost in a crash harms no one
                self._engine.mark_changed(self)  # but checkpointed
            return consumer, False
        self._engine.before_write(0)
        consumer, _ = group.consumer(name, now)
        self._engine.log(OP_XCONSUMER, CONSUMER_OP.pack(self.qid, now) + _name(group.name) + name)
        return consumer, True

    def delete_consumer(self, group: Group, consumer: Consumer) -> int:
        self._engine.before_write(0)
        pending = group.drop_consumer(consumer)
        self._engine.log(OP_XCONSUMER_DEL, QID.pack(self.qid) + _name(group.name) + consumer.name)
        return pending

    def set_pending(self, group: Group, consumer: Consumer, items: Sequence[tuple[int, int, int]]) -> None:
        """Makes ``consumer`` the owner of each (id, delivery time, delivery count), creating entries as needed."""
        if not items:
            return
        self._engine.before_write(0)
        pel, shift = group.pel, _TIME_BITS + _SLOT_BITS
        group.redeliveries += sum(
            1 for stream_id, _, count in items if (old := pel.get(stream_id)) is not None and count > old >> shift
        )
        group.set_pending_many(consumer, items)
        payload = [PEL_HEAD.pack(self.qid, consumer.seen), _name(group.name), _name(consumer.name)]
        pack = PEL_ITEM.pack
        payload += [pack(i >> 64, i & _SEQ_MASK, delivered, count) for i, delivered, count in items]
        self._engine.log(OP_XPEL, b"".join(payload))

    def _set_read(self, group: Group, consumer: Consumer, ids: Sequence[int], now: int) -> None:
        """``set_pending`` of a new batch XREADGROUP read: ``ids`` are every live entry from the first to the last,
        so the journal names the range (replay finds the same entries in it), not each entry."""
        self._engine.before_write(0)
        group.set_pending_many(consumer, [(stream_id, now, 1) for stream_id in ids])
        head = PEL_RANGE.pack(self.qid, consumer.seen, *split_id(ids[0]), *split_id(ids[-1]), now, len(ids))
        self._engine.log(OP_XPEL_RANGE, head + _name(group.name) + consumer.name)

    def drop_pending(self, group: Group, ids: Sequence[int]) -> int:
        """Removes pending entries (XACK, and deleted entries XCLAIM / XAUTOCLAIM find); returns how many."""
        pel = group.pel
        dropped = [i for i in dict.fromkeys(ids) if i in pel]
        if not dropped:
            return 0
        self._engine.before_write(0)
        group.drop_pending_many(dropped)
        low, high = min(dropped), max(dropped)
        if (
            len(dropped) >= ACK_RANGE_MIN
            and len(group.consumers) <= ACK_RANGE_CONSUMERS
            and not any(c.pel.bisect_right(high) - c.pel.bisect_left(low) for c in group.consumers.values() if c.pel)
        ):
            # Nothing else of the group is pending between them (the usual acknowledgement of a read batch).
            record = PEL_DEL_RANGE.pack(self.qid, *split_id(low), *split_id(high)) + group.name
            self._engine.log(OP_XPEL_DEL_RANGE, record)
        else:
            self._engine.log(
                OP_XPEL_DEL, QID.pack(self.qid) + _name(group.name) + b"".join(map(_pack_id, dropped))
            )
        return len(dropped)

    # -- consumer-group semantics shared by XREADGROUP and XINFO

    def range_has_tombstones(self, start: int) -> bool:
        if not self.length or not self.max_deleted_id:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def estimate_entries_read(self, stream_id: int) -> int:
        """How many entries were added up to ``stream_id``, when that is knowable (Redis's rules)."""
        if not self.entries_added:
            return 0
        if not self.length and stream_id <= self.last_id:
            return self.entries_added
        if stream_id == self.last_id:
            return self.entries_added
        if stream_id > self.last_id:
            return INVALID_ENTRIES_READ
        if not self.max_deleted_id or self.max_deleted_id < self.first_id:
            if stream_id < self.first_id:
                return self.entries_added - self.length
            if stream_id == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_ENTRIES_READ

    def lag(self, group: Group) -> int | None:
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_entries_read(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def read_group(
        self, group: Group, consumer: Consumer, after: int, count: int, noack: bool, now: int
    ) -> list[tuple[int, list[bytes]]]:
        """New entries past ``after`` for ``consumer``: advances the group and (unless NOACK) records them pending."""
        if after >= MAX_ID:
            return []
        entries = self.range(after + 1, MAX_ID, count)
        if not entries:
            return []
        last_id, entries_read = group.last_id, group.entries_read
        for stream_id, _ in entries:
            if stream_id > last_id:
                if entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(stream_id):
                    entries_read += 1
                elif self.entries_added:
                    entries_read = self.estimate_entries_read(stream_id)
                last_id = stream_id
        with self._engine.atomic():
            if not noack:
                self._set_read(group, consumer, [stream_id for stream_id, _ in entries], now)
            if (last_id, entries_read) != (group.last_id, group.entries_read):
                self.set_group(group.name, last_id, entries_read)
        return entries

    def read_history(
        self, group: Group, consumer: Consumer, start: int, count: int, now: int
    ) -> list[tuple[int, list[bytes] | None]]:
        """The consumer's own pending entries from ``start``; entries since deleted come back with None."""
        out: list[tuple[int, list[bytes] | None]] = []
        redelivered = []
        for pending in group.iter_pending(start, MAX_ID, consumer):
            if count and len(out) >= count:
                break
            fields = self.get(pending.id)
            out.append((pending.id, fields))
            if fields is not None:
                redelivered.append((pending.id, now, pending.count + 1))
        self.set_pending(group, consumer, redelivered)
        return out

    # -- lifecycle and persistence

    def drop(self) -> None:
        fids = {node.fid for node in self._nodes} | ({self._fid} - {0})
        self._nodes, self._keys = [], []
        self._lp, self._lp_fields = array("Q"), []
        self._fid = 0
        self.groups = {}
        for fid in fids:
            if fid in self.store.files:
                self.store.kill(fid)

    def files(self) -> set[int]:
        return {node.fid for node in self._nodes} | ({self._fid} - {0})

    # -- what the generic commands ask of it

    def encoding(self) -> bytes:
        return b"stream"

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for the same stream: the object, its radix tree, the listpacks of the first
        ``samples`` nodes (0: all) averaged over all but the last, the last one's, and the groups' structures.
        Each listpack is sized from the node's records as Redis encodes them (a master entry, then per entry its
        flags, ID deltas, fields unless they are the master's, values and element count); an open last node keeps
        the 4 KiB Redis allocates up front."""
        size = memory.ROBJ + STREAM_STRUCT + _rax_usage(len(self._keys), self.radix_tree_nodes)
        nodes = self._nodes
        measured = [self._listpack_alloc(node) for node in (nodes[:samples] if samples else nodes)]
        if len(nodes) <= len(measured):
            size += sum(measured)
        else:
            size += sum(measured) // len(measured) * (len(nodes) - 1) + self._listpack_alloc(nodes[-1])
        for group in self.groups.values():
            pel = group.pel
            size += GROUP_STRUCT + _rax_usage(len(pel), radix_tree_nodes(pel)) + NACK_STRUCT * len(pel)
            for consumer in group.consumers.values():
                owned = consumer.pel
                size += CONSUMER_STRUCT + len(consumer.name) + _rax_usage(len(owned), radix_tree_nodes(owned))
        return size

    def _listpack_alloc(self, node: Node) -> int:
        """The allocation Redis would hold for ``node``'s listpack: shrunk to fit once a newer node exists."""
        lp_bytes = self._listpack_bytes(node)
        if node is self._nodes[-1] and lp_bytes <= STREAM_LISTPACK_PREALLOC:
            return STREAM_LISTPACK_PREALLOC
        return memory.malloc_size(lp_bytes)

    def _listpack_bytes(self, node: Node) -> int:
        entries = []
        deleted = node.deleted or ()
        for stream_id, _, _, payload, fields_at in self._records(node):
            decode = decode_fields if node.compact else journal.decode_values
            entries.append((stream_id, decode(payload, fields_at), stream_id in deleted))
        master = entries[0][1][0::2]
        master_ms, master_seq = split_id(node.first)
        entry, int_entry = memory.listpack_entry, memory.listpack_int_entry
        total = memory.LISTPACK_EMPTY + int_entry(node.live) + int_entry(node.total - node.live)
        total += int_entry(len(master)) + sum(map(entry, master)) + int_entry(0)
        recorded = 0
        for stream_id, fields, gone in entries:
            names = fields[0::2]
            same = names == master
            ms, seq = split_id(stream_id)
            recorded += int_entry(gone | (STREAM_SAMEFIELDS if same else 0))
            recorded += int_entry(_int64(ms - master_ms)) + int_entry(_int64(seq - master_seq))
            if not same:
                recorded += int_entry(len(names)) + sum(map(entry, names))
            recorded += sum(map(entry, fields[1::2]))
            recorded += int_entry(len(names) + 3 + (0 if same else len(names) + 1))
        # Records the node's start has moved past are still in Redis's listpack, marked deleted: as large as the
        # others on average.
        return total + recorded * node.total // len(entries)

    def nodes(self) -> list[tuple[int, int, int, int]]:
        """(file id, start, end, live records) of each node, for offline checks and tests."""
        return [(n.fid, n.start, n.end, n.live) for n in self._nodes]

    def node_ids(self) -> list[tuple[int, int, int, int]]:
        """(first ID, last ID, records ever, live records) of each node: what Redis's listpacks would say, for
        tests."""
        return [(n.first, n.last, n.total, n.live) for n in self._nodes]

    def pending_total(self) -> int:
        return sum(len(group.pel) for group in self.groups.values())

    # -- what the metrics endpoint reads

    def disk_bytes(self) -> int:
        """The bytes its records take in segment files (deleted records included until their node goes)."""
        return sum(node.end - node.start for node in self._nodes)

    def next_live_id(self, after: int) -> int | None:
        """The first live entry's ID past ``after`` (a group's next undelivered entry), None if there is none.
        Reads at most the records of the nodes up to it."""
        if after >= self.last_id or not self.length:
            return None
        if after < self.first_id:
            return self.first_id  # kept up to date: nothing to read
        nodes = self._nodes
        for index in range(max(0, self._node_index(after + 1)), len(nodes)):
            node = nodes[index]
            if node.last <= after or not node.live:
                continue
            deleted = node.deleted
            for stream_id, *_ in self._records(node):
                if stream_id > after and not (deleted and stream_id in deleted):
                    return stream_id
        return None

    def dump(self) -> bytes:
        parts = [
            STATE_HEAD.pack(
                *split_id(self.last_id),
                *split_id(self.first_id),
                *split_id(self.max_deleted_id),
                self.entries_added,
                self.length,
                STATE_PACKS,
                self._fid,
                len(self._nodes),
                len(self.groups),
            )
        ]
        for n in self._nodes:
            deleted = sorted(n.deleted or ())
            parts.append(
                NODE.pack(
                    n.fid,
                    n.start,
                    n.end,
                    n.total | (NODE_COMPACT if n.compact else 0),
                    n.live,
                    *split_id(n.first),
                    *split_id(n.last),
                    len(deleted),
                )
            )
            parts += map(_pack_id, deleted)
        for group in self.groups.values():
            parts.append(GROUP_STATE.pack(*split_id(group.last_id), group.entries_read, len(group.consumers)))
            parts.append(_name(group.name))
            for consumer in group.consumers.values():
                parts.append(CONSUMER_STATE.pack(consumer.seen, len(consumer.pel)))
                parts.append(_name(consumer.name))
                for stream_id in consumer.pel:
                    pending = group.pending(stream_id)
                    assert pending is not None
                    parts.append(PEL_ITEM.pack(*split_id(stream_id), pending.delivered, pending.count))
        parts.append(self._dump_listpacks())  # last: earlier builds wrote no more, and read no more
        return b"".join(parts)

    def _dump_listpacks(self) -> bytes:
        lp = self._lp
        packed = [lp.tobytes() if _LITTLE_ENDIAN else struct.pack(f"<{len(lp)}Q", *lp)]
        previous = None
        for names in self._lp_fields:
            if names is not None and names is previous:
                packed.append(NAME_LEN.pack(SAME_NAMES))
                continue
            packed.append(NAME_LEN.pack(len(names or ())))
            packed += map(_name, names or ())
            previous = names
        compressed = zlib.compress(b"".join(packed), 1)
        return PACKS_HEAD.pack(len(lp) // LP_SLOTS, len(compressed)) + compressed

    @classmethod
    def load(cls, engine: StorePort, qid: int, data: bytes | memoryview) -> StreamLog:
        log = cls(engine, qid)
        (
            last_ms,
            last_seq,
            first_ms,
            first_seq,
            del_ms,
            del_seq,
            log.entries_added,
            log.length,
            flags,
            log._fid,
            node_count,
            group_count,
        ) = STATE_HEAD.unpack_from(data, 0)
        log.last_id = id_of(last_ms, last_seq)
        log.first_id = id_of(first_ms, first_seq)
        log.max_deleted_id = id_of(del_ms, del_seq)
        pos = STATE_HEAD.size
        for _ in range(node_count):
            fid, start, end, total, live, f_ms, f_seq, l_ms, l_seq, n_deleted = NODE.unpack_from(data, pos)
            pos += NODE.size
            compact = bool(total & NODE_COMPACT)
            node = Node(fid, start, end, total & ~NODE_COMPACT, live, id_of(f_ms, f_seq), id_of(l_ms, l_seq), compact)
            if n_deleted:
                node.deleted = {_unpack_id(data, pos + 16 * i) for i in range(n_deleted)}
                pos += 16 * n_deleted
            log._nodes.append(node)
            log._keys.append(node.first)
        for _ in range(group_count):
            g_ms, g_seq, entries_read, consumer_count = GROUP_STATE.unpack_from(data, pos)
            pos += GROUP_STATE.size
            name, pos = _read_name(data, pos)
            group = log.groups[name] = Group(name, id_of(g_ms, g_seq), entries_read)
            for _ in range(consumer_count):
                seen, pending_count = CONSUMER_STATE.unpack_from(data, pos)
                pos += CONSUMER_STATE.size
                consumer_name, pos = _read_name(data, pos)
                consumer, _ = group.consumer(consumer_name, seen)
                end = pos + pending_count * PEL_ITEM.size
                group.set_pending_many(consumer, _pel_items(data[pos:end]))
                pos = end
        if flags & STATE_PACKS:
            pos = log._load_listpacks(data, pos)
        else:  # an earlier build's: each node was a listpack; of unknown size, so no entry joins it
            for node in log._nodes:
                first, last = split_id(node.first), split_id(node.last)
                log._lp.extend((*first, *last, node.live, node.total, LP_UNKNOWN))
                log._lp_fields.append(None)
        if pos != len(data):
            raise ValueError("trailing bytes in stream state")
        return log

    def _load_listpacks(self, state: bytes | memoryview, at: int) -> int:
        """Reads the listpacks ``dump`` wrote at ``at``; returns where they end."""
        count, length = PACKS_HEAD.unpack_from(state, at)
        at += PACKS_HEAD.size
        data = zlib.decompress(state[at : at + length])
        pos = count * LP_SLOTS * 8
        self._lp.frombytes(data[:pos])
        if not _LITTLE_ENDIAN:
            self._lp.byteswap()
        previous: tuple[bytes, ...] | None = None
        for _ in range(count):
            (name_count,) = NAME_LEN.unpack_from(data, pos)
            pos += NAME_LEN.size
            if name_count != SAME_NAMES:
                names = []
                for _ in range(name_count):
                    name, pos = _read_name(data, pos)
                    names.append(name)
                previous = tuple(names) if names else None
            self._lp_fields.append(previous)
        if pos != len(data):
            raise ValueError("trailing bytes in a stream's listpacks")
        return at + length

    # -- replay (same code paths as live)

    def replay(self, op: int, payload: bytes, record_lsn: int | None = None) -> None:
        view = memoryview(payload)
        if op == OP_XADD_AT:
            _, fid, offset, length, count = XADD_AT.unpack(payload)
            self._adopt(fid, offset, length, count)
        elif op == OP_XADD:  # the entry itself, as journals written before XADD_AT hold it
            self._engine.replaying_whole_entries()
            fields = journal.decode_values(payload, QID.size + ID.size)
            self._append((_unpack_id(view, QID.size),), (encode_fields(fields),), (fields,))
        elif op == OP_XDEL:
            self._delete([_unpack_id(view, pos) for pos in range(8, len(view), 16)])
        elif op == OP_XTRIM:
            _, strategy, approx, limit, high, low = TRIM_OP.unpack(payload)
            self._trim(strategy, id_of(high, low) if strategy == MINID else high, bool(approx), limit)
        elif op == OP_XSETID:
            _, last_ms, last_seq, added, del_ms, del_seq = SETID_OP.unpack(payload)
            self._set_id(id_of(last_ms, last_seq), added, id_of(del_ms, del_seq))
        elif op == OP_XGROUP:
            _, ms, seq, entries_read = GROUP_OP.unpack_from(payload)
            self._set_group(payload[GROUP_OP.size :], id_of(ms, seq), entries_read)
        elif op == OP_XGROUP_DEL:
            self.groups.pop(payload[QID.size :], None)
        elif op == OP_XCONSUMER:
            _, seen = CONSUMER_OP.unpack_from(payload)
            group_name, pos = _read_name(view, CONSUMER_OP.size)
            consumer, _ = self.groups[group_name].consumer(payload[pos:], seen)
            consumer.seen = seen
        elif op == OP_XCONSUMER_DEL:
            group_name, pos = _read_name(view, QID.size)
            group = self.groups[group_name]
            group.drop_consumer(group.consumers[payload[pos:]])
        elif op == OP_XPEL:
            _, seen = PEL_HEAD.unpack_from(payload)
            group_name, pos = _read_name(view, PEL_HEAD.size)
            consumer_name, pos = _read_name(view, pos)
            group = self.groups[group_name]
            consumer, _ = group.consumer(consumer_name, seen)
            consumer.seen = seen
            group.set_pending_many(consumer, _pel_items(view[pos:]))
        elif op == OP_XPEL_RANGE:
            _, seen, low_ms, low_seq, high_ms, high_seq, delivered, count = PEL_RANGE.unpack_from(payload)
            group_name, pos = _read_name(view, PEL_RANGE.size)
            group = self.groups[group_name]
            consumer, _ = group.consumer(payload[pos:], seen)
            consumer.seen = seen
            ids = self._live_ids(id_of(low_ms, low_seq), id_of(high_ms, high_seq))
            if len(ids) != count:
                raise ValueError(f"a journaled read of {count} entries finds {len(ids)} in its range")
            group.set_pending_many(consumer, [(stream_id, delivered, 1) for stream_id in ids])
        elif op == OP_XPEL_DEL_RANGE:
            _, low_ms, low_seq, high_ms, high_seq = PEL_DEL_RANGE.unpack_from(payload)
            group = self.groups[payload[PEL_DEL_RANGE.size :]]
            low, high = id_of(low_ms, low_seq), id_of(high_ms, high_seq)
            group.drop_pending_many(list(heapq.merge(*(c.pel.irange(low, high) for c in group.consumers.values()))))
        elif op == OP_XPEL_DEL:
            group_name, pos = _read_name(view, QID.size)
            group = self.groups[group_name]
            for item in range(pos, len(payload), 16):
                group.drop_pending(_unpack_id(view, item))
        else:
            raise ValueError(f"unknown stream operation {op}")


def _rax_usage(elements: int, nodes: int) -> int:
    """Redis's streamRadixTreeMemoryUsage: an ID per element, and a node header plus 30 words per node."""
    return elements * 16 + nodes * (4 + 8 * 30)


def _int64(number: int) -> int:
    """A difference of two unsigned 64-bit numbers as Redis stores it: wrapped into a signed 64-bit integer."""
    number &= (1 << 64) - 1
    return number - (1 << 64) if number >= 1 << 63 else number


def radix_tree_nodes(keys: Iterable[int]) -> int:
    """How many nodes Redis's radix tree has when it indexes listpack nodes under these IDs (XINFO STREAM).

    Redis keys each node by its first ID as 16 big-endian bytes in a compressed trie: a chain of bytes shared by
    every key below it is one node, a byte where keys diverge is one node, and every key ends in a leaf node.
    """
    encoded = sorted(_pack_id(key) for key in keys)
    if not encoded:
        return 1  # the empty root

    def count(low: int, high: int, depth: int) -> int:
        if high - low == 1:
            return 2 if depth < 16 else 1  # the rest of the key as one compressed node, then the leaf
        first, last = encoded[low], encoded[high - 1]
        shared = depth
        while first[shared] == last[shared]:
            shared += 1
        nodes = (shared > depth) + 1  # the shared chain (if any) and the node where the keys branch
        start = low
        for index in range(low + 1, high + 1):
            if index == high or encoded[index][shared] != encoded[start][shared]:
                nodes += count(start, index, shared + 1)
                start = index
        return nodes

    return count(0, len(encoded), 0)


class StreamType(ValueType):
    """Streams: entries written once, to their segment file (synced by the group commit before the journal records
    naming them), so recovery keeps stream files whole and reads entries back; group state is journaled data."""

    name = "stream"
    code = STREAM_CODE
    ops = (
        OP_XADD,
        OP_XDEL,
        OP_XTRIM,
        OP_XSETID,
        OP_XGROUP,
        OP_XGROUP_DEL,
        OP_XCONSUMER,
        OP_XCONSUMER_DEL,
        OP_XPEL,
        OP_XPEL_DEL,
        OP_XADD_AT,
        OP_XPEL_RANGE,
        OP_XPEL_DEL_RANGE,
    )
    records = (REC_STREAM_ENTRY, REC_STREAM_COMPACT)
    segment_recovery = SegmentRecovery.KEEP_WHOLE

    # (stream-node-max-entries, stream-node-max-bytes as node_settings keeps it): where listpacks end
    default_settings = SETTINGS.pack(NODE_MAX_ENTRIES, NODE_MAX_BYTES)

    def parse_settings(self, payload: bytes) -> tuple[int, int]:
        if len(payload) != SETTINGS.size:
            raise ValueError(f"stream settings of {len(payload)} bytes, not {SETTINGS.size}")
        max_entries, max_bytes = SETTINGS.unpack(payload)
        return max_entries, max_bytes

    def create(self, port: StorePort, qid: int) -> StreamLog:
        return StreamLog(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        """As Redis's rewriteStreamObject: the entries with their IDs (an empty stream made by trimming its one
        entry away), the stream's counters, then each group with its pending entries claimed by their owners and
        its consumers without any created."""
        assert isinstance(value, StreamLog)
        last = format_id(value.last_id)
        if value.length:
            for stream_id, fields in value.iter_range(0, MAX_ID):
                yield [b"XADD", key, format_id(stream_id), *fields]
        else:
            yield [b"XADD", key, b"MAXLEN", b"0", last, b"x", b"y"]
        yield [
            b"XSETID", key, last, b"ENTRIESADDED", b"%d" % value.entries_added,
            b"MAXDELETEDID", format_id(value.max_deleted_id),
        ]  # fmt: skip
        for name, group in value.groups.items():
            read = b"%d" % group.entries_read
            yield [b"XGROUP", b"CREATE", key, name, format_id(group.last_id), b"ENTRIESREAD", read]
            for consumer in group.consumers.values():
                if not consumer.pel:
                    yield [b"XGROUP", b"CREATECONSUMER", key, name, consumer.name]
                for pending in group.iter_pending(consumer=consumer):
                    yield [
                        b"XCLAIM", key, name, consumer.name, b"0", format_id(pending.id), b"TIME",
                        b"%d" % pending.delivered, b"RETRYCOUNT", b"%d" % pending.count, b"JUSTID", b"FORCE",
                    ]  # fmt: skip

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> StreamLog:
        return StreamLog.load(port, qid, state)

    def copy(self, port: StorePort, value: Value, qid: int) -> StreamLog:
        """Node by node, the records (deleted ones too) written to the new stream's files and noted (XADD_AT),
        the deleted ones deleted (XDEL), the counters set (XSETID), then each group, its consumers and their
        pending entries (XGROUP, XCONSUMER, XPEL): the state Redis's copy has, node boundaries included, built by
        the operations replay applies."""
        source: StreamLog = value  # type: ignore[assignment]
        port.before_write(sum(node.end - node.start for node in source._nodes) if port.maxdisk else 0)
        copied = StreamLog(port, qid)
        try:
            deleted: list[int] = []
            for node in source._nodes:
                ids, bodies, gone = source._node_copy(node)
                copied._append_node(ids, bodies)
                deleted += gone
            if deleted:
                copied._delete(deleted)
                port.log(OP_XDEL, QID.pack(qid) + b"".join(map(_pack_id, deleted)))
            copied.set_id(source.last_id, source.entries_added, source.max_deleted_id)
            for group in source.groups.values():
                twin = copied.set_group(group.name, group.last_id, group.entries_read)
                for consumer in group.consumers.values():
                    new_consumer, _ = copied.create_consumer(twin, consumer.name, consumer.seen)
                    pending = [(p.id, p.delivered, p.count) for p in group.iter_pending(consumer=consumer)]
                    copied.set_pending(twin, new_consumer, pending)
        except BaseException:
            copied.drop()
            raise
        return copied

    def precheck(self, port: StorePort, op: int, payload: bytes) -> None:
        if op == OP_XADD_AT:
            qid, fid, offset, length, count = XADD_AT.unpack(payload)
            port.appended_records(qid, fid, offset, length, count)

    def spans(self, state: bytes) -> Iterator[tuple[str, int, int, int, int, bool]]:
        """Each node must cover whole records inside its file, at least as many as it has live entries."""
        node_count = STATE_HEAD.unpack_from(state, 0)[-2]
        pos = STATE_HEAD.size
        for index in range(node_count):
            fid, start, end, _, live, *_, deleted = NODE.unpack_from(state, pos)
            pos += NODE.size + 16 * deleted
            yield f"node {index}", fid, start, end, live, False

    def stats(self, values: Iterable[Value]) -> dict[str, int]:
        return {
            "stream_pending_entries": sum(stream.pending_total() for stream in values),  # type: ignore[attr-defined]
            "stream_pel_bytes_per_entry": PEL_BYTES_PER_ENTRY,
        }


STREAM = StreamType()
StreamLog.vtype = STREAM


def oldest_pending_id(group: Group) -> int | None:
    bounds = group.pending_bounds()
    return bounds[0] if bounds else None
