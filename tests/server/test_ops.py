"""MONITOR, SLOWLOG, LATENCY, SAVE/BGSAVE/LASTSAVE and WAIT against a respq subprocess: what the differential cases
cannot show (pipelined runs, background checkpoints, blocking forever, fsync-free latency events)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hiredis
import pytest

from conftest import ServerProcess, start_redis, start_respq, wait_until


class Raw:
    """A raw RESP connection: replies are read whole, one at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def send(self, *commands: list[str | bytes]) -> None:
        data = b""
        for args in commands:
            parts = [a.encode() if isinstance(a, str) else a for a in args]
            data += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.sock.sendall(data)

    def read(self) -> object:
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.reader.feed(data)

    def call(self, *args: str | bytes) -> object:
        self.send(list(args))
        return self.read()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_respq(tmp_path / "data", "--enable-debug-command", "yes")
    try:
        yield process
    finally:
        process.stop()


def test_monitor_shows_each_call_of_a_pipelined_run(server: ServerProcess) -> None:
    """A pipeline of LPUSHes on one key normally runs as one operation; a monitor still sees every call."""
    monitor, producer = Raw(server.port), Raw(server.port)
    try:
        producer.call("PING")
        assert monitor.call("MONITOR") == b"OK"
        producer.send(*[["LPUSH", "q", f"job{i}"] for i in range(20)])
        assert [producer.read() for _ in range(20)] == list(range(1, 21))
        lines = [monitor.read() for _ in range(20)]
        assert [line.split(b"] ", 1)[1] for line in lines] == [b'"LPUSH" "q" "job%d"' % i for i in range(20)]
        assert all(line.split(b" ")[1] == b"[0" for line in lines)
    finally:
        monitor.close()
        producer.close()


def test_a_closed_monitor_stops_the_feed(server: ServerProcess) -> None:
    monitor, other = Raw(server.port), Raw(server.port)
    try:
        assert monitor.call("MONITOR") == b"OK"
        other.call("SET", "k", "v")
        assert monitor.read().endswith(b'"SET" "k" "v"')
        monitor.close()
        wait_until(lambda: other.call("INFO", "clients").count(b"connected_clients:1\r\n") == 1)
        other.send(*[["RPUSH", "q", "x"]] * 10)  # runs as one operation again; nothing is fed to a closed socket
        assert [other.read() for _ in range(10)] == list(range(1, 11))
    finally:
        other.close()


def test_slowlog_logs_a_slow_call_with_its_duration_client_and_name(server: ServerProcess) -> None:
    client = Raw(server.port)
    try:
        client.call("CLIENT", "SETNAME", "sleepy")
        client.call("DEBUG", "SLEEP", "0.05")
        entries = client.call("SLOWLOG", "GET")
        assert len(entries) == 1
        entry_id, at, micros, argv, addr, name = entries[0]
        assert (entry_id, argv, name) == (0, [b"DEBUG", b"SLEEP", b"0.05"], b"sleepy")
        assert micros >= 50_000 and abs(at - time.time()) < 60
        assert addr == f"127.0.0.1:{client.sock.getsockname()[1]}".encode()
        client.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        client.send(*[["RPUSH", "q", "x"]] * 8)  # a pipelined run: each call is logged
        assert [client.read() for _ in range(8)] == list(range(1, 9))
        assert [entry[3] for entry in client.call("SLOWLOG", "GET", "8")] == [[b"RPUSH", b"q", b"x"]] * 8
    finally:
        client.close()


def test_slowlog_shows_a_scripts_calls_from_the_connectionless_script_client(server: ServerProcess) -> None:
    """Redis logs the calls a script makes with the peer ``?:0`` (its script client has no connection), before the
    EVAL that made them; the harness's slowlog-entries normalization masks addresses, so this is checked here."""
    client = Raw(server.port)
    try:
        client.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        client.call("SLOWLOG", "RESET")
        assert client.call("EVAL", "return redis.call('ping')", "0") == b"PONG"
        evaled, pinged = client.call("SLOWLOG", "GET", "2")
        assert (pinged[3], pinged[4], pinged[5]) == ([b"ping"], b"?:0", b"")
        assert evaled[3] == [b"EVAL", b"return redis.call('ping')", b"0"] and evaled[0] == pinged[0] + 1
        assert evaled[4] == f"127.0.0.1:{client.sock.getsockname()[1]}".encode()
    finally:
        client.close()


def test_latency_monitor_records_slow_commands_and_histograms(server: ServerProcess) -> None:
    client = Raw(server.port)
    try:
        client.call("CONFIG", "SET", "latency-monitor-threshold", "20")
        client.call("DEBUG", "SLEEP", "0.05")
        [[event, at, latency, worst]] = client.call("LATENCY", "LATEST")
        assert event == b"command" and 50 <= latency == worst and abs(at - time.time()) < 60
        histogram = client.call("LATENCY", "HISTOGRAM", "debug")
        assert histogram[0] == b"debug" and histogram[1][:2] == [b"calls", 1]
        buckets = histogram[1][3]
        assert buckets[-1] == 1 and 50_000 <= buckets[-2] < 200_000  # cumulative: the last bucket holds the call
        info = client.call("INFO", "latencystats").decode()
        assert "latency_percentiles_usec_debug:p50=" in info
    finally:
        client.close()


def test_serving_a_blocked_client_is_the_command_unblocking_latency_event(server: ServerProcess) -> None:
    """As Redis's updateStatsOnUnblock: the time a key took to serve a blocked client is the command-unblocking
    event. Popping 100000 values for a BLMPOP takes well over the 1 ms threshold (about 20 ms here)."""
    waiter, producer = Raw(server.port), Raw(server.port)
    count = 100_000
    try:
        producer.call("CONFIG", "SET", "latency-monitor-threshold", "1")
        waiter.send(["BLMPOP", "0", "1", "q", "LEFT", "COUNT", str(count)])
        wait_until(lambda: b"blocked_clients:1\r\n" in producer.call("INFO", "clients"))
        assert producer.call("RPUSH", "q", *[b"v%d" % i for i in range(count)]) == count
        key, popped = waiter.read()
        assert key == b"q" and len(popped) == count
        assert b"command-unblocking" in [event[0] for event in producer.call("LATENCY", "LATEST")]
        [[at, latency]] = producer.call("LATENCY", "HISTORY", "command-unblocking")
        assert latency >= 1 and abs(at - time.time()) < 60
    finally:
        waiter.close()
        producer.close()


def _last_checkpoint(client: Raw) -> float:
    info = client.call("INFO", "persistence").decode()
    return float(info.split("respq_last_checkpoint_time:")[1].split("\r\n")[0])


def test_save_bgsave_and_lastsave_write_checkpoints(server: ServerProcess) -> None:
    client = Raw(server.port)
    try:
        at_start = _last_checkpoint(client)  # start-up writes one
        assert abs(client.call("LASTSAVE") - at_start) <= 1
        client.call("RPUSH", "q", "a")
        assert client.call("SAVE") == b"OK"
        saved = _last_checkpoint(client)
        assert saved > at_start and client.call("LASTSAVE") == int(saved)
        assert client.call("BGSAVE") == b"Background saving started"
        wait_until(lambda: _last_checkpoint(client) > saved)
        assert client.call("LASTSAVE") == int(_last_checkpoint(client))
        assert client.call("BGREWRITEAOF") == b"Background append only file rewriting started"
    finally:
        client.close()


def test_wait_for_a_replica_with_no_timeout_blocks_until_unblocked(server: ServerProcess) -> None:
    waiter, control = Raw(server.port), Raw(server.port)
    try:
        waiter_id = waiter.call("CLIENT", "ID")
        waiter.send(["WAIT", "1", "0"])
        wait_until(lambda: b"blocked_clients:1\r\n" in control.call("INFO", "clients"))
        assert control.call("CLIENT", "UNBLOCK", str(waiter_id)) == 1
        assert waiter.read() == 0
        assert waiter.call("WAIT", "0", "0") == 0
    finally:
        waiter.close()
        control.close()


# The persistence commands a transaction may queue: Redis 7.0 refuses SAVE there (no_multi) and only schedules
# BGSAVE and BGREWRITEAOF, whatever came before them in the transaction.
PERSISTENCE_IN_MULTI = [
    [["MULTI"], ["SAVE"], ["SET", "a", "1"], ["EXEC"]],
    [["MULTI"], ["SET", "a", "1"], ["BGSAVE"], ["RPUSH", "q", "x", "y"], ["BGSAVE"], ["BGSAVE", "SCHEDULE"], ["EXEC"]],
    [["MULTI"], ["BGREWRITEAOF"], ["HSET", "h", "f", "v"], ["BGSAVE"], ["BGREWRITEAOF"], ["LPOP", "q"], ["EXEC"]],
]


def _persistence_in_multi(port: int, saved: Callable[[Raw], Callable[[], bool]]) -> list[object]:
    """The replies to each transaction; ``saved(client)`` before one is a predicate true once the saves that
    transaction scheduled have finished (so that the next one does not find them in progress)."""
    client = Raw(port)
    try:
        replies = []
        for index, transaction in enumerate(PERSISTENCE_IN_MULTI):
            done = saved(client)
            client.send(*transaction)
            replies.append([_comparable(client.read()) for _ in transaction])
            if index:  # the first one is refused whole: it schedules nothing
                wait_until(done)
        return replies
    finally:
        client.close()


def _comparable(reply: object) -> object:
    """hiredis's error objects never compare equal: their texts do."""
    if isinstance(reply, list):
        return [_comparable(item) for item in reply]
    return ("error", str(reply)) if isinstance(reply, hiredis.ReplyError) else reply


def _redis_saved(client: Raw) -> Callable[[], bool]:
    def idle() -> bool:
        info = client.call("INFO", "persistence")
        assert isinstance(info, bytes)
        return b"rdb_bgsave_in_progress:0\r\n" in info and b"aof_rewrite_in_progress:0\r\n" in info

    return idle


def _respq_saved(client: Raw) -> Callable[[], bool]:
    before = _last_checkpoint(client)
    return lambda: _last_checkpoint(client) > before


@pytest.mark.timeout(60)
def test_persistence_commands_in_a_transaction_answer_as_redis_and_checkpoint_after_exec(tmp_path: Path) -> None:
    """EXEC runs in one atomic block, where no checkpoint may start: the ones BGSAVE and BGREWRITEAOF schedule
    start after it, the transaction's writes included, and the replies are Redis's."""
    oracle = start_redis("--dir", str(tmp_path))  # its BGSAVE writes a dump file there
    server = start_respq(tmp_path / "data")
    try:
        theirs = _persistence_in_multi(oracle.port, _redis_saved)
        assert _persistence_in_multi(server.port, _respq_saved) == theirs  # each scheduled checkpoint ran after EXEC
        server.kill()
        server = start_respq(tmp_path / "data")
        client = Raw(server.port)
        assert client.call("LRANGE", "q", "0", "-1") == [b"y"]
        assert client.call("HGETALL", "h") == [b"f", b"v"] and client.call("GET", "a") == b"1"
        client.close()
    finally:
        server.stop()
        oracle.stop()
