"""redis-py's own recipes: `Redis.transaction` (a Pipeline with WATCH, retried on WatchError) and `Lock`."""

from __future__ import annotations

import threading

import redis
from redis.client import Pipeline

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
