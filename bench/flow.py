"""Closed-loop produce-and-consume flows: producer and consumer processes on the client core, end-to-end latency
from send times carried in the messages, and a check that every message produced was consumed exactly once.

Closed loop: producers pause while more than IN_FLIGHT messages are produced but not yet consumed, so the queue never
builds an unbounded backlog and the end-to-end latency measures the server, not a queue the harness let grow.
A flow (bench/listflow.py, bench/groupflow.py) supplies only its produce command, its consumer and its checks.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import struct
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized

from bench.client import Client, encode
from bench.servers import CLIENT_CORE, Server
from bench.workloads import CheckFailed, RunResult

# Under appendfsync always every reply waits for a sync, so the rate is bounded by messages in flight per sync:
# 8 x 50 produced and 8 x 100 read per round trip keep that bound above what either server delivers here.
PRODUCERS = 8
CONSUMERS = 8
PRODUCER_PIPELINE = 50
READ_COUNT = 100
IN_FLIGHT = 4_000
VALUE_BYTES = 100
BUCKETS_PER_E = 50  # latency histogram resolution: 2% wide buckets

# A value starts with its send time and a message id unique across producers; the rest is padding.
STAMP = struct.Struct("<dQ")
PADDING = b"x" * (VALUE_BYTES - STAMP.size)
SEQUENCE_BITS = 40


@dataclass
class Tally:
    """What one client process did: messages produced or consumed, its CPU, latencies and an id checksum."""

    producer: bool
    messages: int = 0
    cpu_seconds: float = 0.0
    histogram: Counter[int] = field(default_factory=Counter)
    # Count, sum and sum of squares of message ids: equal on both sides only if every id arrived exactly once
    # (a duplicate and a loss would have to cancel out in both sums).
    id_sum: int = 0
    id_square_sum: int = 0

    def add_ids(self, ids: list[int]) -> None:
        self.id_sum += sum(ids)
        self.id_square_sum += sum(message_id * message_id for message_id in ids)

    def record(self, values: list[bytes]) -> None:
        """Latency and id of each value read."""
        now = time.time()
        ids = []
        for value in values:
            sent_at, message_id = STAMP.unpack_from(value)
            self.histogram[int(math.log(max(now - sent_at, 1e-6)) * BUCKETS_PER_E)] += 1
            ids.append(message_id)
        self.add_ids(ids)


class Consumer(ABC):
    """One consumer process's conversation with the server."""

    def __init__(self, index: int) -> None:
        self.index = index

    @abstractmethod
    def take(self, client: Client) -> tuple[list[bytes], int]:
        """One round trip: returns the values read and how many messages it finished consuming."""

    @property
    def holding(self) -> bool:
        """Whether values were read but not yet consumed (a group's unacknowledged entries)."""
        return False


@dataclass(frozen=True)
class Flow:
    row: str
    produce: tuple[bytes, ...]  # the produce command without its value, which goes last
    consumer: type[Consumer]
    check: Callable[[Client, int], None]  # after the run, with the number of messages produced
    setup: Callable[[Client], None] = lambda client: None


class Shared:
    """Counters every client process sees (fork keeps them shared)."""

    def __init__(self, context: mp.context.BaseContext) -> None:
        self.stop = context.Value("b", 0)
        self.produced = context.Value("q", 0)
        self.consumed = context.Value("q", 0)
        self.producers_done = context.Value("i", 0)  # consumers drain until every producer has stopped
        self.tallies: mp.Queue[Tally] = context.Queue()

    def add(self, counter: Synchronized[int], count: int) -> None:
        with counter.get_lock():
            counter.value += count

    def drained(self) -> bool:
        return self.producers_done.value == PRODUCERS and self.consumed.value >= self.produced.value


def _pin_to_client_core() -> None:
    os.sched_setaffinity(0, {int(CLIENT_CORE)})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _producer(port: int, flow: Flow, index: int, shared: Shared) -> None:
    _pin_to_client_core()
    marker = b"\0" * VALUE_BYTES
    head, tail = encode(*flow.produce, marker).split(marker)
    tally = Tally(producer=True)
    with Client(port) as client:
        while not shared.stop.value:
            if shared.produced.value - shared.consumed.value > IN_FLIGHT:
                time.sleep(0.0002)
                continue
            sent_at = time.time()
            first_id = index << SEQUENCE_BITS | tally.messages
            ids = list(range(first_id, first_id + PRODUCER_PIPELINE))
            client.exchange(b"".join(head + STAMP.pack(sent_at, message_id) + PADDING + tail for message_id in ids),
                            PRODUCER_PIPELINE)
            tally.messages += PRODUCER_PIPELINE
            tally.add_ids(ids)
            shared.add(shared.produced, PRODUCER_PIPELINE)
    shared.add(shared.producers_done, 1)
    tally.cpu_seconds = _cpu_seconds()
    shared.tallies.put(tally)


def _consumer(port: int, flow: Flow, index: int, shared: Shared) -> None:
    _pin_to_client_core()
    consumer = flow.consumer(index)
    tally = Tally(producer=False)
    with Client(port) as client:
        while consumer.holding or not shared.drained():
            values, consumed = consumer.take(client)
            tally.record(values)
            if consumed:
                tally.messages += consumed
                shared.add(shared.consumed, consumed)
    tally.cpu_seconds = _cpu_seconds()
    shared.tallies.put(tally)


def percentile(histogram: Counter[int], fraction: float) -> float:
    """Upper edge of the bucket holding the given fraction of samples, in milliseconds."""
    total = sum(histogram.values())
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= fraction * total:
            return math.exp((bucket + 1) / BUCKETS_PER_E) * 1000
    return math.nan


def check_exactly_once(row: str, tallies: list[Tally]) -> int:
    """Returns the number of messages produced after checking each was consumed once."""
    sides = {producer: [tally for tally in tallies if tally.producer == producer] for producer in (True, False)}
    produced, consumed = ((sum(t.messages for t in side), sum(t.id_sum for t in side),
                           sum(t.id_square_sum for t in side)) for side in (sides[True], sides[False]))
    if produced[0] != consumed[0]:
        raise CheckFailed(f"{row}: produced {produced[0]}, consumed {consumed[0]}")
    if produced != consumed:
        raise CheckFailed(f"{row}: as many messages consumed as produced, but not the same ones (ids differ)")
    return produced[0]


def run_flow(server: Server, flow: Flow, duration: float, warmup: float) -> RunResult:
    with Client(server.port) as client:
        flow.setup(client)
    context = mp.get_context("fork")
    shared = Shared(context)
    workers = [context.Process(target=_producer, args=(server.port, flow, index, shared)) for index in range(PRODUCERS)]
    workers += [context.Process(target=_consumer, args=(server.port, flow, index, shared))
                for index in range(CONSUMERS)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(warmup)  # the measured window starts once every client is connected and the flow is steady
        consumed_before, before = shared.consumed.value, server.sample()
        time.sleep(duration)
        consumed_after, after = shared.consumed.value, server.sample()
        shared.stop.value = 1
        tallies = [shared.tallies.get(timeout=120) for _ in workers]
    finally:
        shared.stop.value = 1
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    produced = check_exactly_once(flow.row, tallies)
    with Client(server.port) as client:
        flow.check(client, produced)
    window = after.when - before.when
    delivered = consumed_after - consumed_before
    histogram: Counter[int] = Counter()
    for tally in tallies:
        histogram.update(tally.histogram)
    # Client CPU is only known per process lifetime, so it is averaged over the whole run.
    return RunResult.measured(server, flow.row, delivered, window, before, after,
                              (percentile(histogram, 0.50), percentile(histogram, 0.99)),
                              sum(tally.cpu_seconds for tally in tallies) / (window + warmup))
