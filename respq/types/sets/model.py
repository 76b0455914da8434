"""A set: its members held in memory, every change journaled as the members added or removed.

Up to SMALL_SET members they are a sorted list (a pointer each, found by bisection); past it a Python set (its table
costs ~43 bytes per member, as much again as a 36-byte member's own object), which a set never goes back from.

Redis 7.0 holds a set as an ``intset`` while every member is an integer (in strict decimal form, within int64) and
there are at most ``set-max-intset-entries`` of them, else as a ``hashtable``, and never converts back except where
a command builds a new set (SPOP with a count close to the size keeps the rest in a new set). The encoding is one
flag, carried by every journal record and the manifest state, so a restart reports what the running server did. It
is observable beyond OBJECT ENCODING: an intset is read in numeric order.

Journal: OP_SADD (queue id, the encoding after the write, then the members added, as ``journal.encode_values``);
OP_SREM (queue id, the encoding after the write, then the members removed). The manifest state is the encoding flag
and every member.
"""

from __future__ import annotations

import heapq
import random
import struct
import sys
from bisect import bisect_left, insort
from collections.abc import Collection, Iterable, Iterator
from itertools import islice
from zlib import crc32

from respq.storage import framing, journal
from respq.storage.port import StorePort, Value, ValueType, rewrite_batches
from respq.types import memory

# Journal record types of sets (70-79 are the set type's). Part of the on-disk format: never renumber.
OP_SADD = 70
OP_SREM = 71

HEAD = struct.Struct("<QB")  # queue id, 1 once the set is a hashtable
QID = struct.Struct("<Q")
STATE_HEAD = struct.Struct("<B")  # 1: hashtable

# What respq holds in memory beyond the members' bytes, reported through ``StorePort.inline_changed`` (maxmemory):
# per set its objects and the catalog's slot; per member a bytes object's header (33) and its share of the set's
# table (16-byte slots, kept at most 60% full).
SET_OVERHEAD = 300
MEMBER_OVERHEAD = 64

# Redis 7.0's default set-max-intset-entries, and the cap it puts on any configured value.
INTSET_ENTRIES = 512
INTSET_CAP = 1 << 30

RANDOM_WALK_LIMIT = 4096  # see SetValue.pick
SMALL_SET = 128  # members kept in a sorted list up to this many

INTSET = b"intset"
HASHTABLE = b"hashtable"
DICT_STRUCT = 56  # sizeof(dict) in Redis 7.0, for MEMORY USAGE
INTSET_HEADER = 8  # encoding and length, before the integers

_SET_BASE = sys.getsizeof(set())
_SMALL_GROWTH = 2048  # compacted up to this size: copies of larger tables fragment the heap more than they save
_VALUE_OVERHEAD = journal.VALUE_LEN.size
_RECORD_OVERHEAD = framing.OVERHEAD + HEAD.size
_is_int = memory.listpack_int  # Redis's isSdsRepresentableAsLongLong: strict decimal within int64


def is_integer(member: bytes) -> bool:
    """Whether an intset can hold ``member`` (Redis's test: strict decimal, no sign '+', no leading zero, int64)."""
    return _is_int(member) is not None


def fits_intset(members: Iterable[bytes], size: int, max_entries: int) -> bool:
    """Whether Redis would hold a set of ``size`` members, all of ``members``, built member by member, as an
    intset under ``max_entries`` (set-max-intset-entries)."""
    return size <= min(max_entries, INTSET_CAP) and all(_is_int(member) is not None for member in members)


def _journal_growth(members: Collection[bytes]) -> int:
    return _RECORD_OVERHEAD + sum(map(len, members)) + _VALUE_OVERHEAD * len(members)


class SetValue(Value):
    """One set key and its catalog entry. ``members`` holds the members (a sorted list while small, else a set:
    iterate it, or ask the value for membership); ``hashtable`` is Redis's encoding."""

    __slots__ = ("_port", "hashtable", "members", "qid")
    type = "set"

    def __init__(self, port: StorePort, qid: int) -> None:
        super().__init__()
        self._port = port
        self.qid = qid
        self.members: list[bytes] | set[bytes] = []
        self.hashtable = False  # Redis's encoding: False while it would still be an intset
        port.inline_changed(SET_OVERHEAD)

    def __repr__(self) -> str:
        return f"SetValue(qid={self.qid}, members={len(self.members)}, {self.encoding().decode()})"

    # -- reads (the contract other types rely on: len, iteration, membership)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member: object) -> bool:
        members = self.members
        if type(members) is list:
            index = bisect_left(members, member)  # type: ignore[call-overload]
            return index < len(members) and members[index] == member
        return member in members

    def __iter__(self) -> Iterator[bytes]:
        """The members in Redis's order where it is observable: an intset's is numeric; a hash table's is its own
        (here the Python set's)."""
        if self.hashtable:
            return iter(self.members)
        return iter(sorted(self.members, key=int))

    def ordered(self) -> list[bytes]:
        return list(self)

    def pick(self) -> bytes:
        """One random member (the set must not be empty). A Python set has no random access: up to
        RANDOM_WALK_LIMIT members this walks to a random index (O(N)); past it, it takes the table's next member
        from where the last pick left off (O(1); the order of a per-process salted hash, not a fresh draw)."""
        members = self.members
        if type(members) is list:
            return members[random.randrange(len(members))]
        if len(members) <= RANDOM_WALK_LIMIT:
            return next(islice(members, random.randrange(len(members)), None))
        member = members.pop()  # CPython's pop moves a finger through the table; adding it back refills its slot
        members.add(member)
        return member

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """SSCAN's walk: (next cursor, members). An intset answers whole with cursor 0, as Redis does. A hashtable
        is visited in the order of a 32-bit hash of each member, the cursor being the next hash value to visit, so a
        member present for the whole walk is returned at least once. O(N) per call."""
        if not self.hashtable:
            return 0, self.ordered()
        pending = [(h, member) for member in self.members if (h := crc32(member)) >= cursor]
        if len(pending) <= count:
            return 0, [member for _, member in sorted(pending)]
        batch = heapq.nsmallest(count, pending)
        last = batch[-1][0]
        # Members sharing the last hash all go into this batch, since the next cursor starts past that hash.
        taken = {member for _, member in batch}
        batch += [(h, member) for h, member in pending if h == last and member not in taken]
        return (last + 1) % (1 << 32), [member for _, member in batch]

    def encoding(self) -> bytes:
        """What OBJECT ENCODING answers on Redis 7.0 for the same history of writes."""
        return HASHTABLE if self.hashtable else INTSET

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for the same set. An intset: the object and the intset's allocation (its integer
        width taken from the members held now; Redis keeps the widest it ever held). A hashtable: the object, the
        dict and its bucket array (as grown one member at a time), and the first ``samples`` members (0: all)
        averaged over all of them."""
        members = self.members
        if not self.hashtable:
            width = 2
            for member in members:
                number = int(member)
                if not -(1 << 31) <= number < 1 << 31:
                    width = 8
                    break
                if not -(1 << 15) <= number < 1 << 15:
                    width = 4
            return memory.ROBJ + memory.malloc_size(INTSET_HEADER + width * len(members))
        size = memory.ROBJ + DICT_STRUCT + 8 * _dict_slots(len(members))
        taken = list(islice(members, samples or None))
        if taken:
            measured = sum(memory.sds_size(len(member)) + memory.DICT_ENTRY for member in taken)
            size = int(size + measured / len(taken) * len(members))
        return size

    # -- writes (``port.before_write`` first, then the change, then its journal record)

    def add_many(self, members: Iterable[bytes], max_entries: int = INTSET_ENTRIES) -> int:
        """Adds the members (each once however often given); returns how many are new. ``max_entries`` is the
        configured set-max-intset-entries: a set outgrowing it, or given a member that is not an integer, becomes a
        hashtable, as Redis converts it."""
        holds = self.__contains__
        new = [member for member in dict.fromkeys(members) if not holds(member)]
        if not new:
            return 0
        port = self._port
        port.before_write(_journal_growth(new) if port.maxdisk else 0)
        self._add(new)
        if not self.hashtable and not fits_intset(new, len(self.members), max_entries):
            self.hashtable = True
        port.log(OP_SADD, HEAD.pack(self.qid, self.hashtable) + journal.encode_values(new))
        return len(new)

    def _add(self, new: list[bytes]) -> None:
        """Adds members that are not members yet."""
        members = self.members
        if type(members) is list:
            if len(members) + len(new) <= SMALL_SET:
                if len(new) > 4:
                    members += new
                    members.sort()
                else:
                    for member in new:
                        insort(members, member)
                self._port.inline_changed(sum(map(len, new)) + MEMBER_OVERHEAD * len(new))
                return
            self.members = members = set(members)
        members.update(new)
        if len(members) <= _SMALL_GROWTH and sys.getsizeof(members) > _SET_BASE + 64 * len(members):
            # CPython grows a small set's table fourfold: past 4 slots per member a copy sized for what it holds
            # halves it (e.g. 84 -> 43 bytes per member at 100 members).
            self.members = members.copy()
        self._port.inline_changed(sum(map(len, new)) + MEMBER_OVERHEAD * len(new))

    def remove_many(self, members: Iterable[bytes], *, hashtable: bool | None = None) -> list[bytes]:
        """Removes the members present (each once however often given); returns them. The caller deletes the key
        when the set is left empty, as Redis does. ``hashtable``: the encoding after the removal where the command
        builds the set anew (SPOP); otherwise it stays."""
        holds = self.__contains__
        present = [member for member in dict.fromkeys(members) if holds(member)]
        if not present:
            return present
        port = self._port
        port.before_write(_journal_growth(present) if port.maxdisk else 0)
        self._remove(present)
        if hashtable is not None:
            self.hashtable = hashtable
        port.log(OP_SREM, HEAD.pack(self.qid, self.hashtable) + journal.encode_values(present))
        return present

    def _remove(self, present: list[bytes]) -> None:
        """Removes members that are members."""
        members = self.members
        if type(members) is list:
            for member in present:
                del members[bisect_left(members, member)]
        else:
            members.difference_update(present)
        # A CPython set never shrinks its table: copy it once it is mostly empty.
        if type(members) is set and sys.getsizeof(members) > _SET_BASE + 128 * len(members):
            self.members = members.copy()
        self._port.inline_changed(-(sum(map(len, present)) + MEMBER_OVERHEAD * len(present)))

    # -- persistence

    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        given = journal.decode_values(payload, HEAD.size)
        holds = self.__contains__
        if op == OP_SADD:
            self._add([member for member in dict.fromkeys(given) if not holds(member)])
        elif op == OP_SREM:
            self._remove([member for member in dict.fromkeys(given) if holds(member)])
        else:
            raise ValueError(f"unknown set operation {op}")
        self.hashtable = bool(payload[QID.size])

    def dump(self) -> bytes:
        return STATE_HEAD.pack(self.hashtable) + journal.encode_values(list(self.members))

    @classmethod
    def load(cls, port: StorePort, qid: int, state: bytes | memoryview) -> SetValue:
        value = cls(port, qid)
        value.hashtable = bool(STATE_HEAD.unpack_from(state, 0)[0])
        members = journal.decode_values(state, STATE_HEAD.size)
        if len(set(members)) != len(members):
            raise ValueError("a set state holds a member twice")
        value._add(members)
        return value

    def files(self) -> set[int]:
        return set()  # held in memory: the journal and the manifest hold it on disk

    def drop(self) -> None:
        held = self.inline_size()
        self.members = []
        self._port.inline_changed(-held)

    def inline_size(self) -> int:
        """What the set counts towards maxmemory (its share of the engine's ``inline_bytes``)."""
        members = self.members
        return SET_OVERHEAD + sum(map(len, members)) + MEMBER_OVERHEAD * len(members)


def _dict_slots(used: int) -> int:
    """Buckets of a Redis dict holding ``used`` entries that grew one at a time: a power of two, at least 4."""
    slots = 4
    while slots < used:
        slots *= 2
    return slots


class SetType(ValueType):
    """Sets: held in memory, journaled as the members added and removed, dumped whole into the manifest."""

    name = "set"
    code = 5
    ops = (OP_SADD, OP_SREM)
    deletes_when_empty = True  # Redis deletes a set with its last member

    def create(self, port: StorePort, qid: int) -> SetValue:
        return SetValue(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        assert isinstance(value, SetValue)
        return rewrite_batches([b"SADD", key], [(member,) for member in value.ordered()])

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> SetValue:
        return SetValue.load(port, qid, state)

    def copy(self, port: StorePort, value: Value, qid: int) -> SetValue:
        """COPY: a new set under queue id ``qid`` with ``value``'s members and encoding (Redis's setTypeDup keeps
        an intset an intset), journaled as one OP_SADD after the CREATE the caller journals in the same block."""
        assert isinstance(value, SetValue)
        members = list(value.members)
        port.before_write(_journal_growth(members) if port.maxdisk else 0)
        new = SetValue(port, qid)
        new._add(members)
        new.hashtable = value.hashtable
        port.log(OP_SADD, HEAD.pack(qid, new.hashtable) + journal.encode_values(members))
        return new


SET = SetType()
SetValue.vtype = SET


def new_set(
    port: StorePort, db: int, key: bytes, members: Collection[bytes], max_entries: int = INTSET_ENTRIES
) -> SetValue:
    """Creates ``key`` (which must not exist) holding ``members``: one atomic batch for both, so a crash never
    leaves the key empty; refused as a whole, before anything changes, for a full disk."""
    if port.maxdisk:
        port.before_write(len(key) + 64 + _journal_growth(members))
    with port.atomic():
        value: SetValue = port.create(db, key, SET.name)  # type: ignore[assignment]
        value.add_many(members, max_entries)
    return value
