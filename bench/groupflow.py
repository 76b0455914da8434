"""Consumer-group flow: producer processes XADD, consumer processes XREADGROUP COUNT 100 and XACK what they read.

Closed loop: producers pause while more than IN_FLIGHT messages are unacknowledged, so the stream never builds an
unbounded backlog and the end-to-end latency measures the server, not a queue the harness let grow.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import struct
import time
from collections import Counter
from multiprocessing.sharedctypes import Synchronized

from bench.client import Client, encode
from bench.servers import CLIENT_CORE, Server
from bench.workloads import CheckFailed, RunResult

# Under appendfsync always every reply waits for a sync, so the rate is bounded by messages in flight per sync:
# 8 x 50 XADDs and 8 x 100 reads keep that bound above what either server delivers here.
PRODUCERS = 8
CONSUMERS = 8
PRODUCER_PIPELINE = 50
READ_COUNT = 100
IN_FLIGHT = 4_000
STREAM = b"s"
GROUP = b"g"
BUCKETS_PER_E = 50  # latency histogram resolution: 2% wide buckets


def _pin_to_client_core() -> None:
    os.sched_setaffinity(0, {int(CLIENT_CORE)})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _producer(
    port: int, stop: Synchronized, produced: Synchronized, acked: Synchronized, done: Synchronized, out: mp.Queue
) -> None:
    _pin_to_client_core()
    sent = 0
    with Client(port) as client:
        while not stop.value:
            if produced.value - acked.value > IN_FLIGHT:
                time.sleep(0.0002)
                continue
            # The send time travels in the first 8 bytes of the 100-byte value.
            stamp = struct.pack("<d", time.time())
            command = encode(b"XADD", STREAM, b"*", b"f", stamp + b"x" * 92)
            client.send(command * PRODUCER_PIPELINE)
            client.read_replies(PRODUCER_PIPELINE)
            sent += PRODUCER_PIPELINE
            with produced.get_lock():
                produced.value += PRODUCER_PIPELINE
    with done.get_lock():
        done.value += 1
    out.put(("producer", sent, _cpu_seconds(), {}))


def _consumer(
    port: int, index: int, done: Synchronized, produced: Synchronized, acked: Synchronized, out: mp.Queue
) -> None:
    _pin_to_client_core()
    name = b"c%d" % index
    read = encode(b"XREADGROUP", b"GROUP", GROUP, name, b"COUNT", READ_COUNT, b"BLOCK", 100, b"STREAMS", STREAM, b">")
    histogram: Counter[int] = Counter()
    acknowledged = 0
    pending_ids: list[bytes] = []
    with Client(port) as client:
        while True:
            # XACK of the previous batch rides in the same write as the next read.
            if pending_ids:
                client.send(encode(b"XACK", STREAM, GROUP, *pending_ids) + read)
                ack_reply, reply = client.read_replies(2)
                if ack_reply != len(pending_ids):
                    raise CheckFailed(f"XACK acknowledged {ack_reply} of {len(pending_ids)}")
                acknowledged += len(pending_ids)
                with acked.get_lock():
                    acked.value += len(pending_ids)
            else:
                if done.value == PRODUCERS and acked.value >= produced.value:
                    break
                client.send(read)
                (reply,) = client.read_replies(1)
            pending_ids = []
            if reply is None:
                continue
            now = time.time()
            for entry_id, fields in reply[0][1]:  # type: ignore[index]
                pending_ids.append(entry_id)
                latency = max(now - struct.unpack("<d", fields[1][:8])[0], 1e-6)
                histogram[int(math.log(latency) * BUCKETS_PER_E)] += 1
    out.put(("consumer", acknowledged, _cpu_seconds(), dict(histogram)))


def percentile(histogram: Counter[int], fraction: float) -> float:
    """Upper edge of the bucket holding the given fraction of samples, in milliseconds."""
    total = sum(histogram.values())
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= fraction * total:
            return math.exp((bucket + 1) / BUCKETS_PER_E) * 1000
    return math.nan


def run_groupflow(server: Server, duration: float, warmup: float) -> RunResult:
    with Client(server.port) as client:
        client.call(b"XGROUP", b"CREATE", STREAM, GROUP, b"$", b"MKSTREAM")
    context = mp.get_context("fork")
    stop = context.Value("b", 0)
    produced = context.Value("q", 0)
    acked = context.Value("q", 0)
    done = context.Value("i", 0)  # producers that have stopped: consumers drain until all have
    out: mp.Queue = context.Queue()
    workers = [context.Process(target=_producer, args=(server.port, stop, produced, acked, done, out))
               for _ in range(PRODUCERS)]
    workers += [context.Process(target=_consumer, args=(server.port, index, done, produced, acked, out))
                for index in range(CONSUMERS)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(warmup)  # the measured window starts once every client is connected and the flow is steady
        acked_before, before = acked.value, server.sample()
        time.sleep(duration)
        acked_after, after = acked.value, server.sample()
        stop.value = 1
        reports = [out.get(timeout=120) for _ in workers]
    finally:
        stop.value = 1
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    window = after.when - before.when
    delivered = acked_after - acked_before
    sent = sum(count for kind, count, _, _ in reports if kind == "producer")
    received = sum(count for kind, count, _, _ in reports if kind == "consumer")
    histogram: Counter[int] = Counter()
    for _, _, _, part in reports:
        histogram.update(part)
    client_cpu = sum(cpu for _, _, cpu, _ in reports)
    with Client(server.port) as client:
        if sent != received:
            raise CheckFailed(f"consumer group flow: produced {sent}, acknowledged {received}")
        length = client.call(b"XLEN", STREAM)
        if length != sent:
            raise CheckFailed(f"XLEN {STREAM.decode()}: got {length}, expected {sent}")
        summary = client.call(b"XPENDING", STREAM, GROUP)
        if not isinstance(summary, list) or summary[0] != 0:
            raise CheckFailed(f"PEL not empty after every entry was acknowledged: {summary!r}")
    total_wall = after.when - before.when + warmup
    return RunResult(
        server=server.kind,
        row="groupflow",
        messages=delivered,
        seconds=window,
        msgs_per_s=delivered / window,
        p50_ms=percentile(histogram, 0.50),
        p99_ms=percentile(histogram, 0.99),
        server_cpu=after.cpu_since(before) / window,
        client_cpu=client_cpu / total_wall,  # whole-run average: client CPU is only known per process lifetime
        disk_bytes_per_msg=(after.write_bytes - before.write_bytes) / max(delivered, 1),
    )
