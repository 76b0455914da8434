"""A hash: its fields held in memory in one dict, every change journaled as the data it sets or removes.

The dict keeps Redis's listpack order for small hashes: a new field goes to the end, HSET of an existing field
updates it in place, HDEL removes it in place. Redis's encoding (``listpack`` while the hash is small, ``hashtable``
once it has outgrown ``hash-max-listpack-entries`` / ``hash-max-listpack-value``, never back) is kept as one flag,
which the journal records and the manifest state carry, so a restart reports what the running server did.

Journal: OP_HSET (queue id, the encoding after the write, then field, value, ... as ``journal.encode_values``),
HINCRBY/HINCRBYFLOAT included, as a set of the new value; OP_HDEL (queue id, then the fields removed). The manifest
state is the encoding flag and every field and value in order.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Sequence, ValuesView
from functools import partial
from zlib import crc32

from respq import speedups
from respq.storage import framing, journal
from respq.storage.port import StorePort, Value, ValueType, rewrite_batches
from respq.types import memory

# Journal record types of hashes (60-69 are the hash type's). Part of the on-disk format: never renumber.
OP_HSET = 60
OP_HDEL = 61

QID = struct.Struct("<Q")
HSET_HEAD = struct.Struct("<QB")  # queue id, 1 once the hash is a hashtable
STATE_HEAD = struct.Struct("<B")  # 1: hashtable

# What respq holds in memory beyond the data, reported with it through ``StorePort.inline_changed`` (maxmemory): per
# hash its object, its empty dict and the catalog's slot; per field two bytes objects' headers (33 bytes each) and
# the dict's entry.
HASH_OVERHEAD = 180
FIELD_OVERHEAD = 106

# Redis 7.0's defaults for hash-max-listpack-entries and hash-max-listpack-value.
LISTPACK_ENTRIES = 512
LISTPACK_VALUE = 64

LISTPACK = b"listpack"
HASHTABLE = b"hashtable"
DICT_STRUCT = 56  # sizeof(dict) in Redis 7.0, for MEMORY USAGE

_VALUE_OVERHEAD = journal.VALUE_LEN.size
_RECORD_OVERHEAD = framing.OVERHEAD + HSET_HEAD.size


class HashValue(Value):
    """One hash key and its catalog entry. ``fields`` maps field to value in Redis's listpack order."""

    __slots__ = ("_port", "_shared", "fields", "hashtable", "qid")
    type = "hash"

    def __init__(self, port: StorePort, qid: int) -> None:
        self.expire_ms = None  # CatalogEntry.__init__'s, inline: every new hash comes this way
        self._port = port
        self.qid = qid
        self.fields: dict[bytes, bytes] = {}
        self.hashtable = False  # Redis's encoding: False while it would still be a listpack
        self._shared = False  # ``fields`` is in a checkpoint's snapshot: the next write copies it first
        port.inline_changed(HASH_OVERHEAD)

    def __repr__(self) -> str:
        return f"HashValue(qid={self.qid}, fields={len(self.fields)}, {self.encoding().decode()})"

    # -- reads

    def __len__(self) -> int:
        return len(self.fields)

    def get(self, field: bytes) -> bytes | None:
        return self.fields.get(field)

    def items(self) -> ItemsView[bytes, bytes]:
        return self.fields.items()

    def keys(self) -> KeysView[bytes]:
        return self.fields.keys()

    def values(self) -> ValuesView[bytes]:
        return self.fields.values()

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """HSCAN's walk: (next cursor, fields). A listpack hash answers whole with cursor 0, as Redis does. A
        hashtable is visited in the order of a 32-bit hash of each field, the cursor being the next hash value to
        visit, so a field present for the whole walk is returned at least once however fields come and go (and
        ``count`` is about how many come back, as in Redis). O(N) per call."""
        if not self.hashtable:
            return 0, list(self.fields)
        pending = [(h, field) for field in self.fields if (h := crc32(field)) >= cursor]
        if len(pending) <= count:
            return 0, [field for _, field in sorted(pending)]
        batch = heapq.nsmallest(count, pending)
        last = batch[-1][0]
        # Fields sharing the last hash all go into this batch, since the next cursor starts past that hash.
        taken = {field for _, field in batch}
        batch += [(h, field) for h, field in pending if h == last and field not in taken]
        return (last + 1) % (1 << 32), [field for _, field in batch]

    def encoding(self) -> bytes:
        """What OBJECT ENCODING answers on Redis 7.0 for the same history of writes."""
        return HASHTABLE if self.hashtable else LISTPACK

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for the same hash. A listpack: the object and the listpack's allocation (its bytes
        follow from the fields and values). A hashtable: the object, the dict and its bucket array (as sized after
        growing one field at a time, without a rehash under way), and the first ``samples`` entries (0: all)
        averaged over all of them; Redis takes its samples in its hash order, so the figure matches when fields
        and values are of like sizes."""
        fields = self.fields
        if not self.hashtable:
            entry = memory.listpack_entry
            entries = sum(entry(field) + entry(value) for field, value in fields.items())
            return memory.ROBJ + memory.malloc_size(memory.LISTPACK_EMPTY + entries)
        size = memory.ROBJ + DICT_STRUCT + 8 * _dict_slots(len(fields))
        taken = list(itertools.islice(fields.items(), samples or None))
        if taken:
            measured = sum(memory.sds_size(len(f)) + memory.sds_size(len(v)) + memory.DICT_ENTRY for f, v in taken)
            size = int(size + measured / len(taken) * len(fields))
        return size

    # -- writes (``port.before_write`` first, then the change, then its journal record)

    def set_many(
        self, pairs: Sequence[bytes], max_entries: int = LISTPACK_ENTRIES, max_value: int = LISTPACK_VALUE
    ) -> int:
        """Sets field, value, field, value, ... (flat, as HSET's arguments; a field given twice takes its last
        value) and returns how many fields are new. ``max_entries`` and ``max_value`` are the configured
        hash-max-listpack-entries / -value: a hash outgrowing them becomes a hashtable, as Redis converts it."""
        port = self._port
        port.before_write(_RECORD_OVERHEAD + sum(map(len, pairs)) + _VALUE_OVERHEAD * len(pairs) if port.maxdisk else 0)
        return self._set(pairs, max_entries, max_value)

    def _set(self, pairs: Sequence[bytes], max_entries: int, max_value: int) -> int:
        """``set_many`` once the write is allowed: the change, then its record."""
        data = journal.encode_values(pairs)
        added = self._update(pairs) if self.fields else self._fill(pairs, len(data))
        if not self.hashtable and (len(self.fields) > max_entries or max(map(len, pairs)) > max_value):
            self.hashtable = True
        self._port.log(OP_HSET, HSET_HEAD.pack(self.qid, self.hashtable) + data)
        return added

    def _fill(self, pairs: Sequence[bytes], encoded: int) -> int:
        """``_update`` of an empty hash (HSET of a new one: the common case), ``encoded`` the length of the pairs'
        ``journal.encode_values``, which tells the bytes they hold when no field is given twice."""
        count = len(pairs)
        if count % 2:
            raise ValueError("a hash field without its value")
        pairs_iter = iter(pairs)
        fields = self._own() if self._shared else self.fields
        fields.update(zip(pairs_iter, pairs_iter, strict=False))  # strict=True: slower than the check above
        added = len(fields)
        if 2 * added == count:
            holds = encoded - _VALUE_OVERHEAD * count
        else:
            holds = sum(len(field) + len(value) for field, value in fields.items())
        self._port.inline_changed(holds + FIELD_OVERHEAD * added)
        return added

    def _update(self, pairs: Sequence[bytes]) -> int:
        """Sets the pairs and reports the bytes they change; returns how many fields are new."""
        fields = self._own() if self._shared else self.fields
        before = len(fields)
        if before:  # what the fields given held before, each once
            given = dict.fromkeys(pairs[::2])
            held = sum(len(field) + len(value) for field in given if (value := fields.get(field)) is not None)
            held += FIELD_OVERHEAD * sum(field in fields for field in given)
        else:
            held = 0
        pairs_iter = iter(pairs)
        fields.update(zip(pairs_iter, pairs_iter, strict=True))
        added = len(fields) - before
        if not before and 2 * added == len(pairs):  # a new hash, no field given twice: the common case
            holds = sum(map(len, pairs)) + FIELD_OVERHEAD * added
        else:
            given = dict.fromkeys(pairs[::2])
            holds = sum(len(field) + len(fields[field]) for field in given) + FIELD_OVERHEAD * len(given)
        self._port.inline_changed(holds - held)
        return added

    def delete_many(self, fields: Iterable[bytes]) -> int:
        """Removes the fields present (each once however often given); returns how many. The caller deletes the
        key when the hash is left empty, as Redis does."""
        held = self.fields
        present = [field for field in dict.fromkeys(fields) if field in held]
        if not present:
            return 0
        port = self._port
        port.before_write(framing.OVERHEAD + QID.size + sum(map(len, present)) if port.maxdisk else 0)
        self._delete(present)
        port.log(OP_HDEL, QID.pack(self.qid) + journal.encode_values(present))
        return len(present)

    def _delete(self, present: list[bytes]) -> None:
        held = self._own() if self._shared else self.fields
        freed = 0
        for field in present:
            freed += len(field) + len(held.pop(field)) + FIELD_OVERHEAD
        self._port.inline_changed(-freed)

    # -- persistence

    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        if op == OP_HSET:
            self._update(journal.decode_values(payload, HSET_HEAD.size))
            if payload[QID.size]:
                self.hashtable = True
        elif op == OP_HDEL:
            fields = self.fields
            removed = dict.fromkeys(journal.decode_values(payload, QID.size))
            self._delete([field for field in removed if field in fields])
        else:
            raise ValueError(f"unknown hash operation {op}")

    def dump(self) -> bytes:
        return _dump(self.hashtable, self.fields)

    def capture(self) -> Callable[[], bytes]:
        # O(1) on the loop thread whatever the size: the checkpoint's worker thread dumps the dict itself, which
        # this value no longer changes (a dump there was a third of the loop's CPU per HSET of a new hash).
        self._shared = True
        return partial(_dump, self.hashtable, self.fields)

    def _own(self) -> dict[bytes, bytes]:
        """``fields``, copied first if a checkpoint's snapshot holds it."""
        self.fields = fields = dict(self.fields)
        self._shared = False
        return fields

    @classmethod
    def load(cls, port: StorePort, qid: int, state: bytes | memoryview) -> HashValue:
        value = cls(port, qid)
        value.hashtable = bool(STATE_HEAD.unpack_from(state, 0)[0])
        flat = journal.decode_values(state, STATE_HEAD.size)
        if len(flat) % 2:
            raise ValueError("a hash state holds a field without its value")
        value._update(flat)
        return value

    def files(self) -> set[int]:
        return set()  # held in memory: the journal and the manifest hold it on disk

    def drop(self) -> None:
        held = self.inline_size()
        self.fields = {}
        self._port.inline_changed(-held)

    def inline_size(self) -> int:
        """What the hash counts towards maxmemory (its share of the engine's ``inline_bytes``): its data and
        overheads, as its writes report them."""
        fields = self.fields
        return HASH_OVERHEAD + sum(map(len, fields)) + sum(map(len, fields.values())) + FIELD_OVERHEAD * len(fields)


def py_encode_pairs(head: bytes, fields: dict[bytes, bytes]) -> bytes:
    """``head``, then every field and value in order as ``journal.encode_values`` writes them."""
    # chain over the items: half the cost of a nested comprehension, and checkpoints dump every new hash
    return head + journal.encode_values(list(itertools.chain.from_iterable(fields.items())))


_encode_pairs = speedups.encode_pairs  # the C twin, when built: the same bytes, or None for a value not bytes
_STATE_HEADS = (STATE_HEAD.pack(False), STATE_HEAD.pack(True))


def _dump(hashtable: bool, fields: dict[bytes, bytes]) -> bytes:
    """A hash's manifest state: the encoding flag, then every field and value in order."""
    head = _STATE_HEADS[hashtable]
    if _encode_pairs is not None and (state := _encode_pairs(head, fields)) is not None:
        return state
    return py_encode_pairs(head, fields)


def _dict_slots(used: int) -> int:
    """Buckets of a Redis dict holding ``used`` entries that grew one at a time: a power of two, at least 4, that
    doubled whenever it was full."""
    slots = 4
    while slots < used:
        slots *= 2
    return slots


class HashType(ValueType):
    """Hashes: held in memory, journaled as the fields set and removed, dumped whole into the manifest."""

    name = "hash"
    code = 4
    ops = (OP_HSET, OP_HDEL)
    deletes_when_empty = True  # Redis deletes a hash with its last field

    def create(self, port: StorePort, qid: int) -> HashValue:
        return HashValue(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        assert isinstance(value, HashValue)
        return rewrite_batches([b"HMSET", key], list(value.items()))

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> HashValue:
        return HashValue.load(port, qid, state)

    def copy(self, port: StorePort, value: Value, qid: int) -> HashValue:
        """COPY: a new hash under queue id ``qid`` with ``value``'s fields, order and encoding (as Redis's
        hashTypeDup keeps a listpack a listpack), journaled as one OP_HSET. The caller journals the key's creation
        first, in the same atomic block, so that replay meets the queue id before the fields."""
        assert isinstance(value, HashValue)
        flat = [item for pair in value.fields.items() for item in pair]
        port.before_write(_RECORD_OVERHEAD + sum(map(len, flat)) + _VALUE_OVERHEAD * len(flat) if port.maxdisk else 0)
        new = HashValue(port, qid)
        new._update(flat)
        new.hashtable = value.hashtable
        port.log(OP_HSET, HSET_HEAD.pack(qid, new.hashtable) + journal.encode_values(flat))
        return new


HASH = HashType()
HashValue.vtype = HASH


def new_hash(
    port: StorePort,
    db: int,
    key: bytes,
    pairs: Sequence[bytes],
    max_entries: int = LISTPACK_ENTRIES,
    max_value: int = LISTPACK_VALUE,
) -> HashValue:
    """Creates ``key`` (which must not exist) holding ``pairs`` (flat field, value, ...): one journal record for
    both, so a crash never leaves the key empty; refused as a whole, before anything changes, for a full disk."""
    if port.maxdisk:
        port.before_write(len(key) + 64 + _RECORD_OVERHEAD + sum(map(len, pairs)) + _VALUE_OVERHEAD * len(pairs))
    port.begin_atomic()  # port.atomic() without a generator's cost: every new hash comes this way
    try:
        value: HashValue = port.create(db, key, HASH.name)  # type: ignore[assignment]
        value._set(pairs, max_entries, max_value)  # room for it checked above, and by create (full journal...)
    finally:
        port.end_atomic()
    return value
