"""MIGRATE between respq servers and from respq to redis-server: keys move (or are copied) with their TTLs, the
target's errors and I/O failures are reported as Redis words them, and a target that never answers stalls only
the migrating client, never the others. Error texts and option parsing are also compat cases (migrate.redis)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq
from tests.server.helpers import in_thread, make_client


@pytest.fixture
def target(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_respq(tmp_path / "target")
    try:
        yield server
    finally:
        server.stop()


def _fill(client: redis.Redis) -> None:
    client.rpush("list", "a", "b", "c")
    client.set("volatile", "v", px=60_000)
    client.hset("hash", mapping={"f": "v"})
    client.xadd("stream", {"f": "v"}, id="1-1")
    client.xgroup_create("stream", "g", id="0")


@pytest.mark.parametrize("to_redis", [False, True], ids=["respq-to-respq", "respq-to-redis"])
def test_keys_move_and_copy_with_their_ttls(
    respq_server: ServerProcess, target: ServerProcess, redis_oracle: ServerProcess, to_redis: bool
) -> None:
    source = make_client(respq_server)
    dest_server = redis_oracle if to_redis else target
    dest = make_client(dest_server)
    dest.flushall()
    _fill(source)
    port = dest_server.port
    assert source.execute_command("MIGRATE", "127.0.0.1", port, "list", 0, 5000) == b"OK"
    assert not source.exists("list") and dest.lrange("list", 0, -1) == [b"a", b"b", b"c"]
    reply = source.execute_command("MIGRATE", "127.0.0.1", port, "", 0, 5000, "COPY", "KEYS", "volatile", "hash", "x")
    assert reply == b"OK"
    assert source.exists("volatile", "hash") == 2
    assert dest.get("volatile") == b"v" and 50_000 < dest.pttl("volatile") <= 60_000
    assert dest.hgetall("hash") == {b"f": b"v"}
    assert source.execute_command("MIGRATE", "127.0.0.1", port, "stream", 5, 5000) == b"OK"
    dest.execute_command("SELECT", 5)
    assert dest.xinfo_groups("stream")[0]["name"] == b"g"
    dest.execute_command("SELECT", 0)
    assert source.execute_command("MIGRATE", "127.0.0.1", port, "gone", 0, 5000) == b"NOKEY"
    with pytest.raises(redis.ResponseError, match=r"^Target instance replied with error: BUSYKEY"):
        source.execute_command("MIGRATE", "127.0.0.1", port, "hash", 0, 5000)
    assert source.exists("hash")  # refused by the target: kept here
    assert source.execute_command("MIGRATE", "127.0.0.1", port, "hash", 0, 5000, "REPLACE") == b"OK"
    assert not source.exists("hash")
    dest.flushall()
    dest.close()


def test_a_silent_target_stalls_only_the_migrating_client(respq_server: ServerProcess) -> None:
    source = make_client(respq_server)
    other = make_client(respq_server)
    source.set("k", "v")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (kernel backlog), never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        thread, result = in_thread(source.execute_command, "MIGRATE", "127.0.0.1", port, "k", 0, 3000)
        # While the migration waits on the target, other clients are served at once.
        for _ in range(20):
            assert other.ping()
        assert thread.is_alive()
        assert time.monotonic() - started < 2.5
        thread.join(15)
    assert str(result.get("error")) == "IOERR error or timeout reading to target instance"
    assert source.get("k") == b"v"  # nothing acknowledged: the key stays


def test_refused_connection(respq_server: ServerProcess) -> None:
    source = make_client(respq_server)
    source.set("k", "v")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(redis.ResponseError, match=r"^IOERR error or timeout writing to target instance$"):
        source.execute_command("MIGRATE", "127.0.0.1", port, "k", 0, 1000)
    assert source.get("k") == b"v"


