"""A sorted set: its members held in memory, every change journaled as the scores it sets or the members it removes.

Two structures hold the same members: ``scores`` (member -> score, for ZSCORE and updates) and ``index``, a
``sortedcontainers.SortedList`` of (score, member) tuples sharing the member and score objects (up to SMALL_ZSET
members a ``SmallIndex``: the same order as a list of members and an array of scores), in Redis's order
(score, then the member's bytes as memcmp compares them, shorter first on a common prefix: Python's bytes order).
Redis's encoding (``listpack`` while the set is small, ``skiplist`` once it has outgrown zset-max-listpack-entries /
zset-max-listpack-value, never back except when a STORE writes a new value) is one flag, journaled and kept in the
manifest state, so that a restart reports what the running server did.

Journal: OP_ZADD (queue id, the encoding after the write, then the count, the scores as 8-byte doubles and the members
as ``journal.encode_values``): the scores set, ZINCRBY included (the new score, so replay never adds); OP_ZREM (queue
id, then the members removed). The manifest state is the encoding flag, then every member and score in order laid
out as in OP_ZADD.
"""

from __future__ import annotations

import heapq
import math
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from zlib import crc32

from sortedcontainers import SortedList

from respq.storage import framing, journal
from respq.storage.port import StorePort, Value, ValueType, rewrite_batches
from respq.types import memory

# Journal record types of sorted sets (80-89 are the sorted set type's). Part of the on-disk format: never renumber.
OP_ZADD = 80
OP_ZREM = 81

QID = struct.Struct("<Q")
ZADD_HEAD = struct.Struct("<QB")  # queue id, 1 once the sorted set is a skiplist
STATE_HEAD = struct.Struct("<B")  # 1: skiplist
COUNT = struct.Struct("<I")

# What respq holds in memory beyond the members' bytes, reported through ``StorePort.inline_changed`` (maxmemory):
# per sorted set its object, its dict and its SortedList; per member the bytes object's header, the float, the
# dict's entry, the (score, member) tuple and its slot in the SortedList.
ZSET_OVERHEAD = 600
MEMBER_OVERHEAD = 190

# Members up to which the order is a SmallIndex (two columns) rather than a SortedList of (score, member) tuples.
SMALL_ZSET = 128

# Redis 7.0's defaults for zset-max-listpack-entries and zset-max-listpack-value.
LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64

LISTPACK = b"listpack"
SKIPLIST = b"skiplist"
_RECORD_OVERHEAD = framing.OVERHEAD + ZADD_HEAD.size
_PAIR_OVERHEAD = journal.VALUE_LEN.size + 8  # a member's length, and its score
# MEMORY USAGE figures of Redis 7.0's skiplist encoding: the zset struct and its dict, the skiplist header node
# (32 levels), and per member a skiplist node (with ~1.33 levels on average) and a dict entry.
_ZSET_STRUCT = 16 + 56 + 32
_ZSL_HEADER = memory.malloc_size(24 + 32 * 16)
# A node's allocation on average: member, score and backward pointers, and 16 bytes per level, levels drawn with
# p = 1/4 (48 bytes for one level, 64 for two, ...).
_ZSL_NODE_AVERAGE = 53


def pack_pairs(pairs: Sequence[tuple[bytes, float]]) -> bytes:
    """Members and scores as journaled and dumped: the count, every score as a little-endian double, then the members
    (``journal.encode_values``)."""
    return pack_columns([member for member, _ in pairs], [score for _, score in pairs])


def pack_columns(members: list[bytes], scores: list[float]) -> bytes:
    """``pack_pairs`` from the members and the scores apart: a dump builds no object per member (a checkpoint of a
    large sorted set would leave the allocator's pools full of freed ones, which the process keeps)."""
    return COUNT.pack(len(members)) + struct.pack(f"<{len(scores)}d", *scores) + journal.encode_values(members)


def unpack_pairs(data: bytes | memoryview, offset: int) -> list[tuple[bytes, float]]:
    (count,) = COUNT.unpack_from(data, offset)
    offset += COUNT.size
    scores = struct.unpack_from(f"<{count}d", data, offset)
    members = journal.decode_values(data, offset + 8 * count)
    if len(members) != count:
        raise ValueError("a sorted set record holds members and scores of different counts")
    return list(zip(members, scores, strict=True))


class SmallIndex:
    """The (score, member) order of a small sorted set as two parallel columns, the members in a list and the scores
    in an array of doubles, with the part of SortedList's interface the sorted set uses: no tuple per member (56
    bytes each), and bisection in C. Past SMALL_ZSET members the sorted set moves to a SortedList."""

    __slots__ = ("members", "values")

    def __init__(self, items: Iterable[tuple[float, bytes]] = ()) -> None:
        ordered = sorted(items)
        self.members = [member for _, member in ordered]
        self.values = array("d", [score for score, _ in ordered])

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        return zip(self.values, self.members, strict=True)

    def __reversed__(self) -> Iterator[tuple[float, bytes]]:
        return zip(reversed(self.values), reversed(self.members), strict=True)

    def __getitem__(self, rank: int) -> tuple[float, bytes]:
        return self.values[rank], self.members[rank]

    def islice(self, start: int | None = None, stop: int | None = None, reverse: bool = False) -> Iterator[Any]:
        ranks = slice(start, stop)
        items = list(zip(self.values[ranks], self.members[ranks], strict=True))
        if reverse:
            items.reverse()
        return iter(items)

    def bisect_left(self, key: tuple[Any, ...]) -> int:
        """The first rank at or above ``key``: (score,) or (score, member)."""
        values = self.values
        score = key[0]
        low = bisect_left(values, score)
        if len(key) == 1:
            return low
        return bisect_left(self.members, key[1], low, bisect_right(values, score, low))

    def add(self, item: tuple[float, bytes]) -> None:
        rank = self.bisect_left(item)
        self.values.insert(rank, item[0])
        self.members.insert(rank, item[1])

    def remove(self, item: tuple[float, bytes]) -> None:
        rank = self.bisect_left(item)
        if rank == len(self.members) or self.members[rank] != item[1]:
            raise ValueError(f"{item!r} not in the index")
        del self.values[rank]
        del self.members[rank]

    def pop(self, rank: int = -1) -> tuple[float, bytes]:
        return self.values.pop(rank), self.members.pop(rank)


def _index_of(items: Iterable[tuple[float, bytes]], size: int) -> Any:
    """The order of ``size`` (score, member) items: a SmallIndex while small, else a SortedList."""
    return SmallIndex(items) if size <= SMALL_ZSET else SortedList(items)


class ZSetValue(Value):
    """One sorted set key and its catalog entry."""

    __slots__ = ("_port", "index", "qid", "scores", "skiplist")
    type = "zset"

    def __init__(self, port: StorePort, qid: int) -> None:
        super().__init__()
        self._port = port
        self.qid = qid
        self.scores: dict[bytes, float] = {}
        self.index: Any = SmallIndex()  # (score, member) in Redis's order: a SmallIndex, or a SortedList once large
        self.skiplist = False  # Redis's encoding: False while it would still be a listpack
        port.inline_changed(ZSET_OVERHEAD)

    def __repr__(self) -> str:
        return f"ZSetValue(qid={self.qid}, members={len(self.scores)}, {self.encoding().decode()})"

    # -- reads

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[bytes]:
        """Members in order (SORT reads them so)."""
        return (member for _, member in self.index)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def range(self, start: int, end: int) -> list[bytes]:
        """Members of ranks ``start`` to ``end`` inclusive (SORT with a constant BY)."""
        return [member for _, member in self.index.islice(start, end + 1)]

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        return None if score is None else self.index.bisect_left((score, member))

    def by_rank(self, start: int, stop: int, reverse: bool = False) -> list[tuple[float, bytes]]:
        """(score, member) of ranks start to stop - 1 (clamped to the set), highest rank first when ``reverse``."""
        start = max(start, 0)
        if stop <= start:
            return []
        return list(self.index.islice(start, stop, reverse=reverse))

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """ZSCAN's walk: (next cursor, members). A listpack answers whole with cursor 0, as Redis does. A skiplist
        is visited in the order of a 32-bit hash of each member, the cursor being the next hash value to visit, so
        a member present for the whole walk is returned at least once however members come and go. O(N) per
        call."""
        if not self.skiplist:
            return 0, [member for _, member in self.index]
        pending = [(h, member) for member in self.scores if (h := crc32(member)) >= cursor]
        if len(pending) <= count:
            return 0, [member for _, member in sorted(pending)]
        batch = heapq.nsmallest(count, pending)
        last = batch[-1][0]
        taken = {member for _, member in batch}  # members sharing the last hash all go into this batch
        batch += [(h, member) for h, member in pending if h == last and member not in taken]
        return (last + 1) % (1 << 32), [member for _, member in batch]

    def score_bounds(self, low: float, low_ex: bool, high: float, high_ex: bool) -> tuple[int, int]:
        """The ranks [start, stop) whose scores are within the bounds (``_ex``: exclusive)."""
        index = self.index
        # A tuple (score,) sorts before every (score, member): the first rank at or above a score.
        start = _first_above(index, low) if low_ex else index.bisect_left((low,))
        stop = index.bisect_left((high,)) if high_ex else _first_above(index, high)
        return start, max(start, stop)

    def lex_bounds(
        self, low: bytes | None, low_ex: bool, high: bytes | None, high_ex: bool, reverse: bool = False
    ) -> tuple[int, int]:
        """The ranks [start, stop) a lex range selects (None: - or +). Lex ranges are meant for sorted sets whose
        scores are all equal, members then in byte order: found by bisection. Otherwise Redis's listpack walk:
        nothing unless the last member is past the low bound and the first within the high one; then from the
        first member past the low bound while within the high one (``reverse``: from the last member within the
        high bound, back while past the low one)."""
        index = self.index
        size = len(index)
        if not size:
            return 0, 0
        if index[0][0] == index[-1][0]:
            start = 0 if low is None else self._lex_search(low, low_ex)
            stop = size if high is None else self._lex_search(high, not high_ex)
            return start, max(start, stop)

        def above_low(member: bytes) -> bool:
            return low is None or member > low or (not low_ex and member == low)

        def below_high(member: bytes) -> bool:
            return high is None or member < high or (not high_ex and member == high)

        members = [member for _, member in index]
        if not above_low(members[-1]) or not below_high(members[0]):
            return 0, 0
        if reverse:
            stop = next(i for i in range(size - 1, -1, -1) if below_high(members[i])) + 1
            start = stop
            while start > 0 and above_low(members[start - 1]):
                start -= 1
            return start, stop
        start = next(i for i in range(size) if above_low(members[i]))
        stop = start
        while stop < size and below_high(members[stop]):
            stop += 1
        return start, stop

    def _lex_search(self, bound: bytes, past_equal: bool) -> int:
        """The first rank whose member is above ``bound`` (``past_equal``) or at least ``bound``."""
        index = self.index
        lo, hi = 0, len(index)
        while lo < hi:
            mid = (lo + hi) // 2
            member = index[mid][1]
            if member < bound or (past_equal and member == bound):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def encoding(self) -> bytes:
        return SKIPLIST if self.skiplist else LISTPACK

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for the same sorted set: a listpack's allocation (member and score entries), or
        the skiplist's structures plus its members sampled as Redis does (the first ``samples``, 0: all)."""
        if not self.skiplist:
            entry = memory.listpack_entry
            entries = sum(entry(member) + entry(format_score(score)) for member, score in self.scores.items())
            return memory.ROBJ + memory.malloc_size(memory.LISTPACK_EMPTY + entries)
        count = len(self.scores)
        size = memory.ROBJ + _ZSET_STRUCT + _ZSL_HEADER + 8 * _dict_slots(count)
        taken = list(self.index.islice(0, samples or None))
        if taken:
            node = _ZSL_NODE_AVERAGE
            measured = sum(memory.sds_size(len(m)) + node + memory.DICT_ENTRY for _, m in taken)
            size = int(size + measured / len(taken) * count)
        return size

    # -- writes (``port.before_write`` first, then the change, then its journal record)

    def set_scores(
        self, pairs: Sequence[tuple[bytes, float]], max_entries: int = LISTPACK_ENTRIES,
        max_value: int = LISTPACK_VALUE,
    ) -> None:
        """Sets each member's score (adding the new ones). ``max_entries``/``max_value`` are the configured
        zset-max-listpack-entries / -value: a sorted set outgrowing them becomes a skiplist, as Redis converts it
        when it inserts a member."""
        if not pairs:
            return
        port = self._port
        if port.maxdisk:
            port.before_write(_RECORD_OVERHEAD + sum(len(m) + _PAIR_OVERHEAD for m, _ in pairs))
        if not self.skiplist:
            pairs = self._as_listpack(pairs, max_entries, max_value)
        self._update(pairs)
        port.log(OP_ZADD, ZADD_HEAD.pack(self.qid, self.skiplist) + pack_pairs(pairs))

    def _as_listpack(
        self, pairs: Sequence[tuple[bytes, float]], max_entries: int, max_value: int
    ) -> Sequence[tuple[bytes, float]]:
        """The pairs as a listpack takes them one by one: scores set while it is still one keep -0 as 0 (Redis
        writes it there as the integer 0); the first new member past a limit turns it into a skiplist for good."""
        scores = self.scores
        count = len(scores)
        added: set[bytes] = set()
        for at, (member, _) in enumerate(pairs):
            if member not in scores and member not in added:
                if count + 1 > max_entries or len(member) > max_value:
                    self.skiplist = True
                    return [*_listpack_scores(pairs[:at]), *pairs[at:]]
                count += 1
                added.add(member)
        return _listpack_scores(pairs)

    def _update(self, pairs: Iterable[tuple[bytes, float]]) -> None:
        scores = self.scores
        index = self.index
        grown = 0
        for member, score in pairs:
            old = scores.get(member)
            if old is None:
                grown += len(member) + MEMBER_OVERHEAD
            else:
                if old == score:
                    continue  # as Redis: an equal score (0 and -0 alike) leaves the member as it was
                index.remove((old, member))
            scores[member] = score
            index.add((score, member))
        if grown:
            if type(index) is SmallIndex and len(scores) > SMALL_ZSET:
                self.index = SortedList(index)
            self._port.inline_changed(grown)

    def remove(self, members: Iterable[bytes]) -> list[bytes]:
        """Removes the members present (each once however often given); returns them. The caller deletes the key
        when the sorted set is left empty, as Redis does."""
        scores = self.scores
        present = [member for member in dict.fromkeys(members) if member in scores]
        if not present:
            return present
        port = self._port
        if port.maxdisk:
            port.before_write(framing.OVERHEAD + QID.size + sum(len(m) + 4 for m in present))
        self._delete(present)
        port.log(OP_ZREM, QID.pack(self.qid) + journal.encode_values(present))
        return present

    def pop(self, count: int, highest: bool) -> list[tuple[float, bytes]]:
        """Removes and returns ``count`` (score, member) (fewer than the set holds) from the low end, or from the
        high one, highest first; journaled as the members removed."""
        port = self._port
        index, scores = self.index, self.scores
        if port.maxdisk:
            port.before_write(framing.OVERHEAD + QID.size + sum(len(m) + 4 for _, m in self.by_rank(0, count)))
        taken = [index.pop() for _ in range(count)] if highest else [index.pop(0) for _ in range(count)]
        members = [member for _, member in taken]
        for member in members:
            del scores[member]
        port.inline_changed(-(sum(map(len, members)) + MEMBER_OVERHEAD * len(members)))
        port.log(OP_ZREM, QID.pack(self.qid) + journal.encode_values(members))
        return taken

    def _delete(self, present: list[bytes]) -> None:
        scores = self.scores
        index = self.index
        freed = 0
        if len(present) > 64 and len(present) * 4 > len(scores):
            for member in present:
                del scores[member]
                freed += len(member) + MEMBER_OVERHEAD
            self.index = _index_of(((score, member) for member, score in scores.items()), len(scores))
        else:
            for member in present:
                index.remove((scores.pop(member), member))
                freed += len(member) + MEMBER_OVERHEAD
        self._port.inline_changed(-freed)

    # -- persistence

    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        if op == OP_ZADD:
            self._update(unpack_pairs(payload, ZADD_HEAD.size))
            if payload[QID.size]:
                self.skiplist = True
        elif op == OP_ZREM:
            scores = self.scores
            removed = dict.fromkeys(journal.decode_values(payload, QID.size))
            self._delete([member for member in removed if member in scores])
        else:
            raise ValueError(f"unknown sorted set operation {op}")

    def dump(self) -> bytes:
        index = self.index
        return STATE_HEAD.pack(self.skiplist) + pack_columns([m for _, m in index], [s for s, _ in index])

    @classmethod
    def load(cls, port: StorePort, qid: int, state: bytes | memoryview) -> ZSetValue:
        value = cls(port, qid)
        value.skiplist = bool(STATE_HEAD.unpack_from(state, 0)[0])
        value.fill(unpack_pairs(state, STATE_HEAD.size))
        return value

    def fill(self, pairs: list[tuple[bytes, float]]) -> None:
        """An empty value filled at once (load, COPY, STORE): one build of the index instead of one insert each."""
        assert not self.scores
        scores = self.scores
        scores.update(pairs)
        self.index = _index_of(((score, member) for member, score in scores.items()), len(scores))
        self._port.inline_changed(sum(map(len, scores)) + MEMBER_OVERHEAD * len(scores))

    def files(self) -> set[int]:
        return set()  # held in memory: the journal and the manifest hold it on disk

    def drop(self) -> None:
        held = self.inline_size()
        self.scores = {}
        self.index = SmallIndex()
        self._port.inline_changed(-held)

    def inline_size(self) -> int:
        """What the sorted set counts towards maxmemory (its share of the engine's ``inline_bytes``)."""
        scores = self.scores
        return ZSET_OVERHEAD + sum(map(len, scores)) + MEMBER_OVERHEAD * len(scores)


def _first_above(index: Any, score: float) -> int:
    """The first rank whose score is greater than ``score``: the first at or above the next double."""
    if score == math.inf:
        return len(index)
    return int(index.bisect_left((math.nextafter(score, math.inf),)))


def _listpack_scores(pairs: Sequence[tuple[bytes, float]]) -> list[tuple[bytes, float]]:
    """Scores as a listpack keeps them: Redis writes -0 there as the integer 0 (the only score it does not keep
    exactly), so adding 0.0 (which turns -0.0 into 0.0 and leaves every other double as it is) does the same."""
    return [(member, score + 0.0) for member, score in pairs]


def format_score(score: float) -> bytes:
    """A score as Redis 7.0 prints it (``%.17g``, infinities spelled out)."""
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return b"%.17g" % score


def _dict_slots(used: int) -> int:
    slots = 4
    while slots < used:
        slots *= 2
    return slots


class ZSetType(ValueType):
    """Sorted sets: held in memory, journaled as the scores set and the members removed, dumped whole into the
    manifest."""

    name = "zset"
    code = 6
    ops = (OP_ZADD, OP_ZREM)
    deletes_when_empty = True  # Redis deletes a sorted set with its last member

    def create(self, port: StorePort, qid: int) -> ZSetValue:
        return ZSetValue(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        assert isinstance(value, ZSetValue)
        pairs = [(format_score(score), member) for score, member in value.by_rank(0, len(value))]
        return rewrite_batches([b"ZADD", key], pairs)

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> ZSetValue:
        return ZSetValue.load(port, qid, state)

    def copy(self, port: StorePort, value: Value, qid: int) -> ZSetValue:
        """COPY: a new sorted set under queue id ``qid`` with ``value``'s members and encoding, journaled as one
        OP_ZADD after the key's creation (journaled by the caller in the same atomic block)."""
        assert isinstance(value, ZSetValue)
        pairs = list(value.scores.items())
        port.before_write(_RECORD_OVERHEAD + sum(len(m) + _PAIR_OVERHEAD for m, _ in pairs) if port.maxdisk else 0)
        new = ZSetValue(port, qid)
        new.fill(pairs)
        new.skiplist = value.skiplist
        port.log(OP_ZADD, ZADD_HEAD.pack(qid, new.skiplist) + pack_pairs(pairs))
        return new


ZSET = ZSetType()
ZSetValue.vtype = ZSET


def store_zset(
    port: StorePort, value: ZSetValue, pairs: list[tuple[bytes, float]], max_entries: int, max_value: int
) -> None:
    """Fills a new, empty ``value`` (a STORE's destination) with ``pairs``, the encoding chosen as Redis chooses it
    for a result: a listpack when it fits both limits. One journal record."""
    if port.maxdisk:
        port.before_write(_RECORD_OVERHEAD + sum(len(m) + _PAIR_OVERHEAD for m, _ in pairs))
    skiplist = len(pairs) > max_entries or (bool(pairs) and max(len(m) for m, _ in pairs) > max_value)
    if not skiplist:
        pairs = _listpack_scores(pairs)
    value.fill(pairs)
    value.skiplist = skiplist
    port.log(OP_ZADD, ZADD_HEAD.pack(value.qid, value.skiplist) + pack_pairs(pairs))


def new_zset(
    port: StorePort, db: int, key: bytes, pairs: Sequence[tuple[bytes, float]], max_entries: int, max_value: int
) -> ZSetValue:
    """Creates ``key`` (which must not exist) holding ``pairs``: one atomic block, so a crash never leaves the key
    empty; refused as a whole, before anything changes, for a full disk."""
    if port.maxdisk:
        port.before_write(len(key) + 64 + _RECORD_OVERHEAD + sum(len(m) + _PAIR_OVERHEAD for m, _ in pairs))
    with port.atomic():
        value: ZSetValue = port.create(db, key, ZSET.name)  # type: ignore[assignment]
        value.set_scores(pairs, max_entries, max_value)
    return value


__all__ = ["ZSET", "ZSetType", "ZSetValue", "format_score", "new_zset", "store_zset"]
