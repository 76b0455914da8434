"""respq.open: queues and streams in-process over the server's own engine, its durability and its lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio

import respq
from conftest import start_respq, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[respq.Queues]:
    opened = respq.open(tmp_path / "data")
    try:
        yield opened
    finally:
        opened.close()


def test_queue_is_fifo_in_batches(queues: respq.Queues) -> None:
    assert queues.push("jobs", [b"a", "b", b"c"]) == 3
    assert queues.push("jobs", []) == 3
    assert queues.len("jobs") == 3
    assert queues.peek("jobs", 2) == [b"a", b"b"]
    assert queues.pop("jobs", 2) == [b"a", b"b"]
    assert queues.pop("jobs", 5) == [b"c"]
    assert queues.pop("jobs") == []
    assert queues.len("jobs") == 0


def test_pop_wait_times_out_empty(queues: respq.Queues) -> None:
    assert queues.pop_wait("jobs", 3, timeout=0.05) == []
    assert queues.pop_wait("jobs", 3, timeout=0) == []


def test_pop_wait_is_served_by_a_later_push(queues: respq.Queues) -> None:
    port = queues.serve_in_background()
    client = redis.Redis(port=port, socket_timeout=10)
    got: list[bytes] = []
    waiter = threading.Thread(target=lambda: got.extend(queues.pop_wait("jobs", 2, timeout=10)))
    waiter.start()
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    queues.push("jobs", [b"x", b"y", b"z"])
    waiter.join(10)
    assert got == [b"x", b"y"]
    assert queues.peek("jobs", 5) == [b"z"]
    client.close()


def test_streams_with_a_consumer_group(queues: respq.Queues) -> None:
    assert queues.create_group("events", "workers", "0") is True
    assert queues.create_group("events", "workers") is False  # exists: not an error
    ids = queues.add_many("events", [{"n": "1"}, {"n": "2"}, {"n": "3"}])
    assert queues.add("events", {b"n": b"4"}) > ids[-1]
    assert queues.stream_len("events") == 4
    first = queues.read_group("events", "workers", "alice", 2)
    assert first == [(ids[0], {b"n": b"1"}), (ids[1], {b"n": b"2"})]
    # Alice's pending entries, read again from the start of her history.
    assert [entry_id for entry_id, _ in queues.read_group("events", "workers", "alice", 10, start="0")] == ids[:2]
    assert queues.claim("events", "workers", "bob", [ids[0]]) == [(ids[0], {b"n": b"1"})]
    cursor, claimed = queues.autoclaim("events", "workers", "carol", min_idle=0)
    assert cursor == b"0-0" and [entry_id for entry_id, _ in claimed] == ids[:2]
    assert queues.ack("events", "workers", ids[:2]) == 2
    assert queues.ack("events", "workers", ids[:2]) == 0
    rest = queues.read_group("events", "workers", "alice", 10, block=0.05)
    assert [fields[b"n"] for _, fields in rest] == [b"3", b"4"]
    assert queues.read_group("events", "workers", "alice", 10, block=0.05) == []


def test_refusals_raise_with_the_servers_error(queues: respq.Queues) -> None:
    queues.add("events", {"n": "1"})
    with pytest.raises(respq.QueueError, match=r"^WRONGTYPE"):
        queues.push("events", [b"x"])
    with pytest.raises(respq.QueueError, match=r"^NOGROUP"):
        queues.read_group("events", "nobody", "alice")


def test_pipeline_runs_its_operations_in_order(queues: respq.Queues) -> None:
    pipeline = queues.pipeline()
    pipeline.push("jobs", [b"a", "b"]).push("jobs", [b"c"]).pop("jobs", 2).len("jobs").peek("jobs", 5)
    pipeline.add("events", {"n": "1"}).stream_len("events")
    assert len(pipeline) == 7
    results = pipeline.execute()
    assert results[:5] == [2, 3, [b"a", b"b"], 1, [b"c"]]
    assert len(results[5]) == 1 and results[6] == 1
    assert len(pipeline) == 0 and pipeline.execute() == []
    assert queues.create_group("events", "g", "0")
    [entries, acked] = queues.pipeline().read_group("events", "g", "c", 10).ack("events", "g", results[5]).execute()
    assert entries == [(results[5][0], {b"n": b"1"})] and acked == 1


def test_pipeline_refusal_stops_nothing(queues: respq.Queues) -> None:
    """As a Redis pipeline: a refused operation leaves the others done; its error is raised once all ran, or
    returned in its place."""
    queues.add("events", {"n": "1"})
    with pytest.raises(respq.QueueError, match=r"^WRONGTYPE"):
        queues.pipeline().push("jobs", [b"a"]).push("events", [b"x"]).push("jobs", [b"b"]).execute()
    assert queues.peek("jobs", 5) == [b"a", b"b"]
    results = queues.pipeline().push("events", [b"x"]).pop("jobs").execute(raise_on_error=False)
    assert isinstance(results[0], respq.QueueError) and str(results[0]).startswith("WRONGTYPE")
    assert results[1] == [b"a"]


def test_pipeline_waits_for_blocked_callers_turn(queues: respq.Queues) -> None:
    """While a caller waits on a key, a pipeline runs on the engine thread; its push serves the waiting caller once
    the whole pipeline ran (as after a MULTI transaction: nothing runs between its operations)."""
    got: list[bytes] = []
    port = queues.serve_in_background()
    client = redis.Redis(port=port, socket_timeout=10)
    waiter = threading.Thread(target=lambda: got.extend(queues.pop_wait("jobs", 1, timeout=10)))
    waiter.start()
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    assert queues.pipeline().push("jobs", [b"x", b"y"]).len("jobs").execute() == [2, 2]
    waiter.join(10)
    assert got == [b"x"]
    assert queues.peek("jobs", 5) == [b"y"]
    client.close()


def test_closed_queues_refuse(tmp_path: Path) -> None:
    queues = respq.open(tmp_path / "data")
    queues.close()
    queues.close()
    with pytest.raises(respq.QueueClosed):
        queues.push("jobs", [b"x"])


def test_close_releases_callers_waiting_for_a_sync(tmp_path: Path) -> None:
    """Callers waiting for a group commit when close() comes return (their change made durable by the close's
    checkpoint) or raise QueueClosed; none is left waiting, and every acknowledged push is found again."""
    queues = respq.open(tmp_path / "data")
    acked: list[list[bytes]] = [[] for _ in range(8)]
    outcomes: list[str] = []
    pushing = threading.Barrier(9)

    def push(index: int) -> None:
        pushing.wait()
        try:
            for batch in range(100_000):
                value = b"%d:%d" % (index, batch)
                queues.push("jobs", [value])
                acked[index].append(value)
        except respq.QueueClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    pushing.wait()
    wait_until(lambda: sum(map(len, acked)) >= 200)
    queues.close()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads) and outcomes == ["closed"] * 8
    with respq.open(tmp_path / "data") as reopened:
        found = set(reopened.peek("jobs", reopened.len("jobs")))
    assert all(value in found for values in acked for value in values)


def test_reopen_finds_what_was_pushed(tmp_path: Path) -> None:
    with respq.open(tmp_path / "data", appendfsync="everysec") as queues:
        queues.push("jobs", [b"%d" % i for i in range(1000)])
        queues.add("events", {"n": "1"})
    with respq.open(tmp_path / "data") as queues:
        assert queues.len("jobs") == 1000
        assert queues.pop("jobs") == [b"0"]
        assert queues.stream_len("events") == 1


def test_directory_held_by_a_server_is_refused(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data")
    try:
        with pytest.raises(respq.DataDirectoryLocked, match="in use by another process"):
            respq.open(tmp_path / "data")
    finally:
        server.stop()
    with respq.open(tmp_path / "data") as queues:  # the lock goes with the server
        assert queues.len("jobs") == 0


def test_a_server_is_refused_a_directory_open_in_process(tmp_path: Path) -> None:
    with respq.open(tmp_path / "data"):
        with pytest.raises(respq.DataDirectoryLocked):
            respq.open(tmp_path / "data")  # not even this process opens it twice
        result = subprocess.run(
            [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(tmp_path / "data")],
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert b"Can't lock the data directory" in result.stdout


@pytest.mark.parametrize(("appendfsync", "mode"), [("always", "call"), ("everysec", "call"), ("always", "pipeline")])
def test_acknowledged_pushes_survive_kill_9(tmp_path: Path, appendfsync: str, mode: str) -> None:
    """Acknowledged means durable: a process killed right after acknowledgements loses none of them (everysec:
    written to the journal before the acknowledgement, so a process crash loses nothing either), whether each push
    was a call of its own or pipelined (one sync acknowledging the whole pipeline)."""
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.embedding.pushers", str(data), appendfsync, mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        acked = (0, 0)
        for _ in range(50):
            line = child.stdout.readline()
            pushed, added = map(int, line.split())
            acked = (pushed, added)
        os.killpg(child.pid, signal.SIGKILL)
        for line in child.stdout:  # acknowledgements printed before the kill landed count too
            if line.strip():
                acked = tuple(map(int, line.split()))  # type: ignore[assignment]
    finally:
        os.killpg(child.pid, signal.SIGKILL) if child.poll() is None else None
        child.wait(30)
    with respq.open(data) as queues:
        assert queues.len("jobs") >= acked[0] >= 5000
        assert queues.stream_len("events") >= acked[1]
        # In order, from the first: nothing acknowledged went missing in the middle either.
        values = queues.peek("jobs", acked[0])
        assert values == [b"%d" % i for i in range(acked[0])]


def test_served_over_resp_to_redis_py(queues: respq.Queues) -> None:
    port = queues.serve_in_background()
    assert queues.port == port
    client = redis.Redis(port=port, socket_timeout=10)
    queues.push("jobs", [b"a", b"b"])
    assert client.lrange("jobs", 0, -1) == [b"a", b"b"]
    client.rpush("jobs", b"c")
    assert queues.pop("jobs", 3) == [b"a", b"b", b"c"]
    # A RESP client blocked on a key is served by an in-process push.
    answer: list[object] = []
    other = redis.Redis(port=port, socket_timeout=10)
    blocked = threading.Thread(target=lambda: answer.append(other.blpop(["jobs"], timeout=10)))
    blocked.start()
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    queues.push("jobs", [b"d"])
    blocked.join(10)
    assert answer == [(b"jobs", b"d")]
    with pytest.raises(RuntimeError, match="already serving"):
        queues.serve_in_background()
    client.close()
    other.close()


async def test_async_from_trio(tmp_path: Path) -> None:
    queues = respq.open_async(tmp_path / "data")
    try:
        assert await queues.push("jobs", [b"a", b"b"]) == 2
        assert await queues.pop("jobs") == [b"a"]
        async with trio.open_nursery() as nursery:
            got: list[bytes] = []

            async def consume() -> None:
                got.extend(await queues.pop_wait("later", 1, timeout=10))

            nursery.start_soon(consume)
            await queues.push("later", [b"x"])
        assert got == [b"x"]
        assert await queues.create_group("events", "g", "0")
        entry_id = await queues.add("events", {"n": "1"})
        assert await queues.read_group("events", "g", "c") == [(entry_id, {b"n": b"1"})]
        assert await queues.ack("events", "g", [entry_id]) == 1
    finally:
        await queues.aclose()


async def test_cancelled_pop_wait_takes_nothing(tmp_path: Path) -> None:
    """A Trio task cancelled while waiting leaves the queue: a value pushed afterwards stays for the next pop."""
    queues = respq.open_async(tmp_path / "data")
    try:
        with trio.move_on_after(0.05):
            await queues.pop_wait("jobs", 1, timeout=30)
        # The waiter is gone once INFO says so, not merely once the task returned.
        port = queues.serve_in_background()
        client = redis.Redis(port=port, socket_timeout=10)
        await trio.to_thread.run_sync(lambda: wait_until(lambda: client.info("clients")["blocked_clients"] == 0))
        await queues.push("jobs", [b"x"])
        assert await queues.pop("jobs") == [b"x"]
        client.close()
    finally:
        await queues.aclose()


async def test_async_pipeline(tmp_path: Path) -> None:
    queues = respq.open_async(tmp_path / "data")
    try:
        pipeline = queues.pipeline().push("jobs", [b"a", b"b"]).pop("jobs")
        assert await pipeline.execute() == [2, [b"a"]]
        assert await queues.pipeline().len("jobs").execute() == [1]
    finally:
        await queues.aclose()


def test_async_from_asyncio(tmp_path: Path) -> None:
    async def main() -> list[bytes]:
        async with respq.open_async(tmp_path / "data") as queues:
            consumer = asyncio.create_task(queues.pop_wait("jobs", 2, timeout=10))
            await queues.push("jobs", [b"a", b"b"])
            got = await consumer
            assert await queues.len("jobs") == 0
            return got

    assert asyncio.run(main()) == [b"a", b"b"]


@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
def test_threads_push_and_pop_concurrently(tmp_path: Path, appendfsync: str) -> None:
    """Callers on many threads share the engine (and, under always, its group commits): nothing is lost or
    duplicated, and each thread's values keep their order."""
    threads, batches = 8, 30
    with respq.open(tmp_path / "data", appendfsync=appendfsync) as queues:

        def produce(index: int) -> None:
            for batch in range(batches):
                queues.push("jobs", [b"%d:%d:%d" % (index, batch, i) for i in range(10)])

        producers = [threading.Thread(target=produce, args=(i,)) for i in range(threads)]
        popped: list[bytes] = []
        consumer_done = threading.Event()

        def consume() -> None:
            while len(popped) < threads * batches * 10:
                popped.extend(queues.pop_wait("jobs", 25, timeout=10) or [])
            consumer_done.set()

        consumer = threading.Thread(target=consume)
        consumer.start()
        for producer in producers:
            producer.start()
        for producer in producers:
            producer.join(60)
        consumer.join(60)
        assert consumer_done.is_set()
        assert len(popped) == len(set(popped)) == threads * batches * 10
        for index in range(threads):
            own = [value for value in popped if value.startswith(b"%d:" % index)]
            assert own == [b"%d:%d:%d" % (index, batch, i) for batch in range(batches) for i in range(10)]
        assert queues.len("jobs") == 0
