"""Producers XADD, consumers XREADGROUP + XACK, and the server is killed -9 repeatedly (appendfsync always).

After every restart: each acknowledged XADD is in the stream (unless acknowledged as consumed), each entry
delivered and not yet acknowledged is pending, and no acknowledged entry is pending.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq
from tests.server.helpers import make_client

STREAM = "events"
GROUP = "workers"


class Ledger:
    """What the server acknowledged, as seen by the clients."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.added: set[bytes] = set()  # XADD replied with this ID
        self.acked: set[bytes] = set()  # XACK replied 1 for this ID
        self.delivered: dict[bytes, str] = {}  # handed to a consumer and not acknowledged yet


def _producer(port: int, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        while not stop.is_set():
            try:
                entry_id = client.xadd(STREAM, {"n": str(rng.random()), "pad": "x" * rng.randint(0, 200)})
            except (redis.ConnectionError, redis.TimeoutError):
                return
            with ledger.lock:
                ledger.added.add(entry_id)
    finally:
        client.close()


def _consumer(port: int, ledger: Ledger, stop: threading.Event, name: str, seed: int) -> None:
    rng = random.Random(seed)
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        while not stop.is_set():
            try:
                reply = client.xreadgroup(GROUP, name, {STREAM: ">"}, count=rng.randint(1, 20), block=50)
            except (redis.ConnectionError, redis.TimeoutError):
                return
            ids = [entry_id for _, entries in reply or [] for entry_id, _ in entries]
            with ledger.lock:
                for entry_id in ids:
                    ledger.delivered[entry_id] = name
            for entry_id in ids:
                if rng.random() < 0.3:
                    continue  # left pending: must still be pending after the crash
                try:
                    acknowledged = client.xack(STREAM, GROUP, entry_id)
                except (redis.ConnectionError, redis.TimeoutError):
                    with ledger.lock:  # the XACK may or may not have happened: no claim either way
                        ledger.delivered.pop(entry_id, None)
                    return
                if acknowledged:
                    with ledger.lock:
                        ledger.acked.add(entry_id)
                        ledger.delivered.pop(entry_id, None)
    finally:
        client.close()


def _check(server: ServerProcess, ledger: Ledger) -> None:
    client = make_client(server)
    try:
        present = {entry_id for entry_id, _ in client.xrange(STREAM, "-", "+")}
        pending = {row["message_id"]: row["consumer"].decode() for row in _all_pending(client)}
    finally:
        client.close()
    missing = ledger.added - present
    assert not missing, f"{len(missing)} acknowledged XADDs lost, e.g. {sorted(missing)[:3]}"
    lost_pending = {i for i in ledger.delivered if i not in pending}
    assert not lost_pending, f"delivered-unacked entries no longer pending: {sorted(lost_pending)[:3]}"
    back = ledger.acked & set(pending)
    assert not back, f"acknowledged entries pending again: {sorted(back)[:3]}"
    for entry_id, owner in ledger.delivered.items():
        assert pending[entry_id] == owner


def _all_pending(client: redis.Redis) -> list[dict]:
    rows: list[dict] = []
    start = "-"
    while True:
        batch = client.xpending_range(STREAM, GROUP, min=start, max="+", count=1000)
        rows += batch
        if len(batch) < 1000:
            return rows
        start = "(" + batch[-1]["message_id"].decode()


def test_streams_survive_repeated_kill(tmp_path: Path, long_mode: bool) -> None:
    cycles = 20 if long_mode else 3
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    ledger = Ledger()
    setup = make_client(server)
    setup.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    setup.close()
    try:
        for cycle in range(cycles):
            stop = threading.Event()
            threads = [
                threading.Thread(target=_producer, args=(server.port, ledger, stop, cycle * 10 + n)) for n in range(2)
            ]
            threads += [
                threading.Thread(target=_consumer, args=(server.port, ledger, stop, f"c{n}", cycle * 10 + n))
                for n in range(2)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 0.7
            while time.monotonic() < deadline and len(ledger.added) < (cycle + 1) * 200:
                time.sleep(0.01)  # lets the workload run; the kill itself is what is being tested
            server.stop()  # SIGKILL mid-traffic
            stop.set()
            for thread in threads:
                thread.join(10)
                assert not thread.is_alive()
            server = start_respq(data_dir, "--appendfsync", "always")
            _check(server, ledger)
        assert ledger.added and ledger.acked, "the workload never got going"
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_group_changes_survive_kill(tmp_path: Path, protocol: int) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    client = make_client(server, protocol=protocol)
    client.xadd("s", {"a": "1"}, id="1-0")
    client.xadd("s", {"b": "2"}, id="2-0")
    client.xadd("s", {"c": "3"}, id="3-0")
    client.xgroup_create("s", "g", id="0")
    client.xgroup_create("s", "gone", id="0")
    client.xreadgroup("g", "alice", {"s": ">"})
    client.xack("s", "g", "1-0")
    client.xclaim("s", "g", "bob", 0, ["2-0"], retrycount=4)
    client.xgroup_createconsumer("s", "g", "carol")
    client.xgroup_destroy("s", "gone")
    client.xdel("s", "3-0")
    server.stop()
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        assert [row["name"] for row in client.xinfo_groups("s")] == [b"g"]
        assert {c["name"]: c["pending"] for c in client.xinfo_consumers("s", "g")} == {
            b"alice": 1,
            b"bob": 1,
            b"carol": 0,
        }
        rows = client.xpending_range("s", "g", "-", "+", 10)
        assert [(r["message_id"], r["consumer"], r["times_delivered"]) for r in rows] == [
            (b"2-0", b"bob", 4),
            (b"3-0", b"alice", 1),
        ]
        assert client.xautoclaim("s", "g", "dave", 0, "0-0") == [b"0-0", [(b"2-0", {b"b": b"2"})], [b"3-0"]]
    finally:
        server.stop()
