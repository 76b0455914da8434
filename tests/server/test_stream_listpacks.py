"""Approximate trimming removes the listpack nodes Redis would hold: Redis's own cases, and random command sequences
played on respq and on a real redis-server side by side, with respq restarted (cleanly and by kill -9) between them.

The nodes Redis builds depend on stream-node-max-entries, stream-node-max-bytes (the listpack's encoded size), the
directives in force at each XADD, and XDEL; they show in XLEN after `~` trimming and in XINFO STREAM's
radix-tree-keys / radix-tree-nodes, which are compared after every command.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import ServerProcess, start_redis, start_respq

SEGMENT_SIZE = "64kb"  # small segment files: entries of a few KB roll them, so listpacks span files


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, protocol=2, socket_timeout=10)


@pytest.fixture
def respq_client(respq_server: ServerProcess) -> Iterator[redis.Redis]:
    client = _client(respq_server.port)
    try:
        yield client
    finally:
        client.close()


def test_xadd_with_limit_consecutive_calls(respq_client: redis.Redis) -> None:
    """Redis's tests/unit/type/stream.tcl "XADD with LIMIT consecutive calls"."""
    r = respq_client
    r.config_set("stream-node-max-entries", 10)
    for _ in range(100):
        r.xadd("mystream", {"xitem": "v"})
    r.execute_command("XADD", "mystream", "MAXLEN", "~", "55", "LIMIT", "30", "*", "xitem", "v")
    assert r.xlen("mystream") == 71
    r.execute_command("XADD", "mystream", "MAXLEN", "~", "55", "LIMIT", "30", "*", "xitem", "v")
    assert r.xlen("mystream") == 62


def test_xtrim_with_limit_deletes_no_more_than_limit(respq_client: redis.Redis) -> None:
    """Redis's "XTRIM with LIMIT delete entries no more than limit"."""
    r = respq_client
    r.config_set("stream-node-max-entries", 2)
    for _ in range(3):
        r.xadd("mystream", {"xitem": "v"})
    assert r.execute_command("XTRIM", "mystream", "MAXLEN", "~", "0", "LIMIT", "1") == 0
    assert r.execute_command("XTRIM", "mystream", "MAXLEN", "~", "0", "LIMIT", "2") == 2


def test_xtrim_with_approximation_is_limited_by_the_node_size(respq_client: redis.Redis) -> None:
    """As Redis's "XTRIM with ~ is limited": without LIMIT, `~` removes at most 100 * stream-node-max-entries
    entries, here 100 one-entry listpacks of 250."""
    r = respq_client
    r.config_set("stream-node-max-entries", 1)
    for _ in range(250):
        r.xadd("mystream", {"xitem": "v"})
    assert r.xtrim("mystream", maxlen=1, approximate=True) == 100
    assert r.xlen("mystream") == 150
    assert r.xtrim("mystream", maxlen=1, approximate=True, limit=0) == 149  # LIMIT 0: no limit


def test_listpacks_of_large_entries_are_cut_at_the_byte_limit(respq_client: redis.Redis) -> None:
    """Entries of 1000 bytes: 4 fit a 4096-byte listpack, so `MAXLEN ~ 10` of 20 entries keeps 12."""
    r = respq_client
    for ms in range(1, 21):
        r.xadd("s", {"f": "x" * 1000}, id=f"{ms}-0")
    assert r.xinfo_stream("s")["radix-tree-keys"] == 5
    assert r.xtrim("s", maxlen=10, approximate=True) == 8
    assert r.xlen("s") == 12
    r.config_set("stream-node-max-bytes", "0")  # no byte limit (up to 1 GB): the next entries join the last listpack
    for ms in range(21, 41):
        r.xadd("s", {"f": "x" * 1000}, id=f"{ms}-0")
    assert r.xinfo_stream("s")["radix-tree-keys"] == 3


# ---- random sequences against redis-server ----------------------------------------------------------------------

FIELD_NAMES = [b"f", b"g", b"123", b"-5", b"name"]
VALUE_SIZES = [0, 1, 10, 62, 63, 64, 100, 500, 1000, 2000, 4000, 4090, 5000]
SPECIAL_NUMBERS = [0, 127, 128, -1, -4096, 4095, 4096, 2**63 - 1, -(2**63), 2**63, 2**64]
# Redis 7.0.15 itself crashes on a later XRANGE when stream-node-max-bytes is lowered below 4096 after entries were
# added (a listpack node created with the smaller preallocation): such values are left out.
MAX_BYTES = [0, 4096, 8192, 100000]
MAX_ENTRIES = [0, 1, 2, 3, 10, 100, 200]


class Pair:
    """respq and redis-server, fed the same commands; every reply must be the same."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.redis_server = start_redis()
        self.redis = _client(self.redis_server.port)
        self.respq_server: ServerProcess | None = None
        self.respq: redis.Redis | None = None
        self.directives = {"stream-node-max-entries": 100, "stream-node-max-bytes": 4096}
        self.start_respq()

    def start_respq(self) -> None:
        self.respq_server = start_respq(self.data_dir, "--segment-size", SEGMENT_SIZE, "--save", "")
        self.respq = _client(self.respq_server.port)
        for name, value in self.directives.items():  # CONFIG SET does not outlive a restart (nor in Redis)
            self.respq.config_set(name, value)

    def restart_respq(self, kill: bool) -> None:
        assert self.respq_server is not None and self.respq is not None
        self.respq.close()
        if kill:
            self.respq_server.kill(signal.SIGKILL)
            self.respq_server.stop()
        else:
            assert self.respq_server.terminate() == 0
        self.start_respq()

    def both(self, *args: Any) -> Any:
        assert self.respq is not None
        replies = []
        for client in (self.redis, self.respq):
            try:
                replies.append(client.execute_command(*args))
            except redis.ResponseError as error:
                replies.append(f"error: {error}")
        assert replies[0] == replies[1], (args[:6], replies)
        return replies[0]

    def configure(self, name: str, value: int) -> None:
        self.directives[name] = value
        self.both("CONFIG", "SET", name, value)

    def compare_shape(self) -> None:
        shapes = []
        for client in (self.redis, self.respq):
            assert client is not None
            if not client.exists("s"):
                shapes.append(None)
                continue
            info = client.xinfo_stream("s")
            shapes.append(
                (
                    info["length"],
                    info["radix-tree-keys"],
                    info["radix-tree-nodes"],
                    info["first-entry"],
                    info["last-entry"],
                    info["max-deleted-entry-id"],
                    info["entries-added"],
                )
            )
        assert shapes[0] == shapes[1]

    def stop(self) -> None:
        for client in (self.redis, self.respq):
            if client is not None:
                client.close()
        for server in (self.redis_server, self.respq_server):
            if server is not None:
                server.stop()


def _fields(rng: random.Random) -> list[bytes]:
    fields = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        name = rng.choice(FIELD_NAMES) if rng.random() < 0.8 else b"x" * rng.randint(0, 70)
        kind = rng.random()
        if kind < 0.2:
            value = str(rng.randint(-(10**12), 10**12)).encode()
        elif kind < 0.3:
            value = str(rng.choice(SPECIAL_NUMBERS)).encode()
        else:
            value = b"v" * rng.choice(VALUE_SIZES)
        fields += [name, value]
    return fields


def _trim_args(rng: random.Random, last_ms: int) -> list[Any]:
    if rng.random() < 0.5:
        args: list[Any] = ["MAXLEN", rng.choice(["~", "~", "="]), rng.randint(0, 120)]
    else:
        args = ["MINID", rng.choice(["~", "~", "="]), f"{max(1, last_ms - rng.randint(0, 3000))}-{rng.randint(0, 3)}"]
    if args[1] == "~" and rng.random() < 0.5:
        args += ["LIMIT", rng.choice([0, 1, 5, 30, 100, 1000])]
    return args


def _play(pair: Pair, rng: random.Random, steps: int) -> None:
    last_ms = 1
    for _ in range(steps):
        choice = rng.random()
        if choice < 0.6:
            if rng.random() < 0.6:
                last_ms += rng.randint(0, 3)
            else:
                last_ms += rng.choice([1, 100, 5000, 10**6])
            stream_id = f"{last_ms}-{rng.randint(0, 5)}"
            trim = _trim_args(rng, last_ms) if rng.random() < 0.2 else []
            pair.both("XADD", "s", *trim, stream_id, *_fields(rng))
        elif choice < 0.72:
            ids = [entry[0] for entry in pair.both("XRANGE", "s", "-", "+", "COUNT", 300)]
            if ids:
                pair.both("XDEL", "s", *rng.sample(ids, min(len(ids), rng.choice([1, 1, 3, 10]))))
        elif choice < 0.87:
            pair.both("XTRIM", "s", *_trim_args(rng, last_ms))
        elif choice < 0.91:
            if rng.random() < 0.6:
                pair.configure("stream-node-max-entries", rng.choice(MAX_ENTRIES))
            else:
                pair.configure("stream-node-max-bytes", rng.choice(MAX_BYTES))
        elif choice < 0.93 and pair.redis.exists("s"):
            last_ms += rng.randint(0, 50)
            pair.both("XSETID", "s", f"{last_ms}-9")
        elif choice < 0.96:
            pair.both("XRANGE", "s", "-", "+")
        elif choice < 0.98:
            pair.restart_respq(kill=rng.random() < 0.5)
        pair.compare_shape()
    pair.both("XRANGE", "s", "-", "+")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_shape_streams_as_redis_does(tmp_path: Path, long_mode: bool, seed: int) -> None:
    pair = Pair(tmp_path / "data")
    try:
        _play(pair, random.Random(seed), 3000 if long_mode else 600)
    finally:
        pair.stop()
