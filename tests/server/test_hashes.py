"""Hashes in a running server: acknowledged writes survive kill -9 (appendfsync always), each kind of change
journaled, with its fields' order; the configured listpack limits decide when a hash is walked with a cursor."""

from __future__ import annotations

from pathlib import Path

from conftest import start_respq
from tests.server.helpers import make_client


def test_acknowledged_hash_writes_survive_kill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        assert client.hset("job:1", mapping={"state": "queued", "tries": "0", "payload": "x"}) == 3
        assert client.hset("job:1", mapping={"state": "running", "worker": "w1"}) == 1
        assert client.hincrby("job:1", "tries", 2) == 2
        assert client.hincrbyfloat("job:1", "progress", 0.5) == 0.5
        assert client.hdel("job:1", "payload") == 1
        assert client.hsetnx("job:1", "started", "12") == 1
        assert client.hset("job:2", "state", "done") == 1
        assert client.hdel("job:2", "state") == 1  # the key goes with its last field
        assert client.execute_command("HMSET", "job:3", "a", "1", "big", "v" * 100) in (True, b"OK")
        server.stop()  # SIGKILL to the whole process group: nothing checkpointed, all replayed
        server = start_respq(data_dir)
        client = make_client(server)
        assert list(client.hgetall("job:1").items()) == [
            (b"state", b"running"),
            (b"tries", b"2"),
            (b"worker", b"w1"),
            (b"progress", b"0.5"),
            (b"started", b"12"),
        ]
        assert client.exists("job:2") == 0
        assert client.hgetall("job:3") == {b"a": b"1", b"big": b"v" * 100}
        assert client.hscan("job:3", 0, count=1)[0] != 0  # a hashtable still
    finally:
        server.stop()


def test_configured_listpack_limits_decide_the_walk(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data", "--hash-max-listpack-entries", "2")
    try:
        client = make_client(server)
        client.hset("small", mapping={"a": "1", "b": "2"})
        assert client.hscan("small", 0, count=1) == (0, {b"a": b"1", b"b": b"2"})  # all at once
        client.hset("large", mapping={"a": "1", "b": "2", "c": "3"})
        cursor, first = client.hscan("large", 0, count=1)
        assert cursor != 0 and len(first) == 1
        assert client.config_set("hash-max-listpack-entries", "128")
        client.hset("large", "d", "4")
        assert client.hscan("large", 0, count=1)[0] != 0  # never back to a listpack
    finally:
        server.stop()
