"""dramatiq: a real `dramatiq` worker process with the Redis broker, whose every operation is one Lua script, and
the Redis results backend (application: apps/dramatiq_app.py)."""

from __future__ import annotations

import importlib
import time
from types import ModuleType

import pytest
import redis
from dramatiq.results import ResultFailure

from tests.frameworks.helpers import SCENARIO_TIMEOUT, Workers

APP = "tests.frameworks.apps.dramatiq_app"
WAIT_MS = int(SCENARIO_TIMEOUT * 1000)


def _app(monkeypatch: pytest.MonkeyPatch, url: str) -> ModuleType:
    monkeypatch.setenv("DRAMATIQ_URL", url)
    return importlib.reload(importlib.import_module(APP))


def test_actors_retries_delays_and_results(
    monkeypatch: pytest.MonkeyPatch, url: str, workers: Workers, client: redis.Redis
) -> None:
    app = _app(monkeypatch, url)
    try:
        added = app.add.send(2, 3)
        retried = app.flaky.send("d1", 2)
        failed = app.fail.send("dramatiq actor failed on purpose")
        started = time.monotonic()
        delayed = app.add.send_with_options(args=(40, 2), delay=1000)
        workers.python("-m", "dramatiq", APP, "--processes", "1", "--threads", "2", "--worker-shutdown-timeout",
                       "1000", env={"DRAMATIQ_URL": url})
        assert added.get_result(block=True, timeout=WAIT_MS) == 5
        assert retried.get_result(block=True, timeout=WAIT_MS) == 3
        with pytest.raises(ResultFailure, match="dramatiq actor failed on purpose"):
            failed.get_result(block=True, timeout=WAIT_MS)
        assert delayed.get_result(block=True, timeout=WAIT_MS) == 42
        assert time.monotonic() - started >= 1.0
        # The failed message sits in the dead-letter set, as dramatiq keeps it.
        assert client.zcard("dramatiq:default.XQ") == 1
    finally:
        app.broker.close()
