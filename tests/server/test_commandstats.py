"""INFO commandstats and errorstats after rejected and failed calls, compared with redis-server.

Redis counts a command refused before it runs (wrong arity, NOAUTH, a subscribed RESP2 client, a no-multi
command inside MULTI) as a rejected call and not a call; an error from a running command as a failed call; an unknown
command or subcommand only in errorstats. Raw sockets, so no client handshake adds calls of its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest

from conftest import ServerProcess, start_redis, start_respq

# One session per list; every reply is read before the next command is sent.
SESSIONS = [
    [
        "XADD s 1-1 f v",
        "LPUSH",  # arity: rejected
        "LPUSH q a",
        "LPUSH s x",  # WRONGTYPE: failed
        "NOSUCH a",  # unknown: errorstats only
        "CONFIG NOSUCH",  # unknown subcommand: errorstats only
        "CONFIG",  # a container's arity: rejected on the container
        "CONFIG GET",  # a subcommand's arity
        "MULTI",
        "MULTI",  # failed
        "WATCH k",  # failed
        "LPUSH",  # rejected, and poisons the transaction
        "EXEC",  # EXECABORT: failed
        "EXEC",  # without MULTI: failed
        "MULTI",
        "LPUSH q b",
        "LPOP s",  # queued; fails inside EXEC
        "EXEC",
        "MULTI",
        "SHUTDOWN",  # no-multi: rejected
        "DISCARD",
    ],
    ["SUBSCRIBE ch", "LLEN q", "UNSUBSCRIBE ch"],  # a RESP2 subscriber may not run LLEN: rejected
]
AUTH_SESSION = ["LLEN q", "AUTH wrong", "AUTH secret", "LLEN q"]


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def __call__(self, line: str) -> object:
        self.sock.sendall(line.encode() + b"\r\n")  # inline commands: every argument here is a plain word
        while (reply := self.reader.gets()) is False:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.reader.feed(data)
        return reply

    def close(self) -> None:
        self.sock.close()


def stats_after(port: int, sessions: list[list[str]], auth: str | None = None) -> tuple[dict, dict]:
    """(command -> (calls, rejected_calls, failed_calls), errorstats) after running the sessions."""
    admin = RawClient(port)
    if auth:
        admin(f"AUTH {auth}")
    admin("CONFIG RESETSTAT")
    replies = []
    for session in sessions:
        client = RawClient(port)
        replies.append([client(line) for line in session])
        client.close()
    info = admin("INFO commandstats")
    errors = admin("INFO errorstats")
    admin.close()
    assert isinstance(info, bytes) and isinstance(errors, bytes)
    commands = {}
    for name, fields in _lines(info):
        values = dict(field.split("=") for field in fields.split(","))
        commands[name.removeprefix("cmdstat_")] = tuple(
            int(values[key]) for key in ("calls", "rejected_calls", "failed_calls")
        )
    commands.pop("config|resetstat", None)
    return commands, dict(_lines(errors))


def _lines(info: bytes) -> Iterator[tuple[str, str]]:
    for line in info.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            yield name, value


@pytest.fixture
def servers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    extra = list(getattr(request, "param", ()))
    redis_server = start_redis(*extra)
    try:
        respq = start_respq(tmp_path / "data", *extra)
        try:
            yield redis_server, respq
        finally:
            respq.stop()
    finally:
        redis_server.stop()


def test_rejected_and_failed_calls_are_counted_as_redis_counts_them(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    redis_server, respq = servers
    expected = stats_after(redis_server.port, SESSIONS)
    assert expected[0]["lpush"] == (3, 2, 1)  # the oracle behaves as the docstring says
    assert stats_after(respq.port, SESSIONS) == expected


@pytest.mark.parametrize("servers", [("--requirepass", "secret")], indirect=True)
def test_noauth_is_a_rejected_call_and_a_wrong_password_a_failed_one(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    redis_server, respq = servers
    expected = stats_after(redis_server.port, [AUTH_SESSION], auth="secret")
    assert expected[0]["llen"] == (1, 1, 0) and expected[0]["auth"] == (2, 0, 1)
    assert stats_after(respq.port, [AUTH_SESSION], auth="secret") == expected


def test_serving_a_blocked_call_adds_its_time_not_a_call(tmp_path: Path) -> None:
    """Redis 7.0's updateStatsOnUnblock: a BLPOP served by a push adds the call's time plus the serving time to
    its usec (the slow log's duration for it), and no second call."""
    server = start_respq(tmp_path / "data", "--slowlog-log-slower-than", "0")
    try:
        waiting, pusher = RawClient(server.port), RawClient(server.port)
        waiting.sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        deadline = time.monotonic() + 10
        while b"blocked_clients:1" not in pusher("INFO clients"):  # type: ignore[operator]
            assert time.monotonic() < deadline
        assert pusher("LPUSH q x") == 1
        waiting.sock.settimeout(10)
        waiting.reader.feed(waiting.sock.recv(4096))
        assert waiting.reader.gets() == [b"q", b"x"]
        entries = pusher("SLOWLOG GET 100")
        served = [entry[2] for entry in entries if entry[3][0] == b"BLPOP"]  # type: ignore[union-attr, index]
        stats = dict(_lines(pusher("INFO commandstats")))  # type: ignore[arg-type]
        fields = dict(item.split("=") for item in stats["cmdstat_blpop"].split(","))
        assert fields["calls"] == "1"
        assert int(fields["usec"]) > served[0]  # the call's own time, then again with the serving time
        waiting.close()
        pusher.close()
    finally:
        server.stop()
