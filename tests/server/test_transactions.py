"""MULTI/EXEC/WATCH across clients."""

from __future__ import annotations

import time

import redis

from conftest import ServerProcess
from tests.server.helpers import make_client


def test_watch_aborts_exec_after_another_client_writes(respq_server: ServerProcess, r: redis.Redis) -> None:
    other = make_client(respq_server)
    r.rpush("k", "1")
    pipe = r.pipeline(transaction=True)
    pipe.watch("k")
    other.rpush("k", "2")
    pipe.multi()
    pipe.rpush("k", "3")
    try:
        pipe.execute()
        raised = False
    except redis.WatchError:
        raised = True
    assert raised
    assert r.lrange("k", 0, -1) == [b"1", b"2"]


def test_watch_without_changes_executes(r: redis.Redis) -> None:
    r.rpush("k", "1")
    pipe = r.pipeline(transaction=True)
    pipe.watch("k")
    pipe.multi()
    pipe.rpush("k", "2")
    assert pipe.execute() == [2]


def test_watch_aborts_when_the_key_expires(r: redis.Redis) -> None:
    r.rpush("k", "1")
    r.pexpire("k", 50)
    pipe = r.pipeline(transaction=True)
    pipe.watch("k")
    deadline = time.monotonic() + 5
    while r.pttl("k") > 0 and time.monotonic() < deadline:  # observable state: the TTL running out
        time.sleep(0.01)
    pipe.multi()
    pipe.rpush("other", "x")
    try:
        pipe.execute()
        raised = False
    except redis.WatchError:
        raised = True
    assert raised


def test_flushall_touches_watched_keys(respq_server: ServerProcess, r: redis.Redis) -> None:
    other = make_client(respq_server)
    r.rpush("k", "1")
    pipe = r.pipeline(transaction=True)
    pipe.watch("k")
    other.flushall()
    pipe.multi()
    pipe.rpush("k", "2")
    try:
        pipe.execute()
        raised = False
    except redis.WatchError:
        raised = True
    assert raised


def test_runtime_errors_are_reported_per_command(r: redis.Redis) -> None:
    r.rpush("list", "a")
    pipe = r.pipeline(transaction=True)
    pipe.rpush("list", "b")
    pipe.lset("list", 99, "x")
    pipe.llen("list")
    results = pipe.execute(raise_on_error=False)
    assert results[0] == 2
    assert isinstance(results[1], redis.ResponseError)
    assert results[2] == 2
