"""What Prometheus scrapes cost RESP clients: PING latency of a concurrent client while /metrics is scraped back to
back at many queues, against the same client with no scrapes.

``python -m bench.metrics`` starts respq (pinned to core 0, like the other benchmarks) with its HTTP listener, makes
``--queues`` queues (half lists, half streams with a consumer group that lags), then runs three phases of
``--seconds`` each: no scrapes, back-to-back scrapes of ``/metrics`` (aggregated, the default), back-to-back scrapes
of ``/metrics?match=*`` (every queue's series). In every phase a writer changes a few queues every few
milliseconds (values change between scrapes: nothing can be served from a cache) and a pinger on core 1 sends PING
one at a time. The scraper runs in a process of its own so that its parsing never holds the pinger's interpreter.
Prints PING p50 / p99 / max per phase, the p99 rise, and the scrapes' count, duration and size.

Then, the server stopped, the same data directory is opened in this process and the /metrics handler is run under a
Trio instrument that times each of its steps (the time it holds the loop between two yields), in wall-clock and in
CPU time: on a loaded machine the wall-clock figure includes preemption by other processes, the CPU one does not.
Not run by CI.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import sys
import threading
import time
import urllib.request
from typing import Any

import trio

from bench.client import Client, encode
from bench.servers import CLIENT_CORE, RespqServer, free_port

BATCH = 500
WRITE_INTERVAL = 0.005  # seconds between the writer's changes


class MetricsServer(RespqServer):
    def __init__(self) -> None:
        super().__init__("everysec")
        self.http_port = free_port()

    def argv(self) -> list[str]:
        return [*super().argv(), "--http-port", str(self.http_port)]


def load(port: int, queues: int) -> None:
    """``queues`` queues: lists ``l:<n>`` of 3 values, streams ``s:<n>`` of 3 entries with group ``g`` having read
    one of them."""
    lists = queues // 2
    with Client(port) as client:
        for first in range(0, lists, BATCH):
            names = range(first, min(lists, first + BATCH))
            client.exchange(b"".join(encode("RPUSH", b"l:%d" % n, b"a" * 100, b"b", b"c") for n in names), len(names))
        for first in range(0, queues - lists, BATCH):
            names = range(first, min(queues - lists, first + BATCH))
            commands = []
            for n in names:
                key = b"s:%d" % n
                commands += [encode("XADD", key, "*", "f", "v") for _ in range(3)]
                commands.append(encode("XGROUP", "CREATE", key, "g", "0"))
                commands.append(encode("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", key, ">"))
            client.exchange(b"".join(commands), len(commands))


def scrape_loop(url: str, seconds: float, results: Any) -> None:
    """Scrapes ``url`` back to back for ``seconds`` (in its own process); puts (count, durations, last size)."""
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    durations: list[float] = []
    size = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=60) as response:
            size = len(response.read())
        durations.append(time.monotonic() - started)
    results.put((len(durations), durations, size))


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def phase(server: MetricsServer, queues: int, seconds: float, path: str | None) -> dict[str, Any]:
    stop = threading.Event()
    latencies: list[float] = []

    def ping() -> None:
        with Client(server.port) as client:
            payload = encode("PING")
            while not stop.is_set():
                sent = time.perf_counter()
                client.exchange(payload, 1)
                latencies.append(time.perf_counter() - sent)

    def write() -> None:
        n = 0
        with Client(server.port) as client:
            while not stop.is_set():
                index = n % (queues // 2)
                client.pipeline([("RPUSH", b"l:%d" % index, b"x"), ("XADD", b"s:%d" % index, "*", "f", "v")])
                n += 7919
                time.sleep(WRITE_INTERVAL)

    threads = [threading.Thread(target=ping, daemon=True), threading.Thread(target=write, daemon=True)]
    for thread in threads:
        thread.start()
    scraped: tuple[int, list[float], int] | None = None
    if path is None:
        time.sleep(seconds)
    else:
        results: Any = multiprocessing.Queue()
        scraper = multiprocessing.Process(
            target=scrape_loop, args=(f"http://127.0.0.1:{server.http_port}{path}", seconds, results)
        )
        scraper.start()
        scraped = results.get(timeout=seconds + 120)
        scraper.join(30)
    stop.set()
    for thread in threads:
        thread.join(10)
    ordered = sorted(latencies)
    row: dict[str, Any] = {
        "pings": len(ordered),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }
    if scraped is not None:
        count, durations, size = scraped
        row.update(scrapes=count, scrape_ms=statistics.median(durations) * 1e3, scrape_bytes=size)
    return row


def describe(label: str, row: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    text = (
        f"{label}: {row['pings']} PINGs, p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, "
        f"max {row['max_ms']:.2f} ms"
    )
    if baseline is not None:
        text += f" (p99 rise {row['p99_ms'] - baseline['p99_ms']:+.3f} ms)"
    if "scrapes" in row:
        text += f"; {row['scrapes']} scrapes, median {row['scrape_ms']:.0f} ms, {row['scrape_bytes'] / 1024:.0f} KiB"
    return text


class StepTimer(trio.abc.Instrument):
    """Times every step of the tasks it is told of: wall-clock and CPU (thread) seconds."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._started = (0.0, 0.0)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = (time.perf_counter(), time.thread_time())

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        wall, cpu = self._started
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.thread_time() - cpu)


def handler_steps(data_dir: str, query: str, runs: int) -> str:
    """The /metrics handler's steps over ``runs`` renders of the stopped server's data, in this process."""
    from urllib.parse import parse_qs

    from respq.config import load_config
    from respq.http.app import Request
    from respq.http.metrics import metrics
    from respq.log import Logger
    from respq.server import Server

    gc.freeze()
    gc.set_threshold(100_000, 50, 100)  # as the server sets it
    server = Server(load_config(["--dir", data_dir, "--loglevel", "warning"]), Logger("warning"))
    server._load()
    server.loading = False
    timer = StepTimer()

    async def render() -> None:
        for _ in range(runs):
            await metrics(Request(server, "GET", "/metrics", parse_qs(query), {}))

    try:
        trio.run(render, instruments=[timer])
    finally:
        assert server.engine is not None
        server.engine.close()
    wall, cpu = sorted(timer.wall), sorted(timer.cpu)
    return (
        f"{len(wall) // runs} steps per render; wall p50 {statistics.median(wall) * 1e3:.3f} ms, "
        f"p99 {percentile(wall, 0.99) * 1e3:.3f} ms, max {wall[-1] * 1e3:.2f} ms; "
        f"CPU p99 {percentile(cpu, 0.99) * 1e3:.3f} ms, max {cpu[-1] * 1e3:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--renders", type=int, default=5, help="in-process renders timed step by step")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    with MetricsServer() as server:
        started = time.monotonic()
        load(server.port, args.queues)
        print(f"{args.queues} queues loaded in {time.monotonic() - started:.1f} s", flush=True)
        baseline = phase(server, args.queues, args.seconds, None)
        print(describe("no scrapes", baseline, None), flush=True)
        default = phase(server, args.queues, args.seconds, "/metrics")
        print(describe("scraping /metrics (aggregated)", default, baseline), flush=True)
        per_queue = phase(server, args.queues, args.seconds, f"/metrics?match=*&limit={args.queues}")
        print(describe("scraping /metrics?match=* (per queue)", per_queue, baseline), flush=True)
        after = phase(server, args.queues, args.seconds, None)
        print(describe("no scrapes, again", after, None), flush=True)
        server.shutdown()
        data_dir = str(server.dir / "data")
        for label, query in (("aggregated", ""), ("per queue", f"match=*&limit={args.queues}")):
            print(f"handler steps, {label}: {handler_steps(data_dir, query, args.renders)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
