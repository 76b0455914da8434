"""kill -9 under load: a respq subprocess under ``appendfsync always`` loses nothing it acknowledged.

Producer threads push numbered messages (single and batched LPUSH/RPUSH, pipelined by the hundred, sometimes a burst
into one queue) into many queues while consumer threads pop (LPOP/RPOP with a count or bursts without, BLPOP/BRPOP,
LMOVE into ``moved:<queue>``). In the same
cycles, stream producers XADD numbered entries into a few streams (one at a time and pipelined by the hundred, sometimes
all into one stream);
two consumers of the work group ``g`` XREADGROUP (some with BLOCK), then XACK + XDEL what they got in their next
pipelined round (so acknowledgements are in flight at the kill), leave a few entries pending and XAUTOCLAIM idle
ones, those the killed run left behind included; one consumer of a second group ``tap`` first asks for its own
pending entries (what the killed run never acked), then reads and XACKs everything, never deleting.

Every reply is recorded. The whole process group is SIGKILLed while hundreds of commands are unanswered, a journal
sync is almost always in flight and checkpoints run every megabyte of journal. After each restart the lists and
streams are read back and checked against the replies (tests/crash/model.py and tests/crash/stream_model.py say
exactly what is checked).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ServerProcess, start_respq
from respq.types.lists.model import RIGHT
from tests.crash.conftest import Campaign
from tests.crash.model import SIZE_MIXES, History, SizeMix, check_recovery, message
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
    Streams,
    StreamState,
    check_streams,
    entry_fields,
    format_id,
    parse_id,
)

SERVER_OPTIONS = ("--appendfsync", "always", "--checkpoint-bytes", "1mb", "--segment-size", "64kb")
QUEUES = 24
PRODUCERS = 3
STREAMS = [b"s%d" % index for index in range(4)]
STREAM_PRODUCERS = 2  # producer numbers follow the list producers', so every producer has its own sequence
WORK_GROUP, WORK_CONSUMERS = b"g", (b"c0", b"c1")
TAP_GROUP, TAP_CONSUMER = b"tap", b"t0"
LEFT_PENDING = 0.05  # share of delivered work entries a consumer does not acknowledge, for XAUTOCLAIM to find


@dataclass
class Recorder:
    """What one client thread was told; merged into a History after the kill."""

    history: History = field(default_factory=History)
    streams: StreamHistory = field(default_factory=StreamHistory)
    errors: list[str] = field(default_factory=list)
    acked: int = 0


@dataclass
class Cycle:
    port: int
    rng: random.Random
    seqs: list[int]
    sizes: SizeMix
    stop: threading.Event = field(default_factory=threading.Event)
    recorders: list[Recorder] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stream_rounds: int = 0  # stream consumer pipelines answered (whole or cut by the kill)

    def connect(self) -> tuple[Pipeline, Recorder]:
        pipe, recorder = Pipeline(self.port), Recorder()
        with self.lock:
            self.pipelines.append(pipe)
            self.recorders.append(recorder)
        return pipe, recorder

    def in_flight(self) -> int:
        with self.lock:
            return sum(pipe.in_flight for pipe in self.pipelines)

    def acked(self) -> int:
        with self.lock:
            return sum(recorder.acked for recorder in self.recorders)


def producer(cycle: Cycle, producer_id: int, seed: int) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect()
    while not cycle.stop.is_set():
        commands, pushes = [], []
        size = rng.randint(100, 300)
        while len(commands) < size:
            key = queue_key(rng.randrange(QUEUES))
            # Sometimes a burst of pushes to one queue: the server runs those as one push (a pipelined run).
            for _ in range(min(rng.randint(2, 16) if rng.random() < 0.2 else 1, size - len(commands))):
                values = []
                for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 10)):
                    cycle.seqs[producer_id] += 1
                    values.append(message(producer_id, cycle.seqs[producer_id], cycle.sizes.pick(rng)))
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


def consumer(cycle: Cycle, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect()
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


def stream_producer(cycle: Cycle, producer_id: int, seed: int) -> None:
    rng = random.Random(seed)
    pipe, recorder = cycle.connect()
    while not cycle.stop.is_set():
        sent: list[tuple[bytes, int, int]] = []
        burst = rng.choice(STREAMS) if rng.random() < 0.3 else None  # all into one stream: one run on the server
        for _ in range(1 if rng.random() < 0.3 else rng.randint(20, 200)):
            cycle.seqs[producer_id] += 1
            sent.append((burst or rng.choice(STREAMS), cycle.seqs[producer_id], cycle.sizes.pick(rng)))
        replies, complete = pipe.run(
            [("XADD", stream, "*", *entry_fields(producer_id, seq, size)) for stream, seq, size in sent]
        )
        for index, (stream, seq, _) in enumerate(sent):
            reply = replies[index] if index < len(replies) else None
            if isinstance(reply, Exception):
                recorder.errors.append(f"XADD {stream!r}: {reply}")
                reply = None
            recorder.streams.adds.append(Add(stream, producer_id, seq, None if reply is None else parse_id(reply)))
            recorder.acked += reply is not None
        if not complete:
            return


def stream_consumer(cycle: Cycle, group: bytes, name: bytes, seed: int, *, work: bool) -> None:
    """A work consumer acknowledges and deletes, leaves some entries pending and claims idle ones; a tap only acks.

    What a round receives is acknowledged in the next round's pipeline, so XACKs are in flight when the kill lands.
    """
    rng = random.Random(seed)
    pipe, recorder = cycle.connect()
    history = recorder.streams
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


def read_streams(port: int) -> Streams:
    """XRANGE, XINFO GROUPS and XPENDING of every campaign stream; a missing stream is left out."""
    pipe = Pipeline(port)
    try:
        commands = [command for s in STREAMS for command in (("XRANGE", s, "-", "+"), ("XINFO", "GROUPS", s))]
        replies, complete = pipe.run(commands)
        assert complete
        streams: Streams = {}
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
        keys = [key for key in keys if key not in STREAMS]
        replies, complete = pipe.run([("LRANGE", key, 0, -1) for key in keys])
        assert complete
        return {key: values for key, values in zip(keys, replies, strict=True) if values}
    finally:
        pipe.close()


@dataclass
class CycleResult:
    history: History
    streams: StreamHistory
    errors: list[str]
    in_flight: int  # unanswered commands when the kill landed
    acked: int  # replies received


def run_cycle(server: ServerProcess, rng: random.Random, seqs: list[int], sizes: SizeMix) -> CycleResult:
    """Load, then SIGKILL once enough replies came back; returns what the clients were told and the load figures."""
    cycle = Cycle(server.port, rng, seqs, sizes)
    threads = [threading.Thread(target=producer, args=(cycle, i, rng.random()), daemon=True) for i in range(PRODUCERS)]
    threads += [
        threading.Thread(target=consumer, args=(cycle, kind, rng.random()), daemon=True)
        for kind in ("pop", "pop", "block", "move")
    ]
    threads += [
        threading.Thread(target=stream_producer, args=(cycle, PRODUCERS + i, rng.random()), daemon=True)
        for i in range(STREAM_PRODUCERS)
    ]
    readers = [(WORK_GROUP, name, True) for name in WORK_CONSUMERS] + [(TAP_GROUP, TAP_CONSUMER, False)]
    threads += [
        threading.Thread(
            target=stream_consumer, args=(cycle, group, name, rng.random()), kwargs={"work": work}, daemon=True
        )
        for group, name, work in readers
    ]
    for thread in threads:
        thread.start()
    target = rng.randint(1000, 5000)
    # List producers answer faster than stream consumers go round (read, then ack in the next pipeline): the kill
    # also waits for each of those to have gone round twice, or a cycle could end before any XACK is answered.
    stream_rounds = 2 * len(readers)
    deadline = time.monotonic() + 20
    while (cycle.acked() < target or cycle.stream_rounds < stream_rounds) and time.monotonic() < deadline:
        time.sleep(0.005)  # polling the replies received, not ordering anything
    in_flight = cycle.in_flight()
    # A server that died on its own would pass for a killed one: its exit must be the kill's.
    assert server.alive(), "the server exited under load:\n" + server.output.decode(errors="replace")[-4000:]
    server.stop()  # SIGKILL to the process group, mid-load
    cycle.stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a client thread did not notice the kill"
    result = CycleResult(History(), StreamHistory(), [], in_flight, cycle.acked())
    for recorder in cycle.recorders:
        result.history.pushes += recorder.history.pushes
        result.history.pops += recorder.history.pops
        result.history.moves += recorder.history.moves
        result.streams.extend(recorder.streams)
        result.errors += recorder.errors
    return result


def test_kill9_under_load_loses_nothing_acknowledged(tmp_path: Path, campaign: Campaign) -> None:
    kill9_campaign(tmp_path, campaign, campaign.rng("kill9"), campaign.cycles_or(ci=8, long=1000), campaign.sizes)


def test_kill9_with_large_values_loses_nothing_acknowledged(tmp_path: Path, campaign: Campaign) -> None:
    """The same load with messages and stream values around the storage's blocks (1 in 20 of them)."""
    rng = campaign.rng("kill9-large")
    kill9_campaign(tmp_path, campaign, rng, campaign.cycles_or(ci=2, long=100), SIZE_MIXES["large"])


def kill9_campaign(tmp_path: Path, campaign: Campaign, rng: random.Random, cycles: int, sizes: SizeMix) -> None:
    data_dir = tmp_path / "data"
    seqs = [0] * (PRODUCERS + STREAM_PRODUCERS)
    expected_order = directions(QUEUES)
    server = start_respq(data_dir, *SERVER_OPTIONS)
    create_groups(server.port)
    baseline: dict[bytes, list[bytes]] = {}
    stream_baseline = read_streams(server.port)
    done, in_flight_total, acked_total, restarts = 0, 0, 0, []
    xadds = deliveries = xacks = claims = longest = pending = 0
    deadline = time.monotonic() + campaign.seconds
    try:
        while done < cycles and time.monotonic() < deadline:
            result = run_cycle(server, rng, seqs, sizes)
            done += 1
            in_flight_total += result.in_flight
            acked_total += result.acked
            streams = result.streams
            xadds += sum(add.id is not None for add in streams.adds)
            deliveries += sum(len(read.ids or ()) for read in streams.reads)
            xacks += sum(len(ack.ids) for ack in streams.acks if ack.answered)
            claims += sum(len(claim.claimed or ()) for claim in streams.claims)
            started = time.monotonic()
            server = start_respq(data_dir, *SERVER_OPTIONS)
            restarts.append(time.monotonic() - started)
            observed = read_lists(server.port)
            stream_observed = read_streams(server.port)
            longest = max([longest] + [len(state.entries) for state in stream_observed.values()])
            pending += sum(len(g.pending) for state in stream_observed.values() for g in state.groups.values())
            problems = result.errors + check_recovery(baseline, result.history, observed, expected_order)
            problems += check_streams(stream_baseline, streams, stream_observed)
            assert not problems, f"seed {campaign.seed}, cycle {done}:\n" + "\n".join(problems[:20])
            baseline, stream_baseline = observed, stream_observed
    finally:
        server.stop()
    print(
        f"kill -9 ({'large' if sizes.share else 'small'} values): {done} cycles, {acked_total} replies checked, "
        f"{in_flight_total / max(done, 1):.0f} commands in "
        f"flight per kill on average, restart (process start to ready) max {max(restarts):.2f}s, "
        f"seed {campaign.seed}; streams: {xadds} XADDs acknowledged, {deliveries} entries delivered, "
        f"{xacks} IDs XACKed, {claims} claimed, {pending} pending entries checked after restarts, longest stream "
        f"after a restart {longest} entries"
    )
    assert in_flight_total / max(done, 1) >= 100, "the kills did not land under real in-flight load"
    assert xadds and deliveries and xacks and claims, "the stream workload never got going"
