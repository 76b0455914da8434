"""DUMP/RESTORE against subprocesses: every type and encoding moves from redis-server to respq and back with the
same contents (compared with each type's own reads), random values round-trip respq -> respq, and a RESTORE
acknowledged before kill -9 is there after the restart. Byte-identical payloads and RESTORE's errors are the
compat cases' (compat-tests/cases/dump.redis)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ServerProcess, start_respq
from tests.server.helpers import make_client


def _fill(client: redis.Redis) -> list[str]:
    """One key per type and encoding (small and past the listpack/intset limits); returns the keys."""
    rnd = random.Random(7)
    client.set("str", "hello")
    client.set("int", "-12345")
    client.set("long", b"x" * 300 + rnd.randbytes(300))
    client.rpush("list", *[b"%d" % i for i in range(50)], *[rnd.randbytes(rnd.randint(0, 300)) for _ in range(400)])
    client.rpush("list_big", rnd.randbytes(20000), b"tail")
    client.hset("hash", mapping={b"f%d" % i: b"v%d" % i for i in range(10)})
    client.hset("hash_big", mapping={b"f%d" % i: rnd.randbytes(20) for i in range(600)})
    client.sadd("intset", *range(-5, 100, 3))
    client.sadd("set", *[b"m%d" % i for i in range(700)])
    client.zadd("zset", {b"a": 1.5, b"b": -2, b"c": float("inf"), b"d": 1e-300})
    client.zadd("zset_big", {b"m%d" % i: rnd.uniform(-1e9, 1e9) for i in range(300)})
    for i in range(1, 250):
        client.xadd("stream", {"f": b"v%d" % i, "n": i}, id=f"{i}-{i % 3}")
    client.xadd("stream", {"other": "fields"}, id="300-0")
    client.xdel("stream", "5-2")
    client.xgroup_create("stream", "g1", id="0")
    client.xgroup_create("stream", "g2", id="$")
    client.xreadgroup("g1", "alice", {"stream": ">"}, count=3)
    client.xreadgroup("g1", "bob", {"stream": ">"}, count=2)
    client.xgroup_createconsumer("stream", "g1", "carol")
    client.xgroup_create("empty_stream", "g", id="$", mkstream=True)
    return [key.decode() for key in sorted(client.keys())]


def _read(client: redis.Redis, key: str) -> Any:
    """The value with the type's own reads (hash tables' orders left out)."""
    kind = client.type(key).decode()
    reads: dict[str, Callable[[], Any]] = {
        "string": lambda: client.get(key),
        "list": lambda: client.lrange(key, 0, -1),
        "hash": lambda: client.hgetall(key),
        "set": lambda: client.smembers(key),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
        "stream": lambda: (client.xrange(key), client.execute_command("XINFO", "STREAM", key, "FULL")),
    }
    return kind, client.object("encoding", key), reads[kind]()


@pytest.fixture
def oracle(redis_oracle: ServerProcess) -> Iterator[redis.Redis]:
    client = make_client(redis_oracle)
    client.flushall()
    try:
        yield client
    finally:
        client.flushall()
        client.close()


def test_every_type_moves_between_redis_server_and_respq(respq_server: ServerProcess, oracle: redis.Redis) -> None:
    subject = make_client(respq_server)
    keys = _fill(oracle)
    assert _fill(subject) == keys
    for key in keys:
        from_redis, from_respq = oracle.dump(key), subject.dump(key)
        assert subject.restore(key + ":r", 0, from_redis)
        assert oracle.restore(key + ":r", 0, from_respq)
        # Each copy reads like the original on its server, and each server's copy of the other's payload too.
        # (XINFO FULL's pending delivery times and seen times come from the payload: equal on both.)
        expected = _read(oracle, key)
        assert _read(subject, key + ":r") == expected, key
        assert _read(oracle, key + ":r") == _read(subject, key), key
        assert _read(subject, key)[:2] == expected[:2], key  # both servers built the same type and encoding


values = st.binary(max_size=80) | st.integers(-(1 << 63), (1 << 63) - 1).map(lambda n: b"%d" % n)
members = st.lists(values, min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["string", "list", "hash", "set", "zset", "stream"]),
    items=members,
    scores=st.lists(st.floats(allow_nan=False), min_size=40, max_size=40),
    compress=st.booleans(),
)
def test_random_values_round_trip_respq_to_respq(
    respq_server: ServerProcess, kind: str, items: list[bytes], scores: list[float], compress: bool
) -> None:
    client = make_client(respq_server)
    client.flushall()
    client.config_set("rdbcompression", "yes" if compress else "no")
    if kind == "string":
        client.set("k", b"".join(items))
    elif kind == "list":
        client.rpush("k", *items)
    elif kind == "hash":
        client.hset("k", mapping={item: item[::-1] for item in items})
    elif kind == "set":
        client.sadd("k", *items)
    elif kind == "zset":
        client.zadd("k", dict(zip(items, scores, strict=False)))
    else:
        for index, item in enumerate(items):
            client.xadd("k", {item: item, b"n": index}, id=f"{index + 1}-0")
    payload = client.dump("k")
    assert client.restore("copy", 0, payload) == b"OK"
    assert _read(client, "copy") == _read(client, "k")
    assert client.dump("copy") == payload
    client.close()


def test_restore_survives_kill9(tmp_path: Path, oracle: redis.Redis) -> None:
    keys = _fill(oracle)
    payloads = {key: oracle.dump(key) for key in keys}
    expected = {key: _read(oracle, key) for key in keys}
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    try:
        client = make_client(server)
        client.set("replaced", "old")
        for key, payload in payloads.items():
            assert client.restore(key, 0, payload)
        assert client.restore("replaced", 0, payloads["list"], replace=True)
        assert client.restore("volatile", 100_000_000, payloads["hash"])
        server.kill()
        server.stop()
        server = start_respq(data_dir, "--appendfsync", "always")
        client = make_client(server)
        for key in keys:
            assert _read(client, key) == expected[key], key
        assert _read(client, "replaced") == expected["list"]
        assert client.pttl("volatile") > 99_000_000
    finally:
        server.stop()
