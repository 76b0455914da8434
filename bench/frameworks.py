"""Queue frameworks against respq and redis-server: jobs/s and server CPU per 1000 jobs, side by side.

    python -m bench.frameworks --framework rq --jobs 2000

Both servers run with `appendfsync always` in fresh directories, pinned to the server core; the framework's client
and worker run in this process on the client core. Not part of CI: it needs the packages of
tests/frameworks/requirements.txt.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.servers import CLIENT_CORE, SERVERS, Server

POLICY = "always"


def noop() -> None:
    """The job: nothing, so that the queue's own traffic is what is measured."""


@dataclass(frozen=True)
class Result:
    enqueue_seconds: float
    work_seconds: float
    enqueue_cpu: float
    work_cpu: float


def run_rq(server: Server, jobs: int) -> Result:
    import redis
    from rq import Queue, SimpleWorker

    connection = redis.Redis(port=server.port, socket_timeout=30)
    queue = Queue("bench", connection=connection)
    before = server.sample()
    for _ in range(jobs):
        queue.enqueue("bench.frameworks.noop")
    enqueued = server.sample()
    worker = SimpleWorker([queue], connection=connection)
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    done = server.sample()
    if queue.count:
        raise RuntimeError(f"{queue.count} jobs left in the queue")
    return Result(
        enqueued.when - before.when, done.when - enqueued.when,
        enqueued.cpu_since(before), done.cpu_since(enqueued),
    )


def print_commandstats(server: Server, top: int = 15) -> None:
    import redis

    stats = redis.Redis(port=server.port).info("commandstats")
    rows = sorted(stats.items(), key=lambda item: -item[1]["usec"])[:top]
    for name, row in rows:
        print(f"  {name.removeprefix('cmdstat_'):24} calls {row['calls']:7} usec {row['usec']:10}"
              f" per call {row['usec_per_call']:8.1f}")


FRAMEWORKS: dict[str, Callable[[Server, int], Result]] = {"rq": run_rq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), default="rq")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--servers", default="respq,redis", help="comma-separated, of: " + ",".join(SERVERS))
    parser.add_argument("--commandstats", action="store_true", help="print each server's costliest commands")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    run = FRAMEWORKS[args.framework]
    results: dict[str, Result] = {}
    for kind in args.servers.split(","):
        with SERVERS[kind](POLICY) as server:
            if os.environ.get("BENCH_PAUSE"):  # lets a profiler attach: BENCH_PAUSE=1 prints the pid and waits
                print(f"{kind} pid {server.pid}; press enter", flush=True)
                input()
            started = time.monotonic()
            results[kind] = run(server, args.jobs)
            print(f"{kind}: done in {time.monotonic() - started:.1f} s", flush=True)
            if args.commandstats:
                print_commandstats(server)
    per_k = 1000 / args.jobs
    print(f"{args.framework}, {args.jobs} jobs, appendfsync {POLICY}")
    print(f"{'server':8} {'enqueue/s':>10} {'work jobs/s':>12} {'cpu s/1k enq':>13} {'cpu s/1k work':>14}"
          f" {'cpu s/1k all':>13}")
    for kind, r in results.items():
        print(f"{kind:8} {args.jobs / r.enqueue_seconds:10.0f} {args.jobs / r.work_seconds:12.0f}"
              f" {r.enqueue_cpu * per_k:13.2f} {r.work_cpu * per_k:14.2f}"
              f" {(r.enqueue_cpu + r.work_cpu) * per_k:13.2f}")
    if {"respq", "redis"} <= results.keys():
        a, b = results["respq"], results["redis"]
        print(f"respq/redis: work jobs/s {b.work_seconds / a.work_seconds:.2f}x,"
              f" enqueue/s {b.enqueue_seconds / a.enqueue_seconds:.2f}x,"
              f" server cpu {(a.enqueue_cpu + a.work_cpu) / (b.enqueue_cpu + b.work_cpu):.2f}x")


if __name__ == "__main__":
    main()
