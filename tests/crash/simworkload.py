"""A queue workload driven straight through the engine API, with an exact model of what it was told.

Acknowledgement is what the server does before a reply goes out: ``flush()`` then ``sync(lsn)``. Each queue has
one push side and pops from the other (FIFO); LMOVE takes from a queue's pop side to the right of ``moved:<queue>``.
Beside the lists, one stream with one consumer group: XADD (one entry per call, or a pipelined run through
``add_many``), XREADGROUP, XACK, exact XTRIM and DEL. Its state is modelled as three more "lists" (``STREAM``
entries, its pending entries, its group's last delivered ID), so the same prefix check covers it. And two hashes:
HSET (creating them), HDEL (deleting them with their last field), some values long enough to make a hashtable;
each is modelled as the list of its ``field=value`` items in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from respq.storage import Engine
from respq.types.hashes.model import HashValue, new_hash
from respq.types.lists.model import LEFT, RIGHT, Side, push_keys
from respq.types.streams.model import MAX_ID, MAXLEN, StreamLog, id_of
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
        if isinstance(entry, StreamLog):
            state.update(read_stream(entry))
            continue
        if isinstance(entry, HashValue):
            if len(entry):
                state[key] = [hash_item(field, value) for field, value in entry.items()]
            continue
        values = list(entry.value)
        if values:
            state[key] = values
    return state


def read_stream(stream: StreamLog) -> dict[bytes, list[bytes]]:
    state = {STREAM: [stream_entry(i >> 64, fields[1]) for i, fields in stream.range(0, MAX_ID)]}
    group = stream.groups.get(GROUP)
    if group is not None:
        state[PENDING] = [b"%020d@%s" % (p.id >> 64, p.consumer.name) for p in group.iter_pending()]
        state[DELIVERED] = [b"%020d" % (group.last_id >> 64)] if group.last_id else []
    return {key: values for key, values in state.items() if values}


def apply_op(state: dict[bytes, list[bytes]], op: Op) -> None:
    kind = op[0]
    if kind.startswith("x"):
        apply_stream_op(state, op)
        return
    if kind.startswith("h"):
        apply_hash_op(state, op)
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
    stream_acked: int = 0  # acknowledged stream operations
    sizes: SizeMix = SIZE_MIXES["small"]  # how long messages and stream values are
    hash_acked: int = 0  # acknowledged hash operations
    hash_writes: int = 0  # makes every value written to a hash new

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
        if rng.random() < 0.3:
            self.stream_step(engine, rng)
            return
        if rng.random() < 0.15:
            self.hash_step(engine, rng)
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
        state = {key: list(values) for key, values in self.acked_state.items() if key in STREAM_KEYS}
        for op in self.pending:
            if op[0].startswith("x"):
                apply_stream_op(state, op)
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
            if op[0].startswith("h") and op[1] == key:
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

    def acknowledge(self, engine: Engine) -> None:
        """What the server does before replies go out under ``always``."""
        engine.sync(engine.flush())
        self.mark_acknowledged()

    def mark_acknowledged(self) -> None:
        for op in self.pending:
            apply_op(self.acked_state, op)
            if op[0].startswith("x"):
                self.stream_acked += 1
            elif op[0].startswith("h"):
                self.hash_acked += 1
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
            if not op[0].startswith(("x", "h")):
                self._record(op, acked=False)
        self.pending_at_crash = list(self.pending)
        others = (*STREAM_KEYS, *HASHES)
        lists_only = [{k: v for k, v in state.items() if k not in others} for state in (self.baseline, observed)]
        problems = check_recovery(lists_only[0], self.history, lists_only[1], directions(self.queues))
        kept = matching_prefix(self.acked_state, self.pending, observed)
        if kept < 0:
            problems.append(
                f"the recovered state is not the state after any prefix of the {len(self.pending)} operations "
                "since the last acknowledgement"
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
