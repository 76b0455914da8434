"""The queue entries of the kill -9 campaign: lists and consumer-group streams, each with its own concurrent model.

Lists: producer threads push numbered messages (single and batched LPUSH/RPUSH, pipelined by the hundred, sometimes
a burst into one queue) into many queues while consumer threads pop (LPOP/RPOP with a count or bursts without,
BLPOP/BRPOP, LMOVE into ``moved:<queue>``); tests/crash/model.py says what is checked.

Streams: producers XADD numbered entries into a few streams (one at a time and pipelined by the hundred, sometimes
all into one stream); two consumers of the work group ``g`` XREADGROUP (some with BLOCK), then XACK + XDEL what they
got in their next pipelined round (so acknowledgements are in flight at the kill), leave a few entries pending and
XAUTOCLAIM idle ones, those the killed run left behind included; one consumer of a second group ``tap`` first asks
for its own pending entries (what the killed run never acked), then reads and XACKs everything, never deleting.
tests/crash/stream_model.py says what is checked.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from respq.types.lists.model import RIGHT
from tests.crash.kill9 import Cycle, Part
from tests.crash.model import History, SizeMix, check_recovery, message
from tests.crash.pipeline import Pipeline
from tests.crash.simworkload import directions, moved_key, push_side, queue_key
from tests.crash.stream_model import (
    Ack,
    Add,
    Claim,
    Delete,
    GroupState,
    Read,
    StreamHistory,
    StreamId,
    StreamState,
    check_streams,
    entry_fields,
    format_id,
    parse_id,
)
from tests.crash.stream_model import Streams as StreamStates

QUEUES = 24
PRODUCERS = 3
STREAMS = [b"s%d" % index for index in range(4)]
STREAM_PRODUCERS = 2
WORK_GROUP, WORK_CONSUMERS = b"g", (b"c0", b"c1")
TAP_GROUP, TAP_CONSUMER = b"tap", b"t0"
READERS = [(WORK_GROUP, name, True) for name in WORK_CONSUMERS] + [(TAP_GROUP, TAP_CONSUMER, False)]
LEFT_PENDING = 0.05  # share of delivered work entries a consumer does not acknowledge, for XAUTOCLAIM to find


def owns_list(key: bytes) -> bool:
    return key.startswith((b"q", b"moved:q"))


def producer(cycle: Cycle, part: Lists, producer_id: int, seed: float) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect(part.name, History())
    while not cycle.stop.is_set():
        commands, pushes = [], []
        size = rng.randint(100, 300)
        while len(commands) < size:
            key = queue_key(rng.randrange(QUEUES))
            # Sometimes a burst of pushes to one queue: the server runs those as one push (a pipelined run).
            for _ in range(min(rng.randint(2, 16) if rng.random() < 0.2 else 1, size - len(commands))):
                values = []
                for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 10)):
                    part.seqs[producer_id] += 1
                    values.append(message(producer_id, part.seqs[producer_id], part.sizes.pick(rng)))
                commands.append(("RPUSH" if push_side(key) == RIGHT else "LPUSH", key, *values))
                pushes.append((key, values))
        replies, complete = pipe.run(commands)
        for (key, values), reply in zip(pushes, replies, strict=False):
            if isinstance(reply, Exception):
                recorder.errors.append(f"{key!r} push: {reply}")
            recorder.history.pushes.append((key, values, not isinstance(reply, Exception)))
            recorder.acked += 1
        for key, values in pushes[len(replies) :]:
            recorder.history.pushes.append((key, values, False))
        if not complete:
            return


def consumer(cycle: Cycle, part: Lists, kind: str, seed: float) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect(part.name, History())
    history = recorder.history
    while not cycle.stop.is_set():
        commands: list[tuple[Any, ...]] = []
        size = rng.randint(5, 20) if kind == "block" else rng.randint(50, 150)
        while len(commands) < size:
            key = queue_key(rng.randrange(QUEUES))
            left = push_side(key) == RIGHT  # FIFO: pop the other end
            if kind == "pop" and rng.random() < 0.2:  # a burst of single pops: a pipelined run on the server
                commands += [("LPOP" if left else "RPOP", key)] * min(rng.randint(2, 16), size - len(commands))
            elif kind == "pop":
                commands.append(("LPOP" if left else "RPOP", key, rng.choice((1, 2, 5, 20))))
            elif kind == "block":
                commands.append(("BLPOP" if left else "BRPOP", key, 0.02))
            else:
                commands.append(("LMOVE", key, moved_key(key), "LEFT" if left else "RIGHT", "RIGHT"))
        replies, complete = pipe.run(commands)
        for index, command in enumerate(commands):
            answered = index < len(replies)
            reply = replies[index] if answered else None
            if isinstance(reply, Exception):
                recorder.errors.append(f"{command}: {reply}")
                answered, reply = False, None
            key = command[1]
            if kind == "pop" and len(command) == 2:  # no count: a value or nil
                values = ([reply] if reply is not None else []) if answered else None
                history.pops.append((key, values, 1, answered))
            elif kind == "pop":
                values = (reply or []) if answered else None
                history.pops.append((key, values, command[2], answered))
            elif kind == "block":
                values = ([reply[1]] if reply else []) if answered else None
                history.pops.append((key, values, 1, answered))
            elif not answered or reply is not None:
                history.moves.append((key, command[2], reply, answered))
            recorder.acked += answered
        if not complete:
            return


def stream_producer(cycle: Cycle, part: Streams, producer_id: int, seed: float) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect(part.name, StreamHistory())
    while not cycle.stop.is_set():
        sent: list[tuple[bytes, int, int]] = []
        burst = rng.choice(STREAMS) if rng.random() < 0.3 else None  # all into one stream: one run on the server
        for _ in range(1 if rng.random() < 0.3 else rng.randint(20, 200)):
            part.seqs[producer_id] += 1
            sent.append((burst or rng.choice(STREAMS), part.seqs[producer_id], part.sizes.pick(rng)))
        replies, complete = pipe.run(
            [("XADD", stream, "*", *entry_fields(producer_id, seq, size)) for stream, seq, size in sent]
        )
        for index, (stream, seq, _) in enumerate(sent):
            reply = replies[index] if index < len(replies) else None
            if isinstance(reply, Exception):
                recorder.errors.append(f"XADD {stream!r}: {reply}")
                reply = None
            recorder.history.adds.append(Add(stream, producer_id, seq, None if reply is None else parse_id(reply)))
            recorder.acked += reply is not None
        if not complete:
            return


def stream_consumer(cycle: Cycle, part: Streams, group: bytes, name: bytes, seed: float, *, work: bool) -> None:
    """A work consumer acknowledges and deletes, leaves some entries pending and claims idle ones; a tap only acks.

    What a round receives is acknowledged in the next round's pipeline, so XACKs are in flight when the kill lands.
    """
    rng = random.Random(seed)
    pipe, recorder = cycle.connect(part.name, StreamHistory())
    history = recorder.history
    received: dict[bytes, list[StreamId]] = {}
    first_round = True
    while not cycle.stop.is_set():
        commands: list[tuple[Any, ...]] = []
        parts: list[tuple[str, list[bytes], list[StreamId]]] = []  # kind, streams, IDs named
        for stream, ids in received.items():
            done = [i for i in ids if not work or rng.random() >= LEFT_PENDING]
            if done:
                commands.append(("XACK", stream, group, *map(format_id, done)))
                parts.append(("ack", [stream], done))
                if work:
                    commands.append(("XDEL", stream, *map(format_id, done)))
                    parts.append(("del", [stream], done))
        received = {}
        if work and (first_round or rng.random() < 0.5):
            # Claiming is what brings back entries left pending on purpose or by the killed run.
            for stream in STREAMS if first_round else [rng.choice(STREAMS)]:
                min_idle = 0 if first_round else rng.choice((0, 50))
                commands.append(("XAUTOCLAIM", stream, group, name, min_idle, "0-0", "COUNT", 100))
                parts.append(("claim", [stream], []))
        elif first_round:
            # A restarted consumer asks for its own pending entries first: those the killed run never acked.
            commands.append(("XREADGROUP", "GROUP", group, name, "COUNT", 1000, "STREAMS", *STREAMS, *["0"] * 4))
            parts.append(("own", list(STREAMS), []))
        first_round = False
        for _ in range(rng.randint(3, 12)):
            streams = rng.sample(STREAMS, rng.choice((1, 1, 2)))
            block = ("BLOCK", 10) if rng.random() < 0.3 else ()
            count = rng.choice((1, 5, 20, 50))
            commands.append(
                ("XREADGROUP", "GROUP", group, name, "COUNT", count, *block, "STREAMS", *streams, *[">"] * len(streams))
            )
            parts.append(("read", streams, []))
        replies, complete = pipe.run(commands)
        with cycle.lock:
            cycle.stream_rounds += 1
        for index, (kind, streams, ids) in enumerate(parts):
            reply = replies[index] if index < len(replies) else None
            answered = index < len(replies)
            if isinstance(reply, Exception):
                recorder.errors.append(f"{commands[index]}: {reply}")
                answered, reply = False, None
            recorder.acked += answered
            stream = streams[0]
            if kind == "ack":
                history.acks.append(Ack(stream, group, ids, answered))
            elif kind == "del":
                history.deletes.append(Delete(stream, ids, answered))
            elif kind == "claim":
                if not answered:
                    history.claims.append(Claim(stream, group, name, None, None))
                    continue
                claimed = [parse_id(entry[0]) for entry in reply[1]]
                history.claims.append(Claim(stream, group, name, claimed, [parse_id(i) for i in reply[2]]))
                received.setdefault(stream, []).extend(claimed)
            else:
                delivered = {key: [parse_id(entry[0]) for entry in entries] for key, entries in reply or []}
                if kind == "own":  # a history read moves nothing: it only says what is still to be acked
                    for key, still_pending in delivered.items():
                        received.setdefault(key, []).extend(still_pending)
                    continue
                for key in streams:
                    got = delivered.get(key, []) if answered else None
                    history.reads.append(Read(key, group, name, got))
                    received.setdefault(key, []).extend(got or [])
        if not complete:
            return


def create_groups(port: int) -> None:
    pipe = Pipeline(port)
    try:
        commands = [("XGROUP", "CREATE", s, g, "0", "MKSTREAM") for s in STREAMS for g in (WORK_GROUP, TAP_GROUP)]
        replies, complete = pipe.run(commands)
        assert complete and all(reply == b"OK" for reply in replies), replies
    finally:
        pipe.close()


def read_streams(port: int) -> StreamStates:
    """XRANGE, XINFO GROUPS and XPENDING of every campaign stream; a missing stream is left out."""
    pipe = Pipeline(port)
    try:
        commands = [command for s in STREAMS for command in (("XRANGE", s, "-", "+"), ("XINFO", "GROUPS", s))]
        replies, complete = pipe.run(commands)
        assert complete
        streams: StreamStates = {}
        for stream, entries, groups in zip(STREAMS, replies[::2], replies[1::2], strict=True):
            if isinstance(groups, Exception):
                assert not entries, f"{stream!r} has entries but XINFO GROUPS says {groups}"
                continue
            state = StreamState([(parse_id(i), fields) for i, fields in entries], {})
            for flat in groups:
                info = dict(zip(flat[::2], flat[1::2], strict=True))
                (rows,), _ = pipe.run([("XPENDING", stream, info[b"name"], "-", "+", 1 << 30)])
                state.groups[info[b"name"]] = GroupState(
                    parse_id(info[b"last-delivered-id"]),
                    {parse_id(row[0]): row[1] for row in rows},
                    info[b"pending"],
                )
            streams[stream] = state
        return streams
    finally:
        pipe.close()


def read_lists(port: int) -> dict[bytes, list[bytes]]:
    pipe = Pipeline(port)
    try:
        (keys,), _ = pipe.run([("KEYS", "*")])
        keys = [key for key in keys if owns_list(key)]
        replies, complete = pipe.run([("LRANGE", key, 0, -1) for key in keys])
        assert complete
        return {key: values for key, values in zip(keys, replies, strict=True) if values}
    finally:
        pipe.close()


class Lists(Part):
    name = "lists"

    def __init__(self, sizes: SizeMix) -> None:
        super().__init__(sizes)
        self.seqs = [0] * PRODUCERS  # per producer, for the life of the data directory
        self.order = directions(QUEUES)

    def clients(self, cycle: Cycle, rng: random.Random) -> list[Callable[[], None]]:
        bodies: list[Callable[[], None]] = [partial(producer, cycle, self, i, rng.random()) for i in range(PRODUCERS)]
        bodies += [partial(consumer, cycle, self, kind, rng.random()) for kind in ("pop", "pop", "block", "move")]
        return bodies

    def owns(self, key: bytes) -> bool:
        return owns_list(key)

    def read(self, port: int) -> dict[bytes, list[bytes]]:
        return read_lists(port)

    def check(self, baseline: Any, cycle: Cycle, observed: Any) -> list[str]:
        history = History()
        for recorder in cycle.of(self.name):
            history.pushes += recorder.history.pushes
            history.pops += recorder.history.pops
            history.moves += recorder.history.moves
        return check_recovery(baseline, history, observed, self.order)


class Streams(Part):
    name = "streams"

    def __init__(self, sizes: SizeMix) -> None:
        super().__init__(sizes)
        # Producer numbers follow the list producers', so no two producers share a sequence.
        self.seqs = [0] * (PRODUCERS + STREAM_PRODUCERS)
        self.xadds = self.deliveries = self.xacks = self.claims = self.longest = self.pending = 0

    def prepare(self, port: int) -> None:
        create_groups(port)

    def clients(self, cycle: Cycle, rng: random.Random) -> list[Callable[[], None]]:
        bodies: list[Callable[[], None]] = [
            partial(stream_producer, cycle, self, PRODUCERS + i, rng.random()) for i in range(STREAM_PRODUCERS)
        ]
        bodies += [
            partial(stream_consumer, cycle, self, group, name, rng.random(), work=work) for group, name, work in READERS
        ]
        return bodies

    def ready(self, cycle: Cycle) -> bool:
        # List producers answer faster than stream consumers go round (read, then ack in the next pipeline): the
        # kill also waits for each of those to have gone round twice, or a cycle could end before any XACK is
        # answered.
        return cycle.stream_rounds >= 2 * len(READERS)

    def owns(self, key: bytes) -> bool:
        return key in STREAMS

    def read(self, port: int) -> StreamStates:
        return read_streams(port)

    def check(self, baseline: Any, cycle: Cycle, observed: Any) -> list[str]:
        streams = StreamHistory()
        for recorder in cycle.of(self.name):
            streams.extend(recorder.history)
        self.xadds += sum(add.id is not None for add in streams.adds)
        self.deliveries += sum(len(read.ids or ()) for read in streams.reads)
        self.xacks += sum(len(ack.ids) for ack in streams.acks if ack.answered)
        self.claims += sum(len(claim.claimed or ()) for claim in streams.claims)
        self.longest = max([self.longest] + [len(state.entries) for state in observed.values()])
        self.pending += sum(len(g.pending) for state in observed.values() for g in state.groups.values())
        return check_streams(baseline, streams, observed)

    def report(self) -> str:
        return (
            f"streams: {self.xadds} XADDs acknowledged, {self.deliveries} entries delivered, {self.xacks} IDs "
            f"XACKed, {self.claims} claimed, {self.pending} pending entries checked after restarts, longest stream "
            f"after a restart {self.longest} entries"
        )

    def got_going(self) -> str | None:
        if not (self.xadds and self.deliveries and self.xacks and self.claims):
            return "the stream workload never got going"
        return None
