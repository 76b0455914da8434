"""A Celery application as a user writes one: kombu's Redis transport and the Redis result backend on CELERY_URL.

Default worker settings otherwise (prefork pool, mingle, gossip, heartbeat, remote control). CELERY_VISIBILITY_TIMEOUT
shortens kombu's redelivery of unacknowledged messages for the crash test (seconds; kombu's default is an hour), and
with it the sweep that redelivers them (every 100 s by default: unacked_restore_interval times its throttle).
"""

from __future__ import annotations

import os

import redis
from celery import Celery

URL = os.environ.get("CELERY_URL", "redis://127.0.0.1:6379/0")

app = Celery("respq_frameworks", broker=URL, backend=URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_acks_late=os.environ.get("CELERY_ACKS_LATE") == "1",
    task_reject_on_worker_lost=os.environ.get("CELERY_ACKS_LATE") == "1",
)
if "CELERY_VISIBILITY_TIMEOUT" in os.environ:
    app.conf.broker_transport_options = {
        "visibility_timeout": float(os.environ["CELERY_VISIBILITY_TIMEOUT"]),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }


def _store() -> redis.Redis:
    """The application's own bookkeeping (attempt counters), on the same server."""
    return redis.Redis.from_url(URL)


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.task
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(bind=True, max_retries=5)
def flaky(self, name: str, failures: int) -> int:  # type: ignore[no-untyped-def]
    """Fails `failures` times, retrying each time after a countdown; returns the attempt that succeeded."""
    attempt = int(_store().incr(f"attempts:{name}"))
    if attempt <= failures:
        raise self.retry(exc=RuntimeError(f"{name} attempt {attempt}"), countdown=0.5)
    return attempt


@app.task(bind=True, max_retries=1)
def hopeless(self, name: str) -> None:  # type: ignore[no-untyped-def]
    raise self.retry(exc=KeyError(name), countdown=0.1)


@app.task
def record(job: str) -> str:
    """The crash test's job: its completion is its result in the backend."""
    return job
