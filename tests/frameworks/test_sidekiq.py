"""Sidekiq (Debian's ruby-sidekiq 6.4 with redis-rb 4.8): a real `sidekiq` process, and the client and API views
driven by ruby/sidekiq_client.rb (application: ruby/sidekiq_app.rb)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis

from conftest import require_tool
from tests.frameworks.helpers import SCENARIO_TIMEOUT, Workers, eventually

RUBY_DIR = Path(__file__).parent / "ruby"


@pytest.fixture
def ruby() -> str:
    binary = require_tool("ruby")
    require_tool("sidekiq")
    return binary


def _client_step(ruby: str, url: str, step: str) -> dict[str, object]:
    completed = subprocess.run(
        [ruby, str(RUBY_DIR / "sidekiq_client.rb"), step], env={"REDIS_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True, timeout=SCENARIO_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def _sidekiq(workers: Workers, url: str) -> None:
    workers.start(require_tool("sidekiq"), "-r", str(RUBY_DIR / "sidekiq_app.rb"), "-c", "2", "-t", "1",
                  env={"REDIS_URL": url}, cwd=RUBY_DIR)


def test_perform_async_push_bulk_and_queue_views(ruby: str, url: str, workers: Workers, client: redis.Redis) -> None:
    assert _client_step(ruby, url, "enqueue") == {
        "ids": [True] * 4,
        "queues": ["default"],
        "size": 4,
        "classes": ["AddJob"] * 4,
        "args": [[2, 3], [10, 1], [20, 2], [30, 3]],
        "lengths": {"default": 4},
    }
    _sidekiq(workers, url)
    eventually(lambda: client.llen("results") == 4, what="four jobs done")
    assert sorted(client.lrange("results", 0, -1)) == ["add:11", "add:22", "add:33", "add:5"]
    # The process registers itself with its heartbeat, whose busy count is a sample taken at the beat: one taken
    # while the last job was still being recorded says 1 until the next beat. Wait for the idle state, not a time.
    idle = {"size": 1, "processes": [[2, ["default"], 0]], "default_size": 0}
    eventually(lambda: _client_step(ruby, url, "processes") == idle, what="the idle process's heartbeat")


def test_perform_in_retries_and_the_dead_set(ruby: str, url: str, workers: Workers, client: redis.Redis) -> None:
    """Sorted sets (schedule, retry, dead) and the scheduled poller's Lua script."""
    assert _client_step(ruby, url, "schedule") == {"ids": [True, True], "scheduled": 2}
    assert _client_step(ruby, url, "failures") == {"enqueued": 3}
    _sidekiq(workers, url)
    # The due scheduled job runs; the doomed job dies at its first failure; the other two wait in the retry set.
    eventually(lambda: client.llen("results") == 1, what="the scheduled job")
    eventually(lambda: len(_client_step(ruby, url, "sets")["retry"]) == 2, what="two jobs in the retry set")
    assert _client_step(ruby, url, "retry_flaky") == {"retry": ["RetryLaterJob"]}
    eventually(lambda: client.llen("results") == 2, what="the retried flaky job")
    assert sorted(client.lrange("results", 0, -1)) == ["add:3", "flaky:f1:2"]
    # The counters reach the server with the process's next heartbeat (every 5 s).
    eventually(lambda: _client_step(ruby, url, "sets")["stats"][0] == 5, what="the counters' heartbeat flush")
    views = _client_step(ruby, url, "sets")
    assert views["scheduled"] == [["AddJob", [7, 7]]]
    assert views["retry"] == [["RetryLaterJob", ["r1"], "ArgumentError", 0]]
    assert views["dead"] == [["DoomedJob", ["d1"], "ArgumentError", "doomed d1"]]
    processed, failed, scheduled, retries, dead, enqueued, processes = views["stats"]  # type: ignore[misc]
    # Each failure counts as processed and failed: the scheduled add, flaky twice, doomed, retry-later.
    assert (processed, failed, scheduled, retries, dead, enqueued, processes) == (5, 3, 1, 1, 1, 0, 1)
