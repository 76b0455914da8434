"""A queue workload driven straight through the engine API, with an exact model of what it was told.

Acknowledgement is what the server does before a reply goes out: ``flush()`` then ``sync(lsn)``. Each queue has
one push side and pops from the other (FIFO); LMOVE takes from a queue's pop side to the right of ``moved:<queue>``.
Beside the lists, one stream with one consumer group: XADD (one entry per call, or a pipelined run through
``add_many``), XREADGROUP, XACK, exact XTRIM and DEL. Its state is modelled as three more "lists" (``STREAM``
entries, its pending entries, its group's last delivered ID), so the same prefix check covers it. And two hashes:
HSET (creating them), HDEL (deleting them with their last field), some values long enough to make a hashtable;
each is modelled as the list of its ``field=value`` items in order. And four string keys: SET (with or without an
expiry, as the server writes it: the new contents and the expiry change in one atomic block), APPEND, SETRANGE,
MSET (one atomic block over several keys), EXPIRE/PERSIST, RENAME, COPY and DEL; each is modelled as
``[b"=" + contents]`` followed by ``b"@<expiry ms>"`` when it has one.

And three sets (SADD; SREM and SPOP, the latter sometimes keeping the rest in a new set; SMOVE and the STORE forms,
each one atomic block over its keys), modelled as their encoding then their members sorted; and three sorted sets
(scores set, by ZADD or ZINCRBY; members removed; pops from either end; ZUNIONSTORE over sorted sets and a set, and
ZRANGESTORE, replacing the destination in one atomic block), modelled as their encoding then ``score=member`` in
order. Their limits (set-max-intset-entries, zset-max-listpack-*) are small so that conversions happen.

Streams, hashes, strings, sets and sorted sets are the rows of ``SIM_TYPES``: each says how often a step is its
own, which operations and model keys are its, how to step, apply an operation to the model and read a value back.
Their keys are checked by the prefix check only (the recovered state must be the state after the acknowledged
operations and some prefix of the unacknowledged ones), the lists' by the history check too. A new type is a new
row.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from respq.storage import Engine
from respq.types.hashes.model import HashValue, new_hash
from respq.types.lists.model import LEFT, RIGHT, Side, push_keys
from respq.types.sets.model import SetValue, is_integer, new_set
from respq.types.streams.model import MAX_ID, MAXLEN, StreamLog, id_of
from respq.types.strings.model import StringValue
from respq.types.zsets.model import ZSetValue, new_zset, store_zset
from tests.bigvalues import show
from tests.crash.model import SIZE_MIXES, Direction, History, SizeMix, check_recovery, message

DB = 0
# ("push", key, side, values) | ("pop", key, side, values) | ("move", src, dst, side, value)
# | ("xadd", [(ms, value), ...]) | ("xread", consumer, [ms, ...]) | ("xack", [ms, ...]) | ("xtrim", maxlen) | ("xdel",)
Op = tuple
STREAM = b"s"
PENDING = b"s|pending"  # "<ms>@<consumer>" of each pending entry, in ID order
DELIVERED = b"s|delivered"  # the group's last delivered ID, while above 0
GROUP = b"g"
CONSUMERS = (b"c0", b"c1")
STREAM_KEYS = (STREAM, PENDING, DELIVERED)
HASHES = (b"h0", b"h1")
HASH_FIELDS = (b"f0", b"f1", b"f2", b"f3", b"f4", b"f5")
STRINGS = (b"str0", b"str1", b"str2", b"str3")
STRING_LIMIT = 1 << 18  # bytes a string grows to before it is SET anew
FAR_EXPIRY = 4_000_000_000_000  # ms since the epoch: an expiry the engine keeps (it never expires keys itself)
# The operations of each type beside the lists (the first item of an Op).
STREAM_OPS = ("xadd", "xread", "xack", "xtrim", "xdel")
HASH_OPS = ("hset", "hdel")
STRING_OPS = ("set", "append", "setrange", "mset", "expire", "srename", "scopy", "sdel")
SETS = (b"set0", b"set1", b"set2")
SET_POOL = (b"1", b"2", b"-7", b"10", b"m", b"", b"\x00", b"id-" + b"y" * 33)
SET_MAX_INTSET = 4  # set-max-intset-entries: small, so that sets convert as they grow
SET_OPS = ("sadd", "srem", "smove", "sstore")
INTSET, HASHTABLE = b"#intset", b"#hashtable"  # a set's first model item: its encoding
ZSETS = (b"z0", b"z1", b"z2")
ZSET_POOL = (b"a", b"b", b"c", b"d", b"e", b"10", b"id-" + b"z" * 33)
ZSET_SCORES = (0.0, 1.0, 2.5, -1.0, 7.0, 0.25)
ZSET_ENTRIES, ZSET_VALUE = 5, 16  # zset-max-listpack-entries and -value: small, so that sorted sets convert
ZSET_OPS = ("zadd", "zrem", "zpop", "zstore")
LISTPACK, SKIPLIST = b"#listpack", b"#skiplist"  # a sorted set's first model item: its encoding


def hash_item(field: bytes, value: bytes) -> bytes:
    return field + b"=" + value


def stream_entry(ms: int, value: bytes) -> bytes:
    return b"%020d=%s" % (ms, value)


def entry_ms(entry: bytes) -> int:
    return int(entry[:20])


def queue_key(index: int) -> bytes:
    return b"q%d" % index


def moved_key(queue: bytes) -> bytes:
    return b"moved:" + queue


def push_side(queue: bytes) -> Side:
    return RIGHT if int(queue[1:]) % 2 == 0 else LEFT


def directions(queues: int) -> dict[bytes, Direction]:
    result: dict[bytes, Direction] = {}
    for index in range(queues):
        key = queue_key(index)
        result[key] = 1 if push_side(key) == RIGHT else -1
        result[moved_key(key)] = 1
    return result


def shown(values: list[bytes]) -> str:
    return "[" + ", ".join(map(show, values)) + "]"


def read_all(engine: Engine) -> dict[bytes, list[bytes]]:
    """Every list, head to tail, and the stream as its three model keys; empty ones count as absent (the server
    deletes empty lists)."""
    state = {}
    for key in engine.keys(DB):
        entry = engine.get(DB, key)
        assert entry is not None
        sim = next((sim for sim in SIM_TYPES if isinstance(entry, sim.value_class)), None)
        if sim is not None:
            state.update(sim.read(key, entry))
            continue
        values = list(entry.value)
        if values:
            state[key] = values
    return state


def read_hash(key: bytes, value: HashValue) -> dict[bytes, list[bytes]]:
    return {key: [hash_item(field, value) for field, value in value.items()]} if len(value) else {}


def read_string(key: bytes, value: StringValue) -> dict[bytes, list[bytes]]:
    expiry = [] if value.expire_ms is None else [b"@%d" % value.expire_ms]
    return {key: [b"=" + value.data, *expiry]}


def read_set(key: bytes, value: SetValue) -> dict[bytes, list[bytes]]:
    return {key: [HASHTABLE if value.hashtable else INTSET, *sorted(value.members)]} if len(value) else {}


def zset_item(member: bytes, score: float) -> bytes:
    return repr(score).encode() + b"=" + member


def read_zset(key: bytes, value: ZSetValue) -> dict[bytes, list[bytes]]:
    items = [zset_item(member, score) for score, member in value.index]
    return {key: [SKIPLIST if value.skiplist else LISTPACK, *items]} if items else {}


def read_stream(key: bytes, stream: StreamLog) -> dict[bytes, list[bytes]]:
    state = {STREAM: [stream_entry(i >> 64, fields[1]) for i, fields in stream.range(0, MAX_ID)]}
    group = stream.groups.get(GROUP)
    if group is not None:
        state[PENDING] = [b"%020d@%s" % (p.id >> 64, p.consumer.name) for p in group.iter_pending()]
        state[DELIVERED] = [b"%020d" % (group.last_id >> 64)] if group.last_id else []
    return {key: values for key, values in state.items() if values}


def apply_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind = op[0]
    sim = OP_TYPES.get(kind)
    if sim is not None:
        sim.apply(state, op)
        return
    if kind == "push":
        _, key, side, values = op
        target = state.setdefault(key, [])
        for value in values:
            if side == RIGHT:
                target.append(value)
            else:
                target.insert(0, value)
    elif kind == "pop":
        _, key, side, values = op
        target = state[key]
        if side == LEFT:
            del target[: len(values)]
        else:
            del target[len(target) - len(values) :]
    else:
        _, src, dst, side, value = op
        source = state[src]
        assert (source.pop(0) if side == LEFT else source.pop()) == value
        state.setdefault(dst, []).append(value)
    if kind != "push":
        for key in [k for k, v in state.items() if not v]:
            del state[key]


def apply_stream_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind = op[0]
    entries = state.get(STREAM, [])
    if kind == "xadd":
        entries = entries + [stream_entry(ms, value) for ms, value in op[1]]
    elif kind == "xread":
        _, consumer, taken = op
        pending = state.get(PENDING, []) + [b"%020d@%s" % (ms, consumer) for ms in taken]
        state[PENDING] = sorted(pending)
        state[DELIVERED] = [b"%020d" % taken[-1]]
    elif kind == "xack":
        gone = {b"%020d" % ms for ms in op[1]}
        state[PENDING] = [item for item in state.get(PENDING, []) if item[:20] not in gone]
    elif kind == "xtrim":
        entries = entries[len(entries) - op[1] :] if op[1] else []
    else:  # "xdel": the whole key, group and all
        entries = []
        state.pop(PENDING, None)
        state.pop(DELIVERED, None)
    state[STREAM] = entries
    for key in STREAM_KEYS:
        if not state.get(key, True):
            del state[key]


def apply_hash_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind, key, args = op
    fields = dict(item.split(b"=", 1) for item in state.get(key, []))
    if kind == "hset":
        pairs = iter(args)
        fields.update(zip(pairs, pairs, strict=True))  # a field already there keeps its place, as in a listpack
    else:
        for field in args:
            fields.pop(field, None)
    if fields:
        state[key] = [hash_item(field, value) for field, value in fields.items()]
    else:
        state.pop(key, None)


def string_contents(state: dict[bytes, list[bytes]], key: bytes) -> bytes:
    return state[key][0][1:] if key in state else b""


def apply_string_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind = op[0]
    if kind == "set":  # key, contents, expiry or None
        state[op[1]] = [b"=" + op[2]] + ([b"@%d" % op[3]] if op[3] is not None else [])
    elif kind == "mset":  # [(key, contents), ...]: no expiry left on any
        for key, data in op[1]:
            state[key] = [b"=" + data]
    elif kind in ("append", "setrange"):  # key, [offset,] data: the expiry stays
        key, data = op[1], op[-1]
        old = string_contents(state, key)
        offset = len(old) if kind == "append" else op[2]
        padded = old.ljust(offset, b"\0")
        state[key] = [b"=" + padded[:offset] + data + padded[offset + len(data) :], *state.get(key, [])[1:]]
    elif kind == "expire":  # key, expiry or None (PERSIST)
        state[op[1]] = state[op[1]][:1] + ([b"@%d" % op[2]] if op[2] is not None else [])
    elif kind == "srename":
        state[op[2]] = state.pop(op[1])
    elif kind == "scopy":
        state[op[2]] = list(state[op[1]])
    else:  # "sdel"
        del state[op[1]]


def set_model(state: dict[bytes, list[bytes]], key: bytes) -> tuple[set[bytes], bool]:
    """A set's members and whether it is a hashtable."""
    items = state.get(key)
    return (set(), False) if items is None else (set(items[1:]), items[0] == HASHTABLE)


def _put_set(state: dict[bytes, list[bytes]], key: bytes, members: set[bytes], hashtable: bool) -> None:
    if members:
        state[key] = [HASHTABLE if hashtable else INTSET, *sorted(members)]
    else:
        state.pop(key, None)


def _built_as_hashtable(members: set[bytes]) -> bool:
    """The encoding of a set built anew from ``members`` (a new key, a STORE, what an SPOP keeps)."""
    return len(members) > SET_MAX_INTSET or not all(map(is_integer, members))


def _set_add(state: dict[bytes, list[bytes]], key: bytes, members: list[bytes]) -> None:
    held, hashtable = set_model(state, key)
    new = set(members) - held
    if key not in state:
        _put_set(state, key, new, _built_as_hashtable(new))
        return
    after = held | new
    converts = bool(new) and (len(after) > SET_MAX_INTSET or not all(map(is_integer, new)))
    _put_set(state, key, after, hashtable or converts)


def _set_remove(state: dict[bytes, list[bytes]], key: bytes, members: list[bytes], rebuilt: bool) -> None:
    held, hashtable = set_model(state, key)
    left = held - set(members)
    _put_set(state, key, left, _built_as_hashtable(left) if rebuilt else hashtable)


def apply_set_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind = op[0]
    if kind == "sadd":  # key, members
        _set_add(state, op[1], op[2])
    elif kind == "srem":  # key, members, rebuilt (SPOP keeping the rest in a new set)
        _set_remove(state, op[1], op[2], op[3])
    elif kind == "smove":  # src, dst, member
        _set_remove(state, op[1], [op[3]], False)
        _set_add(state, op[2], [op[3]])
    else:  # "sstore": dst, members (none: the destination goes)
        state.pop(op[1], None)
        if op[2]:
            _put_set(state, op[1], set(op[2]), _built_as_hashtable(set(op[2])))


def zset_model(state: dict[bytes, list[bytes]], key: bytes) -> tuple[dict[bytes, float], bool]:
    """A sorted set's scores and whether it is a skiplist."""
    items = state.get(key)
    if items is None:
        return {}, False
    scores = {}
    for item in items[1:]:
        score, member = item.split(b"=", 1)
        scores[member] = float(score)
    return scores, items[0] == SKIPLIST


def _put_zset(state: dict[bytes, list[bytes]], key: bytes, scores: dict[bytes, float], skiplist: bool) -> None:
    if scores:
        ordered = sorted((score, member) for member, score in scores.items())
        state[key] = [SKIPLIST if skiplist else LISTPACK, *(zset_item(m, s) for s, m in ordered)]
    else:
        state.pop(key, None)


def zset_ordered(scores: dict[bytes, float]) -> list[tuple[float, bytes]]:
    return sorted((score, member) for member, score in scores.items())


def apply_zset_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind, key = op[0], op[1]
    scores, skiplist = zset_model(state, key)
    if kind == "zadd":  # key, [(member, score), ...] (distinct members): the first new one past a limit converts
        count = len(scores)
        for member, _ in op[2]:
            if not skiplist and member not in scores:
                if count + 1 > ZSET_ENTRIES or len(member) > ZSET_VALUE:
                    skiplist = True
                count += 1
        scores.update(op[2])
    elif kind == "zrem":  # key, members
        for member in op[2]:
            scores.pop(member, None)
    elif kind == "zpop":  # key, count, highest
        ordered = zset_ordered(scores)
        for _, member in (ordered[::-1] if op[3] else ordered)[: op[2]]:
            del scores[member]
    else:  # "zstore": dst, [(member, score), ...] (none: the destination goes)
        scores = dict(op[2])
        skiplist = len(scores) > ZSET_ENTRIES or any(len(member) > ZSET_VALUE for member in scores)
    _put_zset(state, key, scores, skiplist)


@dataclass
class Workload:
    """One data directory's life across crashes: the producers' counters survive, the history is per run."""

    queues: int = 8
    producers: int = 4
    seqs: list[int] = field(default_factory=list)
    acked_state: dict[bytes, list[bytes]] = field(default_factory=dict)  # the model after every acknowledged op
    pending: list[Op] = field(default_factory=list)  # done since the last acknowledgement
    history: History = field(default_factory=History)
    baseline: dict[bytes, list[bytes]] = field(default_factory=dict)
    next_ms: int = 1  # stream IDs: increasing for the life of the disk, above any entry ever added
    type_acked: Counter[str] = field(default_factory=Counter)  # acknowledged operations of each SIM_TYPES row
    sizes: SizeMix = SIZE_MIXES["small"]  # how long messages and stream values are
    hash_writes: int = 0  # makes every value written to a hash new
    string_writes: int = 0  # likewise for strings

    def __post_init__(self) -> None:
        self.seqs = [0] * self.producers

    def start_run(self, observed: dict[bytes, list[bytes]]) -> None:
        """After a recovery the observed data is the new truth."""
        self.acked_state = {k: list(v) for k, v in observed.items()}
        self.baseline = {k: list(v) for k, v in observed.items()}
        self.pending = []
        self.history = History()

    # -- operations (each is applied to the engine, then remembered as unacknowledged)

    def step(self, engine: Engine, rng: random.Random) -> None:
        for sim in SIM_TYPES:
            if rng.random() < sim.share:
                sim.step(self, engine, rng)
                return
        roll = rng.random()
        key = queue_key(rng.randrange(self.queues))
        if roll < 0.55:
            producer = rng.randrange(self.producers)
            values = []
            for _ in range(1 if rng.random() < 0.5 else rng.randint(2, 20)):
                self.seqs[producer] += 1
                values.append(message(producer, self.seqs[producer], self.sizes.pick(rng)))
            self.push(engine, key, values)
        elif roll < 0.85:
            self.pop(engine, key, rng.choice((1, 1, 2, 5, 50)))
        else:
            self.move(engine, key)

    def push(self, engine: Engine, key: bytes, values: list[bytes]) -> None:
        entry = engine.get(DB, key)
        side = push_side(key)
        # The op is remembered before the call: a crash inside it may or may not have made it durable.
        self._remember(("push", key, side, values))
        if entry is None:  # as the server creates lists: a new one holding one value is a cold entry at once
            push_keys(engine, DB, side, [(key, values)])
        else:
            entry.value.push(side, values)  # type: ignore[union-attr]

    def pop(self, engine: Engine, key: bytes, count: int) -> None:
        entry = engine.get(DB, key)
        if entry is None:
            return
        side = Side(1 - push_side(key))
        expected = self._live_values(key)[:count] if side == LEFT else self._live_values(key)[::-1][:count]
        if not expected:
            return  # an empty list left by a push the power cut short: a pop of it changes nothing
        self._remember(("pop", key, side, expected))
        values = entry.value.pop(side, count)
        assert values == expected, f"pop returned {shown(values)}, the model expected {shown(expected)}"
        if not len(entry.value):
            engine.delete(DB, key)

    def move(self, engine: Engine, key: bytes) -> None:
        """LMOVE as the docs prescribe: peek the source, push to the destination, then pop, in one atomic record."""
        entry = engine.get(DB, key)
        if entry is None:
            return
        side = Side(1 - push_side(key))
        value = entry.value.index(0 if side == LEFT else -1)
        if value is None:
            return
        dst = moved_key(key)
        self._remember(("move", key, dst, side, value))
        with engine.atomic():
            target = engine.get(DB, dst)
            (target.value if target is not None else engine.create(DB, dst, "list")).push(RIGHT, [value])
            popped = entry.value.pop(side, 1)
            assert popped == [value], f"LMOVE popped {shown(popped)}, peeked {show(value)}"
            if not len(entry.value):
                engine.delete(DB, key)

    # -- the stream

    def stream_step(self, engine: Engine, rng: random.Random) -> None:
        roll = rng.random()
        current = self._current_stream()
        if roll < 0.45:
            producer = rng.randrange(self.producers)
            adds = []
            for _ in range(1 if rng.random() < 0.5 else rng.randint(2, 40)):
                self.seqs[producer] += 1
                adds.append((self.next_ms, message(producer, self.seqs[producer], self.sizes.pick(rng))))
                self.next_ms += rng.choice((1, 1, 2, 1000))
            self.xadd(engine, adds)
        elif roll < 0.7:
            delivered = entry_ms(current[DELIVERED][0]) if DELIVERED in current else 0
            fresh = [entry_ms(e) for e in current.get(STREAM, []) if entry_ms(e) > delivered]
            if fresh:
                self.xread(engine, rng.choice(CONSUMERS), fresh[: rng.choice((1, 3, 10, 100))])
        elif roll < 0.9:
            pending = [int(item[:20]) for item in current.get(PENDING, [])]
            if pending:
                oldest_first = rng.random() < 0.7  # as consumers acknowledge, or one entry anywhere
                self.xack(engine, pending[: rng.randint(1, len(pending))] if oldest_first else rng.sample(pending, 1))
        elif roll < 0.97:
            if len(current.get(STREAM, [])) > 1:
                self.xtrim(engine, rng.randrange(len(current[STREAM])))
        elif STREAM in current or PENDING in current or DELIVERED in current:
            self._remember(("xdel",))
            engine.delete(DB, STREAM)

    def _current_stream(self) -> dict[bytes, list[bytes]]:
        return self._current(STREAM_KEYS, STREAM_OPS)

    def _current(self, keys: tuple[bytes, ...], ops: tuple[str, ...]) -> dict[bytes, list[bytes]]:
        """The model of ``keys`` after the pending operations too (those of one type only touch its own keys)."""
        state = {key: list(values) for key, values in self.acked_state.items() if key in keys}
        for op in self.pending:
            if op[0] in ops:
                apply_op(state, op)
        return state

    def _stream(self, engine: Engine) -> StreamLog:
        entry = engine.get(DB, STREAM)
        if entry is None:
            with engine.atomic():
                entry = engine.create(DB, STREAM, "stream")
                entry.set_group(GROUP, 0, 0)
        assert isinstance(entry, StreamLog)
        return entry

    def xadd(self, engine: Engine, adds: list[tuple[int, bytes]]) -> None:
        stream = self._stream(engine)
        self._remember(("xadd", adds))
        if len(adds) == 1:
            stream.add(id_of(adds[0][0], 0), [b"v", adds[0][1]])
        else:
            added = stream.add_many([id_of(ms, 0) for ms, _ in adds], [[b"v", value] for _, value in adds])
            assert added == len(adds)

    def xread(self, engine: Engine, consumer: bytes, expected: list[int]) -> None:
        stream = self._stream(engine)
        group = stream.groups[GROUP]
        owner, _ = stream.create_consumer(group, consumer, 0)
        self._remember(("xread", consumer, expected))
        read = stream.read_group(group, owner, group.last_id, len(expected), False, 0)
        got = [i >> 64 for i, _ in read]
        assert got == expected, f"XREADGROUP gave {got}, the model expected {expected}"

    def xack(self, engine: Engine, ids: list[int]) -> None:
        stream = self._stream(engine)
        self._remember(("xack", ids))
        assert stream.drop_pending(stream.groups[GROUP], [id_of(ms, 0) for ms in ids]) == len(ids)

    def xtrim(self, engine: Engine, maxlen: int) -> None:
        stream = self._stream(engine)
        self._remember(("xtrim", maxlen))
        stream.trim(MAXLEN, maxlen, False, 0)

    # -- the hashes

    def hash_step(self, engine: Engine, rng: random.Random) -> None:
        key = rng.choice(HASHES)
        state = {key: list(self.acked_state.get(key, []))}
        for op in self.pending:
            if op[0] in HASH_OPS and op[1] == key:
                apply_hash_op(state, op)
        current = [item.split(b"=", 1)[0] for item in state.get(key, [])]
        entry = engine.get(DB, key)
        if not current or rng.random() < 0.6:
            pairs: list[bytes] = []
            for _ in range(rng.randint(1, 4)):
                self.hash_writes += 1
                value = b"%d" % self.hash_writes
                pairs += [rng.choice(HASH_FIELDS), value if rng.random() < 0.9 else value.ljust(70, b"x")]
            self._remember(("hset", key, pairs))
            if entry is None:
                new_hash(engine, DB, key, pairs)
            else:
                entry.set_many(pairs)  # type: ignore[union-attr]
            return
        fields = rng.sample(current, rng.randint(1, len(current)))
        self._remember(("hdel", key, fields))
        if len(fields) == len(current):  # as HDEL of every field does: the key goes, one record
            engine.delete(DB, key)
        else:
            assert entry.delete_many(fields) == len(fields)  # type: ignore[union-attr]

    # -- the strings

    def string_step(self, engine: Engine, rng: random.Random) -> None:
        """As the server writes strings: a new key is created and filled in one atomic block, and so is a write
        that changes the contents and the expiry together; MSET is one block over all its keys."""
        current = self._current(STRINGS, STRING_OPS)
        key = rng.choice(STRINGS)
        present = [k for k in STRINGS if k in current]
        roll = rng.random()
        if 0.3 <= roll < 0.65 and len(string_contents(current, key)) > STRING_LIMIT:
            roll = 0.0  # a SET instead of growing it further: large values would make each cycle slow
        if roll < 0.3:
            expire = rng.choice((None, None, FAR_EXPIRY + self.string_writes))
            data = self._string_data(rng)
            self._remember(("set", key, data, expire))
            with engine.atomic():
                self._put(engine, key, data)
                if expire is not None:
                    engine.set_expire(DB, key, expire)
        elif roll < 0.55:
            data = self._string_data(rng)
            self._remember(("append", key, data))
            with engine.atomic():
                self._string(engine, key).append(data)
        elif roll < 0.65:
            data = self._string_data(rng)
            offset = rng.randint(0, len(string_contents(current, key)) + 3)
            self._remember(("setrange", key, offset, data))
            with engine.atomic():
                self._string(engine, key).set_range(offset, data)
        elif roll < 0.75:
            pairs = [(k, self._string_data(rng)) for k in rng.sample(STRINGS, rng.randint(2, 3))]
            self._remember(("mset", pairs))
            with engine.atomic():
                for k, data in pairs:
                    self._put(engine, k, data)
        elif not present:
            return
        elif roll < 0.83:
            key = rng.choice(present)
            expire = rng.choice((None, FAR_EXPIRY + self.string_writes))
            self._remember(("expire", key, expire))
            engine.set_expire(DB, key, expire)
        elif roll < 0.9:
            src, dst = rng.choice(present), rng.choice(STRINGS)
            if src != dst:
                self._remember(("srename", src, dst))
                engine.rename(DB, src, dst)
        elif roll < 0.97:
            src, dst = rng.choice(present), rng.choice(STRINGS)
            if src != dst:
                self._remember(("scopy", src, dst))
                engine.copy(DB, src, DB, dst, replace=dst in current)
        else:
            key = rng.choice(present)
            self._remember(("sdel", key))
            engine.delete(DB, key)

    def _string_data(self, rng: random.Random) -> bytes:
        self.string_writes += 1
        return message(9, self.string_writes, self.sizes.pick(rng))

    def _string(self, engine: Engine, key: bytes) -> Any:
        """The key's string, created (inside the caller's atomic block) if missing."""
        value = engine.get(DB, key)
        return value if value is not None else engine.create(DB, key, "string")

    def _put(self, engine: Engine, key: bytes, data: bytes) -> None:
        """SET without options: the new contents, no expiry."""
        value = self._string(engine, key)
        value.set(data)
        if value.expire_ms is not None:
            engine.set_expire(DB, key, None)

    # -- the sets (as the commands write them: SADD; SREM, SPOP; SMOVE and the STORE forms in one atomic block)

    def set_step(self, engine: Engine, rng: random.Random) -> None:
        current = self._current(SETS, SET_OPS)
        key = rng.choice(SETS)
        roll = rng.random()
        if roll < 0.4 or key not in current:
            members = rng.sample(SET_POOL, rng.randint(1, 4)) if rng.random() < 0.8 else [b"%d" % n for n in range(150)]
            self._remember(("sadd", key, members))
            self._set_add(engine, key, members)
        elif roll < 0.7:
            rebuilt = roll >= 0.6  # SPOP with a count close to the size: the rest kept in a new set
            held = sorted(set_model(current, key)[0])
            gone = rng.sample(held, rng.randint(1, len(held)))
            op = ("srem", key, gone, rebuilt)
            self._remember(op)
            after = {key: current[key]}
            apply_set_op(after, op)
            self._set_remove(engine, key, gone, after.get(key))
        elif roll < 0.85:
            dst = rng.choice([k for k in SETS if k != key])
            member = rng.choice(sorted(set_model(current, key)[0]))
            op = ("smove", key, dst, member)
            self._remember(op)
            after = {key: current[key]}
            apply_set_op(after, op)
            with engine.atomic():  # SMOVE: both keys, or neither
                self._set_remove(engine, key, [member], after.get(key))
                self._set_add(engine, dst, [member])
        else:  # SINTERSTORE, SUNIONSTORE or SDIFFSTORE
            sources = [set_model(current, k)[0] for k in rng.sample(SETS, rng.randint(1, 3))]
            how = rng.choice((set.union, set.intersection, set.difference))
            result = sorted(how(*sources))
            dst = rng.choice(SETS)
            self._remember(("sstore", dst, result))
            with engine.atomic():  # the destination replaced whole, or left as it was
                if engine.get(DB, dst) is not None:
                    engine.delete(DB, dst)
                if result:
                    new_set(engine, DB, dst, result, SET_MAX_INTSET)

    def _set_add(self, engine: Engine, key: bytes, members: list[bytes]) -> None:
        value = engine.get(DB, key)
        if value is None:
            new_set(engine, DB, key, dict.fromkeys(members).keys(), SET_MAX_INTSET)
        else:
            value.add_many(members, SET_MAX_INTSET)  # type: ignore[union-attr]

    def _set_remove(self, engine: Engine, key: bytes, members: list[bytes], after: list[bytes] | None) -> None:
        """Removes members, the encoding after it as the model says (``after``: the key's model items, None: the
        key goes with its last member, one record)."""
        if after is None:
            engine.delete(DB, key)
            return
        value = engine.get(DB, key)
        value.remove_many(members, hashtable=after[0] == HASHTABLE)  # type: ignore[union-attr]

    # -- the sorted sets (ZADD, ZINCRBY: scores set; ZREM, ZREMRANGEBY*: members removed; ZPOPMIN/MAX, BZPOPMIN:
    # pops; Z*STORE, ZRANGESTORE: the destination replaced in one atomic block)

    def zset_step(self, engine: Engine, rng: random.Random) -> None:
        current = self._current(ZSETS, ZSET_OPS)
        key = rng.choice(ZSETS)
        scores = zset_model(current, key)[0]
        roll = rng.random()
        if roll < 0.4 or not scores:
            members = rng.sample(ZSET_POOL, rng.randint(1, 3))
            if scores and rng.random() < 0.3:  # ZINCRBY: the new score is what is set
                pairs = [(member, scores.get(member, 0.0) + rng.choice(ZSET_SCORES)) for member in members[:1]]
            else:
                pairs = [(member, rng.choice(ZSET_SCORES)) for member in members]
            self._remember(("zadd", key, pairs))
            value = engine.get(DB, key)
            if value is None:
                new_zset(engine, DB, key, pairs, ZSET_ENTRIES, ZSET_VALUE)
            else:
                value.set_scores(pairs, ZSET_ENTRIES, ZSET_VALUE)  # type: ignore[union-attr]
        elif roll < 0.6:
            gone = rng.sample(sorted(scores), rng.randint(1, len(scores)))
            self._remember(("zrem", key, gone))
            if len(gone) == len(scores):
                engine.delete(DB, key)
            else:
                engine.get(DB, key).remove(gone)  # type: ignore[union-attr]
        elif roll < 0.8:
            count, highest = rng.choice((1, 1, 2, 5)), rng.random() < 0.4
            ordered = zset_ordered(scores)
            expected = (ordered[::-1] if highest else ordered)[:count]
            self._remember(("zpop", key, count, highest))
            if count < len(scores):
                taken = engine.get(DB, key).pop(count, highest)  # type: ignore[union-attr]
                assert taken == expected, f"the pop took {taken}, the model expected {expected}"
            else:
                engine.delete(DB, key)
        else:  # ZUNIONSTORE over sorted sets and a set (its members scored 1), or ZRANGESTORE of a rank range
            if rng.random() < 0.6:
                result: dict[bytes, float] = {}
                inputs = [zset_model(current, k)[0] for k in rng.sample(ZSETS, rng.randint(1, 2))]
                if rng.random() < 0.5:
                    inputs.append(dict.fromkeys(set_model(self._current(SETS, SET_OPS), rng.choice(SETS))[0], 1.0))
                for given in inputs:
                    for member, score in given.items():
                        result[member] = result.get(member, 0.0) + score
                pairs = sorted(result.items())
            else:
                start = rng.randint(0, 3)
                pairs = [(member, score) for score, member in zset_ordered(scores)[start : start + rng.randint(0, 4)]]
            dst = rng.choice(ZSETS)
            self._remember(("zstore", dst, pairs))
            with engine.atomic():
                if engine.get(DB, dst) is not None:
                    engine.delete(DB, dst)
                if pairs:
                    store_zset(engine, engine.create(DB, dst, "zset"), pairs, ZSET_ENTRIES, ZSET_VALUE)  # type: ignore[arg-type]

    def acknowledge(self, engine: Engine) -> None:
        """What the server does before replies go out under ``always``."""
        engine.sync(engine.flush())
        self.mark_acknowledged()

    def mark_acknowledged(self) -> None:
        for op in self.pending:
            apply_op(self.acked_state, op)
            if op[0] in OP_TYPES:
                self.type_acked[OP_TYPES[op[0]].name] += 1
            else:
                self._record(op, acked=True)
        self.pending = []

    # -- model bookkeeping

    def _remember(self, op: Op) -> None:
        self.pending.append(op)

    def _live_values(self, key: bytes) -> list[bytes]:
        state = {key: list(self.acked_state.get(key, []))}
        for op in self.pending:
            if (op[0] == "push" and op[1] == key) or (op[0] in ("pop", "move") and op[1] == key):
                apply_op(state, op)
                state.setdefault(key, [])
        return state[key]

    def _record(self, op: Op, *, acked: bool) -> None:
        if op[0] == "push":
            self.history.pushes.append((op[1], list(op[3]), acked))
        elif op[0] == "pop":
            self.history.pops.append((op[1], list(op[3]), len(op[3]), acked))
        else:
            self.history.moves.append((op[1], op[2], op[4], acked))

    # -- after a crash

    def check(self, observed: dict[bytes, list[bytes]]) -> tuple[list[str], int]:
        """Violations, and how many unacknowledged operations the recovered state kept (-1 if it is no prefix)."""
        for op in self.pending:
            if op[0] not in OP_TYPES:
                self._record(op, acked=False)
        self.pending_at_crash = list(self.pending)
        others = {key for sim in SIM_TYPES for key in sim.keys}
        lists_only = [{k: v for k, v in state.items() if k not in others} for state in (self.baseline, observed)]
        problems = check_recovery(lists_only[0], self.history, lists_only[1], directions(self.queues))
        kept = matching_prefix(self.acked_state, self.pending, observed)
        if kept < 0:
            differ = sorted(
                k for k in self.acked_state.keys() | observed.keys() if self.acked_state.get(k) != observed.get(k)
            )
            problems.append(
                f"the recovered state is not the state after any prefix of the {len(self.pending)} operations "
                f"since the last acknowledgement (keys that differ from the acknowledged state: {differ[:8]})"
            )
        return problems, kept


def matching_prefix(acked: dict[bytes, list[bytes]], pending: list[Op], observed: dict[bytes, list[bytes]]) -> int:
    """k if ``observed`` is the state after the acknowledged ops and the first k pending ones, else -1."""
    state = {k: list(v) for k, v in acked.items()}
    if state == observed:
        return 0
    for index, op in enumerate(pending):
        if op[0] == "xadd":  # a pipelined run is a call per entry to its clients: a first part may survive alone
            for entry in op[1][:-1]:
                apply_op(state, ("xadd", [entry]))
                if state == observed:
                    return index
            op = ("xadd", op[1][-1:])
        apply_op(state, op)
        if state == observed:
            return index + 1
    return -1


def run_until_crash(
    engine: Engine, workload: Workload, rng: random.Random, *, steps: int, ack_every: Callable[[], int]
) -> None:
    """Random operations, acknowledgements and checkpoints (split as the server splits them) for ``steps``."""
    until_ack = ack_every()
    checkpoint = None
    for _ in range(steps):
        workload.step(engine, rng)
        until_ack -= 1
        if until_ack <= 0:
            workload.acknowledge(engine)
            until_ack = ack_every()
        roll = rng.random()
        if checkpoint is None and roll < 0.03:
            checkpoint = engine.begin_checkpoint()
            stage = 0
        elif checkpoint is not None and roll < 0.2:
            # Operations keep flowing between the steps, as they do while a worker thread runs the middle one.
            if stage == 0:
                engine.run_checkpoint(checkpoint)
                stage = 1
            else:
                engine.finish_checkpoint(checkpoint)
                checkpoint = None


@dataclass(frozen=True)
class SimType:
    """One type's row beside the lists: how often a step is its own (rows are tried in order), its operations and
    model keys, its step, how an operation changes the model, and how a value of it reads back as model keys."""

    name: str
    share: float
    ops: tuple[str, ...]
    keys: tuple[bytes, ...]
    value_class: type
    step: Callable[[Workload, Engine, random.Random], None]
    apply: Callable[[dict[bytes, list[bytes]], Op], None]
    read: Callable[[bytes, Any], dict[bytes, list[bytes]]]


SIM_TYPES = (
    SimType("stream", 0.3, STREAM_OPS, STREAM_KEYS, StreamLog, Workload.stream_step, apply_stream_op, read_stream),
    SimType("hash", 0.15, HASH_OPS, HASHES, HashValue, Workload.hash_step, apply_hash_op, read_hash),
    SimType("string", 0.15, STRING_OPS, STRINGS, StringValue, Workload.string_step, apply_string_op, read_string),
    SimType("set", 0.15, SET_OPS, SETS, SetValue, Workload.set_step, apply_set_op, read_set),
    SimType("zset", 0.15, ZSET_OPS, ZSETS, ZSetValue, Workload.zset_step, apply_zset_op, read_zset),
)
OP_TYPES = {op: sim for sim in SIM_TYPES for op in sim.ops}
