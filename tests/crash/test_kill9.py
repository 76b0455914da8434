"""kill -9 under load: a respq subprocess under ``appendfsync always`` loses nothing it acknowledged.

Producer threads push numbered messages (single and batched LPUSH/RPUSH, pipelined by the hundred) into many
queues while consumer threads pop (LPOP/RPOP with a count, BLPOP/BRPOP, LMOVE into ``moved:<queue>``); every
reply is recorded. The whole process group is SIGKILLed while hundreds of commands are unanswered, a journal sync
is almost always in flight and checkpoints run every megabyte of journal. After each restart the lists are read
back and checked against the replies (tests/crash/model.py says exactly what is checked).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ServerProcess, start_respq
from respq.storage import RIGHT
from tests.crash.conftest import Campaign
from tests.crash.model import History, check_recovery, message
from tests.crash.pipeline import Pipeline
from tests.crash.simworkload import directions, moved_key, push_side, queue_key

SERVER_OPTIONS = ("--appendfsync", "always", "--checkpoint-bytes", "1mb", "--segment-size", "64kb")
QUEUES = 24
PRODUCERS = 3


@dataclass
class Recorder:
    """What one client thread was told; merged into a History after the kill."""

    history: History = field(default_factory=History)
    errors: list[str] = field(default_factory=list)
    acked: int = 0


@dataclass
class Cycle:
    port: int
    rng: random.Random
    seqs: list[int]
    stop: threading.Event = field(default_factory=threading.Event)
    recorders: list[Recorder] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

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
        for _ in range(rng.randint(100, 300)):
            key = queue_key(rng.randrange(QUEUES))
            values = []
            for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 10)):
                cycle.seqs[producer_id] += 1
                values.append(message(producer_id, cycle.seqs[producer_id]))
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
        for _ in range(rng.randint(5, 20) if kind == "block" else rng.randint(50, 150)):
            key = queue_key(rng.randrange(QUEUES))
            left = push_side(key) == RIGHT  # FIFO: pop the other end
            if kind == "pop":
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
            if kind == "pop":
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


def read_lists(port: int) -> dict[bytes, list[bytes]]:
    pipe = Pipeline(port)
    try:
        (keys,), _ = pipe.run([("KEYS", "*")])
        replies, complete = pipe.run([("LRANGE", key, 0, -1) for key in keys])
        assert complete
        return {key: values for key, values in zip(keys, replies, strict=True) if values}
    finally:
        pipe.close()


def run_cycle(server: ServerProcess, rng: random.Random, seqs: list[int]) -> tuple[History, list[str], int, int]:
    """Load, then SIGKILL once enough replies came back; returns the history, client errors and the load figures."""
    cycle = Cycle(server.port, rng, seqs)
    threads = [threading.Thread(target=producer, args=(cycle, i, rng.random()), daemon=True) for i in range(PRODUCERS)]
    threads += [
        threading.Thread(target=consumer, args=(cycle, kind, rng.random()), daemon=True)
        for kind in ("pop", "pop", "block", "move")
    ]
    for thread in threads:
        thread.start()
    target = rng.randint(500, 4000)
    deadline = time.monotonic() + 20
    while cycle.acked() < target and time.monotonic() < deadline:
        time.sleep(0.005)  # polling the replies received, not ordering anything
    in_flight = cycle.in_flight()
    server.stop()  # SIGKILL to the process group, mid-load
    cycle.stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a client thread did not notice the kill"
    history = History()
    errors: list[str] = []
    for recorder in cycle.recorders:
        history.pushes += recorder.history.pushes
        history.pops += recorder.history.pops
        history.moves += recorder.history.moves
        errors += recorder.errors
    return history, errors, in_flight, cycle.acked()


def test_kill9_under_load_loses_nothing_acknowledged(tmp_path: Path, campaign: Campaign) -> None:
    rng = campaign.rng("kill9")
    cycles = campaign.cycles_or(ci=8, long=1000)
    data_dir = tmp_path / "data"
    seqs = [0] * PRODUCERS
    expected_order = directions(QUEUES)
    server = start_respq(data_dir, *SERVER_OPTIONS)
    baseline: dict[bytes, list[bytes]] = {}
    done, in_flight_total, acked_total, restarts = 0, 0, 0, []
    deadline = time.monotonic() + campaign.seconds
    try:
        while done < cycles and time.monotonic() < deadline:
            history, errors, in_flight, acked = run_cycle(server, rng, seqs)
            done += 1
            in_flight_total += in_flight
            acked_total += acked
            started = time.monotonic()
            server = start_respq(data_dir, *SERVER_OPTIONS)
            restarts.append(time.monotonic() - started)
            observed = read_lists(server.port)
            problems = errors + check_recovery(baseline, history, observed, expected_order)
            assert not problems, f"seed {campaign.seed}, cycle {done}:\n" + "\n".join(problems[:20])
            baseline = observed
    finally:
        server.stop()
    print(
        f"kill -9: {done} cycles, {acked_total} replies checked, {in_flight_total / max(done, 1):.0f} commands in "
        f"flight per kill on average, restart (process start to ready) max {max(restarts):.2f}s, "
        f"seed {campaign.seed}"
    )
    assert in_flight_total / max(done, 1) >= 100, "the kills did not land under real in-flight load"
