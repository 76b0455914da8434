"""Blocking list commands across clients: FIFO service, wake-ups, timeouts, unblocking and disconnects."""

from __future__ import annotations

import socket

import redis

from conftest import ServerProcess, wait_until
from tests.server.helpers import blocked_clients, in_thread, make_client


def test_waiters_are_served_in_fifo_order(respq_server: ServerProcess, r: redis.Redis) -> None:
    first, second = make_client(respq_server), make_client(respq_server)
    t1, res1 = in_thread(first.blpop, ["q"], 0)
    wait_until(lambda: blocked_clients(r) == 1)
    t2, res2 = in_thread(second.blpop, ["q"], 0)
    wait_until(lambda: blocked_clients(r) == 2)
    r.rpush("q", "a", "b")
    t1.join(10)
    t2.join(10)
    assert res1["value"] == (b"q", b"a")
    assert res2["value"] == (b"q", b"b")
    assert r.exists("q") == 0
    assert blocked_clients(r) == 0


def test_push_inside_multi_wakes_after_exec_with_final_state(respq_server: ServerProcess, r: redis.Redis) -> None:
    waiter = make_client(respq_server)
    thread, result = in_thread(waiter.brpop, ["q"], 0)
    wait_until(lambda: blocked_clients(r) == 1)
    pipe = r.pipeline(transaction=True)
    pipe.rpush("q", "x", "y")
    pipe.lpop("q")
    pipe.execute()
    thread.join(10)
    assert result["value"] == (b"q", b"y")


def test_timeout_returns_nil(r: redis.Redis) -> None:
    assert r.blpop(["nothing"], 0.05) is None
    assert r.brpop(["nothing"], 0.05) is None


def test_blocking_inside_multi_does_not_block(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.blpop(["empty"], 0)
    assert pipe.execute() == [None]


def test_client_unblock_timeout_and_error(respq_server: ServerProcess, r: redis.Redis) -> None:
    waiter = make_client(respq_server)
    waiter_id = waiter.client_id()
    thread, result = in_thread(waiter.blpop, ["q"], 0)
    wait_until(lambda: blocked_clients(r) == 1)
    assert r.client_unblock(waiter_id) == 1
    thread.join(10)
    assert result["value"] is None
    thread, result = in_thread(waiter.blpop, ["q"], 0)
    wait_until(lambda: blocked_clients(r) == 1)
    assert r.client_unblock(waiter_id, error=True) == 1
    thread.join(10)
    assert isinstance(result["error"], redis.ResponseError)
    assert "UNBLOCKED" in str(result["error"])


def test_disconnected_waiter_is_removed(respq_server: ServerProcess, r: redis.Redis) -> None:
    raw = socket.create_connection(("127.0.0.1", respq_server.port))
    raw.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
    wait_until(lambda: blocked_clients(r) == 1)
    raw.close()
    wait_until(lambda: blocked_clients(r) == 0)
    r.rpush("q", "kept")
    assert r.lrange("q", 0, -1) == [b"kept"]


def test_blmove_serves_and_chains_to_destination_waiters(respq_server: ServerProcess, r: redis.Redis) -> None:
    mover, reader = make_client(respq_server), make_client(respq_server)
    t1, res1 = in_thread(mover.blmove, "src", "dst", 0, "RIGHT", "LEFT")
    wait_until(lambda: blocked_clients(r) == 1)
    t2, res2 = in_thread(reader.blpop, ["dst"], 0)
    wait_until(lambda: blocked_clients(r) == 2)
    r.rpush("src", "m")
    t1.join(10)
    t2.join(10)
    assert res1["value"] == b"m"
    assert res2["value"] == (b"dst", b"m")
    assert r.exists("src", "dst") == 0


def test_pipelined_commands_after_a_blocking_one_wait_for_it(respq_server: ServerProcess, r: redis.Redis) -> None:
    raw = socket.create_connection(("127.0.0.1", respq_server.port))
    raw.sendall(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n")
    wait_until(lambda: blocked_clients(r) == 1)
    r.rpush("q", "v")
    expected = b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n+PONG\r\n"
    data = b""
    raw.settimeout(10)
    while len(data) < len(expected):
        data += raw.recv(1024)
    assert data == expected
    raw.close()
