"""Queue frameworks against respq and redis-server: jobs/s end to end, server CPU per 1000 jobs and RSS, side by side.

    python -m bench.frameworks --framework all --jobs 2000

Both servers run with `appendfsync always` in fresh directories, pinned to the server core; the framework's client
and workers run on the client core. RQ (SimpleWorker) and arq run in this process, enqueuing every job first and
then working them in burst mode (jobs/s counts both phases; enqueue/s is the first alone). Celery (`--pool threads`,
default concurrency), Sidekiq (concurrency 10) and BullMQ (concurrency 50) start their worker first, then the jobs
are enqueued while it works, and the run ends when the queue is drained. Every job is a no-op. Not part of CI: it
needs the packages of tests/frameworks/requirements.txt, Debian's ruby-sidekiq, and `npm ci` in
tests/frameworks/node for BullMQ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.servers import CLIENT_CORE, REPO_ROOT, SERVERS, Server

POLICY = "always"
WORKER_START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 3600.0
POLL_SECONDS = 0.01  # how often the queue is checked for being drained (a few commands per job at most)
NODE_MODULES = REPO_ROOT / "tests" / "frameworks" / "node" / "node_modules"


@dataclass(frozen=True)
class Result:
    seconds: float  # from the first job enqueued to the last one done
    cpu: float  # server CPU seconds (user + system) over that time
    rss: int  # server RSS at the end, bytes
    enqueue_seconds: float | None = None  # enqueuing alone, where it is a phase before the work


def _url(server: Server) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def _wait_drained(server: Server, *, lists: tuple[str, ...], hashes: tuple[str, ...] = ()) -> None:
    """Until every list and hash named is empty (the framework's queue, and its unacknowledged messages)."""
    import redis

    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for name in lists:
            pipe.llen(name)
        for name in hashes:
            pipe.hlen(name)
        if not any(pipe.execute()):
            client.close()
            return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{lists + hashes} not drained in {DRAIN_TIMEOUT} s")


@contextmanager
def _worker(argv: list[str], ready: Callable[[bytes], bool], env: dict[str, str]) -> Iterator[None]:
    """A framework's worker process on the client core, once ``ready`` (given its log so far) says so; stopped
    afterwards."""
    with tempfile.TemporaryFile() as log:
        environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **env)
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + WORKER_START_TIMEOUT
            while True:
                log.seek(0)
                output = log.read()
                if ready(output):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv} did not start:\n{output.decode(errors='replace')}")
                time.sleep(0.05)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def run_rq(server: Server, jobs: int) -> Result:
    import redis
    from rq import Queue, SimpleWorker

    connection = redis.Redis(port=server.port, socket_timeout=30)
    queue = Queue("bench", connection=connection)
    before = server.sample()
    for _ in range(jobs):
        queue.enqueue("bench.framework_apps.noop")
    enqueued = server.sample()
    worker = SimpleWorker([queue], connection=connection)
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    done = server.sample()
    if queue.count:
        raise RuntimeError(f"{queue.count} jobs left in the queue")
    return Result(done.when - before.when, done.cpu_since(before), done.rss_bytes, enqueued.when - before.when)


def run_arq(server: Server, jobs: int) -> Result:
    import asyncio

    from arq import Worker, create_pool
    from arq.connections import RedisSettings
    from arq.worker import func

    from bench.framework_apps import arq_noop

    settings = RedisSettings(port=server.port)

    async def run() -> Result:
        pool = await create_pool(settings)
        before = server.sample()
        for _ in range(jobs):
            await pool.enqueue_job("noop")
        enqueued = server.sample()
        worker = Worker(
            functions=[func(arq_noop, name="noop")], redis_settings=settings, burst=True, handle_signals=False,
            poll_delay=0.05,
        )
        await worker.main()
        done = server.sample()
        await worker.close()
        left = await pool.zcard("arq:queue")
        await pool.aclose()
        if left:
            raise RuntimeError(f"{left} jobs left in the queue")
        return Result(done.when - before.when, done.cpu_since(before), done.rss_bytes, enqueued.when - before.when)

    return asyncio.run(run())


def run_celery(server: Server, jobs: int) -> Result:
    from bench.framework_apps import celery_app

    argv = [sys.executable, "-m", "celery", "-A", "bench.framework_apps", "worker", "--pool", "threads",
            "--loglevel", "INFO"]
    with _worker(argv, lambda log: b" ready." in log, {"BENCH_CELERY": "1", "BENCH_URL": _url(server)}):
        app = celery_app(_url(server))
        before = server.sample()
        for _ in range(jobs):
            app.send_task("noop")
        _wait_drained(server, lists=("celery",), hashes=("unacked",))
        done = server.sample()
        app.close()
    return Result(done.when - before.when, done.cpu_since(before), done.rss_bytes)


def run_sidekiq(server: Server, jobs: int) -> Result:
    import redis

    script = str(REPO_ROOT / "bench" / "sidekiq_bench.rb")
    env = {"REDIS_URL": _url(server), "RUBYOPT": "-W0"}
    client = redis.Redis(port=server.port)
    # Ready once its first heartbeat has registered the process (what Sidekiq's ProcessSet lists).
    with _worker(["sidekiq", "-r", script, "-c", "10"], lambda _: bool(client.scard("processes")), env):
        before = server.sample()
        subprocess.run(["ruby", script, str(jobs)], check=True, env=dict(os.environ, **env), stdout=subprocess.DEVNULL)
        _wait_drained(server, lists=("queue:default",))
        done = server.sample()
    return Result(done.when - before.when, done.cpu_since(before), done.rss_bytes)


def run_bullmq(server: Server, jobs: int) -> Result:
    if not NODE_MODULES.is_dir():
        raise RuntimeError(f"{NODE_MODULES} is missing: run `npm ci` in {NODE_MODULES.parent}")
    before = server.sample()
    out = subprocess.run(
        ["node", str(REPO_ROOT / "bench" / "bullmq_bench.js"), str(server.port), str(jobs)],
        check=True, capture_output=True, text=True, env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
    ).stdout
    done = server.sample()
    timing = json.loads(out.strip().splitlines()[-1])
    return Result(timing["seconds"], done.cpu_since(before), done.rss_bytes)


def print_commandstats(server: Server, top: int = 15) -> None:
    import redis

    stats = redis.Redis(port=server.port).info("commandstats")
    rows = sorted(stats.items(), key=lambda item: -item[1]["usec"])[:top]
    for name, row in rows:
        print(f"  {name.removeprefix('cmdstat_'):24} calls {row['calls']:7} usec {row['usec']:10}"
              f" per call {row['usec_per_call']:8.1f}")


FRAMEWORKS: dict[str, Callable[[Server, int], Result]] = {
    "rq": run_rq, "celery": run_celery, "arq": run_arq, "sidekiq": run_sidekiq, "bullmq": run_bullmq,
}


def report(framework: str, jobs: int, results: dict[str, Result]) -> None:
    per_k = 1000 / jobs
    print(f"{framework}, {jobs} jobs, appendfsync {POLICY}")
    print(f"{'server':8} {'jobs/s':>8} {'enqueue/s':>10} {'cpu s/1k jobs':>14} {'rss MB':>8}")
    for kind, r in results.items():
        enqueue = f"{jobs / r.enqueue_seconds:10.0f}" if r.enqueue_seconds else f"{'-':>10}"
        print(f"{kind:8} {jobs / r.seconds:8.0f} {enqueue} {r.cpu * per_k:14.2f} {r.rss / 1e6:8.1f}")
    if {"respq", "redis"} <= results.keys():
        a, b = results["respq"], results["redis"]
        print(f"respq/redis: jobs/s {b.seconds / a.seconds:.2f}x, server cpu {a.cpu / b.cpu:.2f}x,"
              f" rss {a.rss / b.rss:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=[*FRAMEWORKS, "all"], default="rq")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--servers", default="respq,redis", help="comma-separated, of: " + ",".join(SERVERS))
    parser.add_argument("--commandstats", action="store_true", help="print each server's costliest commands")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})  # the workers started from here inherit it
    names = list(FRAMEWORKS) if args.framework == "all" else [args.framework]
    for name in names:
        results: dict[str, Result] = {}
        for kind in args.servers.split(","):
            with SERVERS[kind](POLICY) as server:
                if os.environ.get("BENCH_PAUSE"):  # lets a profiler attach: BENCH_PAUSE=1 prints the pid and waits
                    print(f"{kind} pid {server.pid}; press enter", flush=True)
                    input()
                results[kind] = FRAMEWORKS[name](server, args.jobs)
                print(f"{name} on {kind}: {results[kind].seconds:.1f} s", flush=True)
                if args.commandstats:
                    print_commandstats(server)
        report(name, args.jobs, results)


if __name__ == "__main__":
    main()
