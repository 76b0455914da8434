"""Memory and scale: RSS growth above the idle server's own RSS, open descriptors, and time to serve a backlog."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.client import Client, encode
from bench.servers import Server, open_fds
from bench.workloads import PAYLOAD, CheckFailed

PIPELINE = 16
SAMPLE_INTERVAL = 0.02


@dataclass(frozen=True)
class Scale:
    queue_messages: int
    queues: int
    backlog_messages: int
    idle_queues: int
    settle_seconds: float


FULL_SCALE = Scale(1_000_000, 10_000, 10_000_000, 100_000, 2.0)
QUICK_SCALE = Scale(20_000, 200, 50_000, 500, 0.1)


class PeakRss:
    """Samples a server's RSS in a thread; ``peak`` is the largest seen since the last ``reset``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            try:
                self.peak = max(self.peak, self.server.sample().rss_bytes)
            except (FileNotFoundError, ProcessLookupError):
                return

    def reset(self) -> None:
        self.peak = self.server.sample().rss_bytes

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _send_all(client: Client, commands: Iterator[bytes]) -> None:
    """Sends pre-encoded commands PIPELINE at a time; every reply must be a value, never an error."""
    batch: list[bytes] = []
    for command in commands:
        batch.append(command)
        if len(batch) == PIPELINE:
            _flush(client, batch)
            batch = []
    if batch:
        _flush(client, batch)


def _flush(client: Client, batch: list[bytes]) -> None:
    client.send(b"".join(batch))
    for reply in client.read_replies(len(batch)):
        if isinstance(reply, Exception):
            raise CheckFailed(f"error reply while loading: {reply}")


def _settled_rss(server: Server, scale: Scale) -> int:
    time.sleep(scale.settle_seconds)
    return server.sample().rss_bytes


def many_queues(server: Server, scale: Scale) -> dict[str, float]:
    """Ingest then consume ``queue_messages`` spread evenly over ``queues`` lists, 10 values per command."""
    per_queue = scale.queue_messages // scale.queues
    values_per_command = 10
    rounds = per_queue // values_per_command
    push = [encode(b"RPUSH", b"q:%d" % index, *[PAYLOAD] * values_per_command) for index in range(scale.queues)]
    pop = [encode(b"LPOP", b"q:%d" % index, values_per_command) for index in range(scale.queues)]
    idle = _settled_rss(server, scale)
    sampler = PeakRss(server)
    try:
        with Client(server.port) as client:
            sampler.reset()
            _send_all(client, (command for _ in range(rounds) for command in push))
            ingest_peak, fds = sampler.peak, open_fds(server.pid)
            ingest_steady = _settled_rss(server, scale)
            lengths = client.pipeline([("LLEN", b"q:%d" % index) for index in range(scale.queues)])
            if set(lengths) != {rounds * values_per_command}:
                raise CheckFailed(f"queue lengths after ingest: {sorted(set(lengths))[:5]}")  # type: ignore[type-var]
            sampler.reset()
            _send_all(client, (command for _ in range(rounds) for command in pop))
            consume_peak = sampler.peak
            consume_steady = _settled_rss(server, scale)
            if client.call("DBSIZE") != 0:
                raise CheckFailed("keys left after consuming every queue")
    finally:
        sampler.close()
    return {
        "messages": scale.queue_messages,
        "queues": scale.queues,
        "idle_rss": idle,
        "ingest_peak": ingest_peak - idle,
        "ingest_steady": ingest_steady - idle,
        "consume_peak": consume_peak - idle,
        "consume_steady": consume_steady - idle,
        "fds": fds,
    }


def backlog(server: Server, scale: Scale) -> dict[str, float]:
    """One list of ``backlog_messages``: ingest, graceful restart (time to serve), then consume in the new process."""
    commands = scale.backlog_messages // 100
    push = encode(b"RPUSH", b"backlog", *[PAYLOAD] * 100)
    pop = encode(b"LPOP", b"backlog", 100)
    idle = _settled_rss(server, scale)
    sampler = PeakRss(server)
    try:
        with Client(server.port) as client:
            sampler.reset()
            started = time.monotonic()
            _send_all(client, (push for _ in range(commands)))
            ingest_seconds = time.monotonic() - started
            ingest_peak, fds = sampler.peak, open_fds(server.pid)
        ingest_steady = _settled_rss(server, scale)
    finally:
        sampler.close()
    server.shutdown()
    restart_seconds = server.start()
    after_restart = _settled_rss(server, scale)
    sampler = PeakRss(server)
    try:
        with Client(server.port) as client:
            if client.call("LLEN", "backlog") != commands * 100:
                raise CheckFailed("backlog length after restart")
            sampler.reset()
            _send_all(client, (pop for _ in range(commands)))
            consume_peak = sampler.peak
            if client.call("EXISTS", "backlog") != 0:
                raise CheckFailed("backlog not empty after consuming every message")
        consume_steady = _settled_rss(server, scale)
    finally:
        sampler.close()
    return {
        "messages": scale.backlog_messages,
        "idle_rss": idle,
        "ingest_msgs_per_s": commands * 100 / ingest_seconds,
        "ingest_peak": ingest_peak - idle,
        "ingest_steady": ingest_steady - idle,
        "fds": fds,
        "restart_seconds": restart_seconds,
        "after_restart": after_restart - idle,
        "consume_peak": consume_peak - idle,
        "consume_steady": consume_steady - idle,
    }


def idle_queues(server: Server, scale: Scale) -> dict[str, float]:
    """``idle_queues`` lists of one message each, then left alone."""
    idle = _settled_rss(server, scale)
    with Client(server.port) as client:
        _send_all(client, (encode(b"RPUSH", b"idle:%d" % index, PAYLOAD) for index in range(scale.idle_queues)))
        if client.call("DBSIZE") != scale.idle_queues:
            raise CheckFailed("DBSIZE after creating the idle queues")
    steady = _settled_rss(server, scale)
    return {"queues": scale.idle_queues, "idle_rss": idle, "steady": steady - idle, "fds": open_fds(server.pid)}


SCENARIOS = {"mem_queues": many_queues, "mem_backlog": backlog, "mem_idle": idle_queues}
NEEDS_RESTART = {"mem_backlog"}  # not run without a disk (the memory policy)
