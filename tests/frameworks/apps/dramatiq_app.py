"""A dramatiq application as a user writes one: the Redis broker (one Lua script) and the Redis results backend on
DRAMATIQ_URL. `dramatiq tests.frameworks.apps.dramatiq_app` runs its worker."""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

URL = os.environ.get("DRAMATIQ_URL", "redis://127.0.0.1:6379/0")

broker = RedisBroker(url=URL, heartbeat_timeout=5000, dead_message_ttl=600_000)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def add(a: int, b: int) -> int:
    return a + b


@dramatiq.actor(store_results=True, max_retries=3, min_backoff=100, max_backoff=200)
def flaky(name: str, failures: int) -> int:
    attempt = int(redis.Redis.from_url(URL).incr(f"attempts:{name}"))
    if attempt <= failures:
        raise RuntimeError(f"{name} attempt {attempt}")
    return attempt


@dramatiq.actor(store_results=True, max_retries=0)
def fail(message: str) -> None:
    raise ValueError(message)
