"""Queue workloads from real tools: redis-benchmark and redis-cli --pipe against respq, with counts checked afterwards
and data that survives a kill -9 restart; redis-py's blocking pops and consumer-group loop."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from conftest import require_tool, start_respq


def _benchmark(port: int, *args: str) -> str:
    completed = subprocess.run(
        [require_tool("redis-benchmark"), "-h", "127.0.0.1", "-p", str(port), "-q", *args],
        capture_output=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    assert completed.returncode == 0, output
    assert not re.search(r"error|could not", output, re.IGNORECASE), output
    return output


def _total_length(client: redis.Redis, pattern: str) -> tuple[int, int]:
    keys = list(client.scan_iter(match=pattern, count=1000))
    return len(keys), sum(client.llen(key) for key in keys)


def test_random_queues_survive_kill_and_drain_exactly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    try:
        _benchmark(server.port, "-c", "20", "-P", "16", "-r", "500", "-n", "20000",
                   "LPUSH", "q:__rand_int__", "payload-of-some-bytes")
        client = redis.Redis(port=server.port, socket_timeout=30)
        queues, messages = _total_length(client, "q:*")
        assert messages == 20000
        assert 0 < queues <= 500
        server.stop()  # SIGKILL: everything acknowledged must come back
        server = start_respq(data_dir)
        client = redis.Redis(port=server.port, socket_timeout=30)
        assert _total_length(client, "q:*") == (queues, messages)
        popped = 0
        for key in list(client.scan_iter(match="q:*", count=1000)):
            while True:
                batch = client.rpop(key, 1000)
                if not batch:
                    break
                popped += len(batch)
        assert popped == messages
        assert client.dbsize() == 0
    finally:
        server.stop()


def test_benchmark_list_tests_add_up(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        _benchmark(server.port, "-t", "ping,lpush,rpush,lpop,rpop", "-n", "20000", "-P", "16")
        client = redis.Redis(port=server.port, socket_timeout=30)
        # 20000 LPUSH + 20000 RPUSH onto "mylist", then 20000 LPOP + 20000 RPOP: every pop found an element.
        assert client.llen("mylist") == 0
        info = client.info("commandstats")
        for name in ("lpush", "rpush", "lpop", "rpop"):
            assert info[f"cmdstat_{name}"]["calls"] == 20000
    finally:
        server.stop()


def test_redis_cli_pipe_mass_insertion(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        count = 100_000
        payload = b"".join(b"*3\r\n$5\r\nRPUSH\r\n$4\r\nmass\r\n$%d\r\n%s\r\n" % (len(str(i)), str(i).encode())
                           for i in range(count))
        completed = subprocess.run(
            [require_tool("redis-cli"), "-p", str(server.port), "--pipe"],
            input=payload, capture_output=True, timeout=300, check=False,
        )
        output = completed.stdout.decode(errors="replace")
        assert completed.returncode == 0, output + completed.stderr.decode(errors="replace")
        assert f"errors: 0, replies: {count}" in output, output
        client = redis.Redis(port=server.port, socket_timeout=30)
        assert client.llen("mass") == count
        assert client.lindex("mass", 0) == b"0"
        assert client.lindex("mass", -1) == str(count - 1).encode()
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_worker_loop(server: int, protocol: int) -> None:
    """A producer/worker pair as RQ- and Celery-style workers run it: BRPOP with a float timeout, LMOVE to a
    processing list, acknowledgement by LREM."""
    client = redis.Redis(port=server, protocol=protocol, socket_timeout=10)
    client.lpush("jobs", *[f"job-{i}" for i in range(50)])
    done = []
    while True:
        job = client.lmove("jobs", "processing", "RIGHT", "LEFT")
        if job is None:
            break
        assert client.lrem("processing", 1, job) == 1
        done.append(job)
    assert done == [f"job-{i}".encode() for i in range(50)]
    assert client.brpop(["jobs"], timeout=0.05) is None
    assert client.exists("jobs", "processing") == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_consumer_group_loop(server: int, protocol: int) -> None:
    async def run() -> None:
        client = aioredis.Redis(port=server, protocol=protocol, socket_timeout=10)
        await client.xgroup_create("events", "workers", id="0", mkstream=True)
        ids = [await client.xadd("events", {"n": str(i)}) for i in range(30)]
        seen = []
        while True:
            batch = await client.xreadgroup("workers", "w1", {"events": ">"}, count=7, block=50)
            if not batch:
                break
            entries = batch[0][1] if isinstance(batch, list) else batch[b"events"][0]
            for entry_id, fields in entries:
                seen.append(entry_id)
                assert fields[b"n"] == str(len(seen) - 1).encode()
            assert await client.xack("events", "workers", *[entry_id for entry_id, _ in entries]) == len(entries)
        assert seen == ids
        pending = await client.xpending("events", "workers")
        assert pending["pending"] == 0
        await client.aclose()

    asyncio.run(run())
