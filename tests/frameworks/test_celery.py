"""Celery 5 with kombu's Redis transport and the Redis result backend: a real `celery worker` with default settings
(prefork, mingle, gossip, heartbeat, remote control), driven through Celery's API (application: apps/celery_app.py).

kombu keeps delivered messages in a sorted set (unacked_index) and guards its restore with redis-py's Lock, so the
worker needs sorted sets and scripting."""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from celery import chain, chord, group

from tests.frameworks.helpers import SCENARIO_TIMEOUT, Workers, eventually

APP = "tests.frameworks.apps.celery_app"


def _app(monkeypatch: pytest.MonkeyPatch, url: str) -> ModuleType:
    monkeypatch.setenv("CELERY_URL", url)
    return importlib.reload(importlib.import_module(APP))


def _worker(workers: Workers, url: str, name: str = "w1") -> None:
    workers.python("-m", "celery", "-A", APP, "worker", "--loglevel", "INFO", "--concurrency", "2",
                   "--hostname", f"{name}@%h", env={"CELERY_URL": url})


def _ready(app: ModuleType, name: str = "w1") -> str:
    """The worker's node name once it answers a ping: remote control over pub/sub and its reply queue."""

    def answered() -> str | None:
        replies = app.app.control.ping(timeout=0.5)
        nodes = [node for reply in replies for node in reply if node.startswith(f"{name}@")]
        return nodes[0] if nodes else None

    return str(eventually(answered, what="the worker's pong"))


def test_results_canvas_and_errors(monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers) -> None:
    app = _app(monkeypatch, url)
    _worker(workers, url)
    assert app.add.delay(2, 3).get(timeout=SCENARIO_TIMEOUT) == 5
    failed = app.fail.delay("celery task failed on purpose")
    with pytest.raises(ValueError, match="celery task failed on purpose"):
        failed.get(timeout=SCENARIO_TIMEOUT)
    assert failed.state == "FAILURE"
    assert chain(app.add.s(1, 2), app.add.s(10), app.add.s(100))().get(timeout=SCENARIO_TIMEOUT) == 113
    assert group(app.add.s(i, i) for i in range(5))().get(timeout=SCENARIO_TIMEOUT) == [0, 2, 4, 6, 8]
    assert chord((app.add.s(i, 1) for i in range(4)), app.tsum.s())().get(timeout=SCENARIO_TIMEOUT) == 10


def test_retries_countdown_and_eta(monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers) -> None:
    app = _app(monkeypatch, url)
    _worker(workers, url)
    started = time.monotonic()
    assert app.flaky.delay("f1", 2).get(timeout=SCENARIO_TIMEOUT) == 3
    assert time.monotonic() - started >= 1.0  # two retries, each after a 0.5 s countdown
    exhausted = app.hopeless.delay("h1")
    with pytest.raises(KeyError):
        exhausted.get(timeout=SCENARIO_TIMEOUT)
    eta = datetime.now(UTC) + timedelta(seconds=1)
    later = app.add.apply_async((20, 22), eta=eta)
    soon = app.add.apply_async((1, 1), countdown=0.5)
    assert soon.get(timeout=SCENARIO_TIMEOUT) == 2
    assert later.get(timeout=SCENARIO_TIMEOUT) == 42
    done = later.date_done if later.date_done.tzinfo else later.date_done.replace(tzinfo=UTC)
    assert done >= eta  # held by the worker until its ETA


def test_remote_control_ping_and_inspect(monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers) -> None:
    app = _app(monkeypatch, url)
    _worker(workers, url)
    node = _ready(app)
    assert app.app.control.ping(destination=[node], timeout=1) == [{node: {"ok": "pong"}}]
    inspect = app.app.control.inspect(destination=[node], timeout=1)
    registered = inspect.registered()[node]
    assert {f"{APP}.add", f"{APP}.tsum", f"{APP}.flaky"} <= set(registered)
    assert [queue["name"] for queue in inspect.active_queues()[node]] == ["celery"]
    assert inspect.active()[node] == []
    assert app.add.delay(4, 4).get(timeout=SCENARIO_TIMEOUT) == 8
    stats = inspect.stats()[node]
    assert stats["total"] == {f"{APP}.add": 1}
    assert stats["broker"]["transport"] == "redis"
