"""taskiq with taskiq-redis: the list-queue, pub/sub and stream brokers with real `taskiq worker` processes, and the
Redis result backend with progress and expiry (application: apps/taskiq_app.py)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TypeVar

import pytest
import redis

from tests.frameworks.helpers import SCENARIO_TIMEOUT, Worker, Workers, eventually

T = TypeVar("T")
APP = "tests.frameworks.apps.taskiq_app"


def _app(monkeypatch: pytest.MonkeyPatch, url: str, kind: str, **settings: str) -> ModuleType:
    """The application module configured for this server and broker, as the worker processes will load it."""
    monkeypatch.setenv("TASKIQ_URL", url)
    monkeypatch.setenv("TASKIQ_BROKER", kind)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return importlib.reload(importlib.import_module(APP))


def _worker(workers: Workers, **env: str) -> Worker:
    return workers.python("-m", "taskiq", "worker", f"{APP}:broker", "--workers", "1", "--no-configure-logging",
                          "--shutdown-timeout", "2", "--wait-tasks-timeout", "2", env=env)


def _run(app: ModuleType, scenario: Callable[[], Awaitable[T]]) -> T:
    """The producer side runs on asyncio, as taskiq's API does; startup/shutdown as an application would."""

    async def main() -> T:
        await app.broker.startup()
        try:
            return await asyncio.wait_for(scenario(), SCENARIO_TIMEOUT)
        finally:
            await app.broker.shutdown()

    return asyncio.run(main())


def _results(app: ModuleType, calls: list[tuple[object, tuple[object, ...]]]) -> list[object]:
    async def scenario() -> list[object]:
        tasks = [await task.kiq(*args) for task, args in calls]
        results = [await task.wait_result(timeout=SCENARIO_TIMEOUT, check_interval=0.02) for task in tasks]
        return [(r.is_err, r.return_value if not r.is_err else type(r.error).__name__) for r in results]

    return _run(app, scenario)


def test_list_queue_broker_runs_tasks_and_reports_errors(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    app = _app(monkeypatch, url, "list")
    _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="list")
    results = _results(app, [(app.add, (2, 3)), (app.fails, ()), (app.add, (40, 2))])
    assert results == [(False, 5), (True, "ValueError"), (False, 42)]
    assert client.llen("taskiq") == 0


def test_pubsub_broker_delivers_to_a_subscribed_worker(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    app = _app(monkeypatch, url, "pubsub")
    _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="pubsub")
    # Pub/sub drops what nobody hears: wait for the worker's subscription, as observable state.
    eventually(lambda: client.pubsub_numsub("taskiq")[0][1] >= 1, what="the worker's subscription")
    assert _results(app, [(app.add, (1, 1)), (app.add, (5, 8))]) == [(False, 2), (False, 13)]


def test_result_backend_progress_and_expiry(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    app = _app(monkeypatch, url, "list", TASKIQ_RESULT_PX="60000")
    _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="list", TASKIQ_RESULT_PX="60000")

    async def scenario() -> tuple[object, ...]:
        task = await app.with_progress.kiq(3)
        result = await task.wait_result(timeout=SCENARIO_TIMEOUT, check_interval=0.02)
        progress = await task.get_progress()
        ttls = (client.pttl(task.task_id), client.pttl(f"{task.task_id}__progress"))
        return result.return_value, progress.state, progress.meta, ttls

    value, state, meta, ttls = _run(app, scenario)
    assert (value, state, meta) == ("done", "STARTED", {"step": 3, "of": 3})
    assert all(0 < ttl <= 60000 for ttl in ttls), ttls


def test_results_expire(monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers) -> None:
    app = _app(monkeypatch, url, "list", TASKIQ_RESULT_PX="300")
    _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="list", TASKIQ_RESULT_PX="300")

    async def scenario() -> tuple[int, bool]:
        task = await app.add.kiq(20, 22)
        value = (await task.wait_result(timeout=SCENARIO_TIMEOUT, check_interval=0.02)).return_value
        while await task.is_ready():  # bounded by the scenario's timeout
            await asyncio.sleep(0.05)
        return value, await task.is_ready()

    assert _run(app, scenario) == (42, False)


def test_stream_broker_two_consumers_each_task_runs_once(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    """The stream broker's reclaim step takes redis-py's Lock (a Lua script) on every pass."""
    app = _app(monkeypatch, url, "stream")
    for _ in range(2):
        _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="stream")
    eventually(lambda: _readers(client) == 2, what="two consumers reading the group")
    results = _results(app, [(app.whoami, (n,)) for n in range(20)])
    assert [value[0] for _, value in results] == list(range(20))  # type: ignore[index]
    # Each message acknowledged once: a worker stores the result before it acknowledges, so wait for the acks.
    eventually(lambda: client.xinfo_groups("taskiq")[0]["pending"] == 0, what="every message acknowledged")


def test_stream_broker_claims_a_dead_consumers_messages(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    app = _app(monkeypatch, url, "stream")
    doomed = _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="stream", TASKIQ_DOOMED="1")
    eventually(lambda: _readers(client) == 1, what="the first consumer reading")

    async def send() -> list[str]:
        return [(await app.hang_once.kiq(n)).task_id for n in range(3)]

    task_ids = _run(app, send)
    eventually(lambda: client.xinfo_groups("taskiq")[0]["pending"] == 3, what="three messages pending on it")
    doomed.kill()
    _worker(workers, TASKIQ_URL=url, TASKIQ_BROKER="stream", TASKIQ_CLAIM_IDLE_MS="300")
    eventually(lambda: _readers(client) == 1, what="the second consumer reading")

    async def collect() -> list[object]:
        # The broker reclaims after a read that returned messages: one more task sets it going.
        task_ids.append((await app.hang_once.kiq(3)).task_id)
        values = []
        for task_id in task_ids:
            while not await app.broker.result_backend.is_result_ready(task_id):
                await asyncio.sleep(0.05)
            values.append((await app.broker.result_backend.get_result(task_id)).return_value)
        return values

    assert _run(app, collect) == [0, 1, 2, 3]
    eventually(lambda: client.xinfo_groups("taskiq")[0]["pending"] == 0, what="the claimed messages acknowledged")


def _readers(client: redis.Redis) -> int:
    """Consumers blocked in XREADGROUP (Redis 7.0 adds a consumer to the group only when it is served)."""
    return sum(1 for entry in client.client_list() if entry.get("cmd") == "xreadgroup")
