"""redis-py's own recipes: `Redis.transaction` (a Pipeline with WATCH, retried on WatchError) and `Lock`."""

from __future__ import annotations

import threading

import pytest
import redis
from redis.client import Pipeline
from redis.exceptions import LockError, LockNotOwnedError

from conftest import ServerProcess


def _client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10, decode_responses=True)


def test_transaction_retries_when_a_watched_key_changes(server: ServerProcess) -> None:
    app, other = _client(server), _client(server)
    app.set("balance", 100)
    attempts: list[int] = []

    def withdraw(pipe: Pipeline) -> None:
        balance = int(pipe.get("balance"))  # type: ignore[arg-type]
        if not attempts:
            other.incrby("balance", 50)  # a concurrent writer between WATCH and EXEC: the first EXEC must abort
        attempts.append(balance)
        pipe.multi()
        pipe.set("balance", balance - 30)

    assert app.transaction(withdraw, "balance") == [True]
    assert attempts == [100, 150]
    assert app.get("balance") == "120"


def test_transaction_counters_from_threads_add_up(server: ServerProcess) -> None:
    threads, rounds = 4, 50

    def work() -> None:
        client = _client(server)

        def increment(pipe: Pipeline) -> None:
            value = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", value + 1)

        for _ in range(rounds):
            client.transaction(increment, "counter")

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    assert not any(thread.is_alive() for thread in pool)
    assert _client(server).get("counter") == str(threads * rounds)


def test_transaction_value_from_the_callable(server: ServerProcess) -> None:
    client = _client(server)
    client.rpush("jobs", "a", "b")

    def take(pipe: Pipeline) -> str:
        head = pipe.lindex("jobs", 0)
        pipe.multi()
        pipe.lpop("jobs")
        return str(head)

    assert client.transaction(take, "jobs", value_from_callable=True) == "a"
    assert client.lrange("jobs", 0, -1) == ["b"]


def test_lock_acquire_extend_release(server: ServerProcess) -> None:
    """Lock's release, extend and reacquire are Lua scripts."""
    owner, rival = _client(server), _client(server)
    lock = owner.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()
    contender = rival.lock("resource", timeout=5)
    assert not contender.acquire(blocking=True, blocking_timeout=0.2)
    assert lock.extend(10)
    assert 5000 < owner.pttl("resource") <= 15000
    assert lock.extend(3, replace_ttl=True)
    assert owner.pttl("resource") <= 3000
    assert lock.reacquire()
    assert 3000 < owner.pttl("resource") <= 5000
    with pytest.raises(LockError):
        contender.release()  # a lock it never took
    lock.release()
    assert not lock.locked()
    with pytest.raises(LockError):
        lock.release()
    stale = owner.lock("resource", timeout=5)
    stale.local.token = b"a-token-nobody-holds"  # as a process whose lease was taken over sees it
    with pytest.raises(LockNotOwnedError):
        stale.extend(1)
    assert contender.acquire(blocking=False)
    contender.release()


def test_lock_expires_and_passes_to_a_waiter(server: ServerProcess) -> None:
    owner, waiter = _client(server), _client(server)
    held = owner.lock("job:42", timeout=0.3)
    assert held.acquire(blocking=False)
    taken = waiter.lock("job:42", timeout=5, sleep=0.02)
    assert taken.acquire(blocking=True, blocking_timeout=10)  # after the owner's lease runs out
    with pytest.raises(LockNotOwnedError):
        held.release()
    taken.release()
