"""python -m bench.embedded: respq.open's push and pop of 100-value batches, beside the server's lpush100_p16 row.

The server row is run as ``python -m bench`` runs it (a fresh respq on core 0, redis-benchmark with 50 clients at
P=16 on core 1). The in-process rows run this process on core 0 alone (the server's core budget; the load is the
application's own threads), with ``--threads`` threads each pushing (or popping) 100 values of 100 B per call on
one queue of a fresh data directory, so that the acknowledger group-commits across them: one call per operation,
then (the in-process analogue of the server row's pipelines) ``Queues.pipeline()`` with as many operations in
flight as the server row has requests in flight (50 clients x P=16 = 800: 1 thread x 800, 16 threads x 50).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import respq
from bench.servers import SERVER_CORE, RespqServer
from bench.workloads import BATCH_VALUES, CLIENTS, PAYLOAD, ROWS, run_row

SERVER_ROW = "lpush100_p16"
IN_FLIGHT = CLIENTS * ROWS[SERVER_ROW].pipeline  # the server row's requests in flight: the pipelined rows' too


@dataclass
class Measured:
    name: str
    messages: int
    seconds: float
    cpu: float  # seconds of CPU the process (or the server) used

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def line(self) -> str:
        return (f"{self.name:<48} {self.rate:>12,.0f} msg/s   {self.cpu / self.seconds:>5.0%} CPU   "
                f"{self.cpu / self.messages * 1e6:.2f} us CPU/msg")


def _run_threads(threads: int, duration: float, work: Callable[[], int]) -> tuple[int, float, float]:
    """Calls ``work()`` (which returns the messages it moved) in ``threads`` threads until ``duration`` passes or one
    finds nothing more to do; (messages, seconds, process CPU seconds)."""
    deadline = time.monotonic() + duration
    counts = [0] * threads
    start = threading.Barrier(threads + 1)

    def loop(index: int) -> None:
        start.wait()
        moved = 0
        while time.monotonic() < deadline:
            step = work()
            if not step:
                break
            moved += step
        counts[index] = moved

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    cpu = time.process_time()
    began = time.monotonic()
    start.wait()
    for worker in workers:
        worker.join()
    return sum(counts), time.monotonic() - began, time.process_time() - cpu


def in_process(policy: str, threads: int, duration: float, depth: int) -> list[Measured]:
    """Pushes then pops with ``threads`` threads; ``depth`` > 1: each thread runs pipelines of ``depth``
    operations (so threads x depth operations in flight), else one call per operation."""
    batch = [PAYLOAD] * BATCH_VALUES
    if depth > 1:
        label = f"{threads} threads x pipeline {depth}"

        def push() -> int:
            pipeline = queues.pipeline()
            for _ in range(depth):
                pipeline.push("b", batch)
            pipeline.execute()
            return depth * BATCH_VALUES

        def pop() -> int:
            pipeline = queues.pipeline()
            for _ in range(depth):
                pipeline.pop("b", BATCH_VALUES)
            return sum(map(len, pipeline.execute()))
    else:
        label = f"{threads} threads"

        def push() -> int:
            queues.push("b", batch)
            return BATCH_VALUES

        def pop() -> int:
            return len(queues.pop("b", BATCH_VALUES))

    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as directory:
        queues = respq.open(Path(directory) / "data", appendfsync=policy)
        try:
            queues.push("warm", batch)
            pushed, seconds, cpu = _run_threads(threads, duration, push)
            results = [Measured(f"in-process push 100, {label}", pushed, seconds, cpu)]
            if queues.len("b") != pushed:
                raise AssertionError(f"LLEN b is {queues.len('b')}, {pushed} were pushed")
            popped, seconds, cpu = _run_threads(threads, duration, pop)
            results.append(Measured(f"in-process pop 100, {label}", popped, seconds, cpu))
        finally:
            queues.close()
    return results


def server_row(policy: str, duration: float) -> Measured:
    with RespqServer(policy) as server:
        result = run_row(server, ROWS[SERVER_ROW], duration, min(duration, 2.0), None)
    return Measured(f"server {SERVER_ROW} (redis-benchmark)", result.messages, result.seconds,
                    result.server_cpu * result.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--threads", type=int, action="append", help="caller threads (repeatable; default 1 and 16)")
    parser.add_argument("--policy", action="append", choices=("always", "everysec"), help="default: both")
    parser.add_argument("--no-server", action="store_true", help="skip the server row")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipelined in-process rows")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    print(f"pipelined rows: {IN_FLIGHT} operations in flight, as the server row's {CLIENTS} clients x P="
          f"{ROWS[SERVER_ROW].pipeline}", flush=True)
    for policy in args.policy or ["always", "everysec"]:
        print(f"appendfsync {policy}", flush=True)
        if not args.no_server:
            print("  " + server_row(policy, args.duration).line(), flush=True)
        for threads in args.threads or [1, 16]:
            depths = [1] if args.no_pipeline else [1, max(IN_FLIGHT // threads, 1)]
            for depth in depths:
                for measured in in_process(policy, threads, args.duration, depth):
                    print("  " + measured.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
