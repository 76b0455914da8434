"""Scripts against a respq subprocess: BUSY and SCRIPT KILL while a script runs long, SHUTDOWN NOSAVE of an unkillable
script, all-or-nothing of a script's writes across kill -9, the memory bound, INFO's script fields.

A script runs on the event loop; past busy-reply-threshold a Lua hook serves the other clients (docs/scripting.md).
Ordering between clients is observed, never slept for: a PING answered PONG ran before the script started, and one
answered BUSY ran while it ran past the threshold.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until
from tests.server.helpers import in_thread, make_client

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
KILLED = "Script killed by user with SCRIPT KILL..."
LOOP = "local started = redis.call('time')[1] while redis.call('time')[1] - started < tonumber(ARGV[1]) do end return 1"
WRITE_THEN_SPIN = (
    "for i = 1, tonumber(ARGV[1]) do redis.call('set', KEYS[1] .. i, i) end "
    "local started = redis.call('time')[1] while redis.call('time')[1] - started < 30 do end"
)


def _raw(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def _send(sock: socket.socket, *args: str) -> None:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"".join(parts))


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _wait_busy(other: redis.Redis, started: float) -> float:
    """PINGs until one is answered BUSY (those answered PONG ran before the script); seconds since ``started``."""
    while True:
        try:
            other.ping()
        except redis.exceptions.BusyLoadingError as error:  # redis-py maps BUSY to this class
            assert str(error) == BUSY
            return time.monotonic() - started
        except redis.ResponseError as error:
            assert str(error) == BUSY
            return time.monotonic() - started


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = start_respq(tmp_path / "data", "--appendfsync", "always")
    try:
        yield process
    finally:
        process.stop()


def test_busy_then_script_kill_at_the_default_threshold(server: ServerProcess) -> None:
    """The real shape: a 10 s script, the default 5000 ms threshold, BUSY by 5.1 s, SCRIPT KILL ends it."""
    caller, other = make_client(server), make_client(server)
    other.ping()
    started = time.monotonic()
    thread, result = in_thread(caller.eval, LOOP, 0, "10")
    elapsed = _wait_busy(other, started)
    assert 4.9 <= elapsed <= 5.1 + 0.3, elapsed  # the thread start adds a little to both ends
    assert other.execute_command("SCRIPT", "KILL") == b"OK"
    thread.join(10)
    assert isinstance(result.get("error"), redis.ResponseError)
    assert str(result["error"]).startswith(KILLED + " script: ")
    assert time.monotonic() - started < 8
    assert other.ping() is True
    with pytest.raises(redis.ResponseError, match=r"^NOTBUSY No scripts in execution right now\.$"):
        other.execute_command("SCRIPT", "KILL")


def test_busy_arrives_within_threshold_and_100ms(server: ServerProcess) -> None:
    caller, other = _raw(server), make_client(server)
    other.config_set("busy-reply-threshold", 200)
    started = time.monotonic()
    _send(caller, "EVAL", LOOP, "0", "10")
    elapsed = _wait_busy(other, started)
    assert elapsed <= 0.2 + 0.1, elapsed
    # Meanwhile only the commands Redis allows run: MULTI and DISCARD do, EXEC and SHUTDOWN without NOSAVE do not.
    assert other.execute_command("MULTI") == b"OK"
    with pytest.raises(redis.ResponseError, match="^" + BUSY):
        other.execute_command("GET", "k")
    assert other.execute_command("DISCARD") == b"OK"
    with pytest.raises(redis.ResponseError, match="^" + BUSY):
        other.execute_command("SHUTDOWN")
    assert other.execute_command("SCRIPT", "KILL") == b"OK"
    assert _read_line(caller).startswith(b"-ERR " + KILLED.encode() + b" script: ")
    assert time.monotonic() - started < 5
    assert other.ping() is True


def test_pcall_cannot_swallow_script_kill(server: ServerProcess) -> None:
    caller, other = _raw(server), make_client(server)
    other.config_set("busy-reply-threshold", 100)
    _send(caller, "EVAL", "while true do pcall(function() while true do end end) end", "0")
    _wait_busy(other, time.monotonic())
    assert other.execute_command("SCRIPT", "KILL") == b"OK"
    assert _read_line(caller).startswith(b"-ERR " + KILLED.encode())


def test_a_script_that_wrote_is_unkillable_and_shutdown_nosave_drops_its_writes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    try:
        caller, other = _raw(server), make_client(server)
        other.set("before", "1")
        other.config_set("busy-reply-threshold", 100)
        _send(caller, "EVAL", WRITE_THEN_SPIN, "1", "script:", "500")
        _wait_busy(other, time.monotonic())
        with pytest.raises(redis.ResponseError, match=r"^UNKILLABLE Sorry the script already executed write commands"):
            other.execute_command("SCRIPT", "KILL")
        other.execute_command("SHUTDOWN", "NOSAVE")  # the server exits without replying
    except redis.ConnectionError:
        pass
    finally:
        assert server.proc.wait(10) == 0
        server.stop()
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        assert client.get("before") == b"1"
        assert client.dbsize() == 1  # none of the script's 500 writes
    finally:
        server.stop()


def test_kill9_during_a_script_keeps_none_of_its_writes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    try:
        caller, other = _raw(server), make_client(server)
        other.set("before", "1")
        other.config_set("busy-reply-threshold", 100)
        _send(caller, "EVAL", WRITE_THEN_SPIN, "1", "script:", "5000")
        _wait_busy(other, time.monotonic())  # the 5000 writes are done: the script spins
    finally:
        server.stop()  # SIGKILL
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        assert client.get("before") == b"1"
        assert client.dbsize() == 1
    finally:
        server.stop()


def test_kill9_at_any_moment_leaves_each_script_whole_or_absent(tmp_path: Path) -> None:
    """Scripts of 300 writes each run back to back from two clients; kill -9 lands at a random moment. After the
    restart every script's keys are all there or none, and every acknowledged script is there."""
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    writes = 300
    body = (
        "for i = 1, tonumber(ARGV[1]) do redis.call('rpush', KEYS[1], i) redis.call('set', KEYS[1] .. ':' .. i, i) end"
    )
    acknowledged: list[str] = []
    sent: list[str] = []
    stop = threading.Event()

    def produce(name: str) -> None:
        client = make_client(server)
        sha = client.script_load(body)
        number = 0
        while not stop.is_set():
            key = f"{name}:{number}"
            sent.append(key)
            try:
                client.evalsha(sha, 1, key, writes)
            except redis.ConnectionError:
                return
            acknowledged.append(key)
            number += 1

    threads = [threading.Thread(target=produce, args=(name,), daemon=True) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    target = random.randint(5, 40)  # the moment of the crash: any must do
    wait_until(lambda: len(acknowledged) >= target, timeout=60, interval=0.0005)
    server.stop()
    stop.set()
    for thread in threads:
        thread.join(10)
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        for key in sent:
            length = client.llen(key)
            strings = sum(1 for _ in client.scan_iter(f"{key}:*", count=1000))
            assert (length, strings) in ((0, 0), (writes, writes)), (key, length, strings)
            if key in acknowledged:
                assert length == writes, key
    finally:
        server.stop()


def test_info_counts_cached_scripts_and_flush_empties_them(server: ServerProcess) -> None:
    client = make_client(server)
    memory = client.info("memory")
    assert memory["number_of_cached_scripts"] == 0
    assert memory["used_memory_scripts_eval"] == 0
    client.script_load("return 1")
    client.eval("return 2", 0)
    memory = client.info("memory")
    assert memory["number_of_cached_scripts"] == 2
    assert memory["used_memory_scripts_eval"] > 0
    assert memory["used_memory_lua"] > 0
    assert client.script_flush("ASYNC") is True
    assert client.info("memory")["number_of_cached_scripts"] == 0


def test_script_debug_yes_is_refused(server: ServerProcess) -> None:
    client = make_client(server)
    assert client.execute_command("SCRIPT", "DEBUG", "NO") == b"OK"
    for mode in ("YES", "SYNC"):
        with pytest.raises(redis.ResponseError, match="not supported by this server"):
            client.execute_command("SCRIPT", "DEBUG", mode)


def test_a_script_allocating_without_bound_is_stopped(tmp_path: Path) -> None:
    server = start_respq(tmp_path / "data", "--script-memory-limit", "32mb")
    try:
        client = make_client(server)
        with pytest.raises(redis.ResponseError, match=r"Script exceeded script-memory-limit \(33554432 bytes\)"):
            client.eval("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end", 0)
        assert client.eval("return 'still here'", 0) == b"still here"
    finally:
        server.stop()


def test_writes_a_script_made_before_an_error_are_kept_and_durable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--appendfsync", "always")
    try:
        client = make_client(server)
        with pytest.raises(redis.ResponseError):
            client.eval("redis.call('set', 'a', 1) redis.call('rpush', 'l', 'x') error('stop')", 0)
    finally:
        server.stop()
    server = start_respq(data_dir)
    try:
        client = make_client(server)
        assert client.get("a") == b"1"
        assert client.lrange("l", 0, -1) == [b"x"]
    finally:
        server.stop()


def test_a_blocked_client_is_served_by_a_script_push(server: ServerProcess) -> None:
    client, waiter = make_client(server), make_client(server)
    thread, result = in_thread(waiter.blpop, ["q"], 10)
    wait_until(lambda: client.info("clients")["blocked_clients"] == 1)
    assert client.eval("return redis.call('rpush', KEYS[1], 'job')", 1, "q") == 1
    thread.join(10)
    assert result["value"] == (b"q", b"job")


def test_redis_py_lock_and_registered_scripts(server: ServerProcess) -> None:
    """What clients build on scripts: redis-py's Lock (acquire, extend, release by token in Lua) and
    register_script (EVALSHA, falling back to EVAL on NOSCRIPT after SCRIPT FLUSH)."""
    client = make_client(server)
    lock = client.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert not client.lock("resource", timeout=10).acquire(blocking=False)
    assert lock.extend(5)
    lock.release()
    assert client.get("resource") is None
    script = client.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert script(keys=["n"], args=[5]) == 5
    client.script_flush()
    assert script(keys=["n"], args=[2]) == 7  # NOSCRIPT, then EVAL: cached again
    assert client.script_exists(script.sha) == [True]


def test_a_client_connecting_during_a_long_script_gets_busy(server: ServerProcess) -> None:
    caller, other = _raw(server), make_client(server)
    other.config_set("busy-reply-threshold", 100)
    _send(caller, "EVAL", LOOP, "0", "10")
    _wait_busy(other, time.monotonic())
    newcomer = _raw(server)  # connects while the script runs
    _send(newcomer, "PING")
    assert _read_line(newcomer) == b"-" + BUSY.encode() + b"\r\n"
    _send(newcomer, "SCRIPT", "KILL")
    assert _read_line(newcomer) == b"+OK\r\n"
    assert _read_line(caller).startswith(b"-ERR " + KILLED.encode())


def test_replies_of_the_same_pass_are_not_held_by_a_long_script(tmp_path: Path) -> None:
    """A client whose command ran in the same reactor pass as the script, just before it, gets its reply when the
    script passes the threshold, not when it ends. DEBUG SLEEP holds the loop so that the PING and the EVAL arrive
    together; whichever runs first, the PING's reply (PONG, or BUSY) must come within the threshold and a second."""
    server = start_respq(tmp_path / "data", "--enable-debug-command", "yes", "--busy-reply-threshold", "200")
    try:
        sleeper, caller, other = _raw(server), _raw(server), _raw(server)
        _send(sleeper, "DEBUG", "SLEEP", "0.3")
        started = time.monotonic()
        _send(other, "PING")
        _send(caller, "EVAL", LOOP, "0", "10")
        assert _read_line(other) in (b"+PONG\r\n", b"-" + BUSY.encode() + b"\r\n")
        assert time.monotonic() - started < 0.3 + 0.2 + 1.0
        _send(other, "SCRIPT", "KILL")
        assert _read_line(other) == b"+OK\r\n"
        assert _read_line(caller).startswith(b"-ERR " + KILLED.encode())
    finally:
        server.stop()
