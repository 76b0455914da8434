"""``storage memory``: nothing written to disk, maxmemory refused with Redis's OOM error (never evicting), the
persistence commands and INFO fields of a Redis without persistence, and ``respq check`` refusing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import MEMORY_STORAGE, ServerProcess, start_redis, start_respq, wait_until

OOM = b"OOM command not allowed when used memory > 'maxmemory'."


@pytest.fixture
def memory_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_respq(tmp_path / "data", *MEMORY_STORAGE)
    try:
        yield server
    finally:
        server.stop()


def _client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


@pytest.mark.timeout(120)
def test_nothing_is_written_to_disk(tmp_path: Path) -> None:
    """A workload over every type, the persistence commands and a clean shutdown leave the working directory empty
    and create no data directory."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    data_dir = workdir / "data"
    argv = [sys.executable, "-m", "respq", "serve", "--port", "0", "--dir", str(data_dir), *MEMORY_STORAGE]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    server = ServerProcess(argv, cwd=str(workdir), env=env)
    try:
        server.wait_ready()
        r = _client(server)
        for n in range(200):
            r.rpush(f"q{n % 7}", b"x" * (n * 50))
            r.xadd(f"s{n % 3}", {"f": b"y" * n})
            r.set(f"k{n}", n)
            r.hset("h", f"f{n}", n)
            r.sadd("set", n)
            r.zadd("z", {f"m{n}": n})
        r.lpop("q1", 3)
        r.xtrim("s0", maxlen=10, approximate=False)
        r.copy("q2", "q2copy")
        assert r.save()
        assert r.bgsave()
        r.bgrewriteaof()
        assert r.lrange("q2copy", 0, -1) == r.lrange("q2", 0, -1)
        r.close()
        assert server.terminate() == 0
    finally:
        server.stop()
    assert not data_dir.exists()
    assert list(workdir.iterdir()) == []


@pytest.mark.timeout(60)
def test_restart_starts_empty(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data", *MEMORY_STORAGE)
    try:
        r = _client(server)
        r.rpush("q", b"a")
        r.close()
        assert server.terminate() == 0
    finally:
        server.stop()
    server = start_respq(tmp_path / "data", *MEMORY_STORAGE)
    try:
        r = _client(server)
        assert r.dbsize() == 0
        r.close()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_maxmemory_refuses_with_oom_and_evicts_nothing(tmp_path: Path) -> None:
    """Queue bytes count towards maxmemory in memory: past it, commands that add data get Redis's OOM error, the
    ones that remove data still run, and nothing is evicted."""
    server = start_respq(tmp_path / "data", *MEMORY_STORAGE, "--maxmemory", "1mb")
    try:
        r = _client(server)
        value = b"v" * 100_000
        pushed = 0
        with pytest.raises(redis.exceptions.ResponseError) as refused:
            for _ in range(100):
                r.rpush("q", value)
                pushed += 1
        assert "used memory > 'maxmemory'" in str(refused.value)
        assert 5 <= pushed < 100
        for command in (("xadd", "s", "*", "f", "v"), ("set", "k", "v"), ("lpush", "q", "v")):
            with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
                r.execute_command(*command)
        assert r.llen("q") == pushed  # nothing evicted
        assert int(r.info("memory")["respq_held_bytes"]) > 1 << 20
        assert r.rpop("q") == value  # removing data is allowed over the limit
        r.delete("q")
        assert int(r.info("memory")["respq_held_bytes"]) < 1 << 20
        assert r.rpush("q", value) == 1
        r.close()
    finally:
        server.stop()


@pytest.mark.parametrize("command", [("RPUSH", "q"), ("LPUSH", "q"), ("XADD", "s", "*", "f")])
@pytest.mark.timeout(60)
def test_maxmemory_checked_before_each_pipelined_call(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Pipelined pushes and XADDs (run together by the server) are refused from the first one that finds the limit
    passed, as Redis checks each command: not after a whole run of them."""
    server = start_respq(tmp_path / "data", *MEMORY_STORAGE, "--maxmemory", "100kb")
    try:
        r = _client(server)
        pipe = r.pipeline(transaction=False)
        for _ in range(40):
            pipe.execute_command(*command, b"v" * 10_000)
        replies = pipe.execute(raise_on_error=False)
        refused = [isinstance(reply, redis.exceptions.ResponseError) for reply in replies]
        accepted = refused.index(True)
        assert all(refused[accepted:])
        held = int(r.info("memory")["respq_held_bytes"])
        assert held - 10_100 < 100 * 1024 < held  # the last one accepted crossed the limit, no later one ran
        r.close()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_oom_error_bytes_as_redis(memory_server: ServerProcess) -> None:
    r = _client(memory_server)
    r.rpush("q", b"v" * 1000)
    r.config_set("maxmemory", 1)
    with socket.create_connection(("127.0.0.1", memory_server.port), timeout=10) as sock:
        sock.sendall(b"*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$1\r\nv\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(1024)
    assert reply == b"-" + OOM + b"\r\n"
    r.close()


@pytest.mark.timeout(60)
def test_persistence_commands_and_info_as_redis_without_persistence(
    memory_server: ServerProcess, tmp_path: Path
) -> None:
    """SAVE, BGSAVE, BGREWRITEAOF answer what ``redis-server --save '' --appendonly no`` answers, and INFO
    persistence has its fields (respq's own figures after them), AOF off."""
    oracle = start_redis("--dir", str(tmp_path))  # its SAVE writes a dump file there
    try:
        ours, theirs = _client(memory_server), redis.Redis(port=oracle.port, socket_timeout=10)
        for command in (("SAVE",), ("BGSAVE",), ("BGREWRITEAOF",)):
            if command[0] != "SAVE":
                wait_until(lambda: theirs.info("persistence")["rdb_bgsave_in_progress"] == 0)
                wait_until(lambda: theirs.info("persistence")["aof_rewrite_in_progress"] == 0)
            assert ours.execute_command(*command) == theirs.execute_command(*command)
        mine = ours.info("persistence")
        expected = theirs.info("persistence")
        assert [name for name in mine if not name.startswith("respq_")] == list(expected)
        assert mine["aof_enabled"] == 0
        assert mine["rdb_saves"] >= 2
        assert abs((ours.lastsave() - theirs.lastsave()).total_seconds()) < 60
        assert ours.config_get("appendonly") == {"appendonly": "no"}
        ours.close()
        theirs.close()
    finally:
        oracle.stop()


def test_check_refuses_memory_storage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "respq", "check", "--storage", "memory"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "storage memory writes nothing to disk" in result.stderr
