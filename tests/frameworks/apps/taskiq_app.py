"""A taskiq application, as a user writes one: the broker kind and the server come from the environment.

TASKIQ_BROKER: list (ListQueueBroker), pubsub (PubSubBroker) or stream (RedisStreamBroker);
TASKIQ_URL: the server; TASKIQ_RESULT_PX: result expiry in milliseconds; TASKIQ_CLAIM_IDLE_MS: the stream broker's
idle time before another consumer claims a message; TASKIQ_DOOMED=1: this worker hangs in `hang_once` (it is then
killed with the message unacknowledged).
"""

from __future__ import annotations

import asyncio
import os

from taskiq import TaskiqDepends
from taskiq.depends.progress_tracker import ProgressTracker, TaskState
from taskiq_redis import ListQueueBroker, PubSubBroker, RedisAsyncResultBackend, RedisStreamBroker

URL = os.environ.get("TASKIQ_URL", "redis://127.0.0.1:6379/0")
KIND = os.environ.get("TASKIQ_BROKER", "list")

_brokers = {
    "list": lambda: ListQueueBroker(URL),
    "pubsub": lambda: PubSubBroker(URL),
    "stream": lambda: RedisStreamBroker(
        URL,
        idle_timeout=int(os.environ.get("TASKIQ_CLAIM_IDLE_MS", "600000")),
        xread_block=200,
        unacknowledged_lock_timeout=5,
        consumer_id="0",
    ),
}
broker = _brokers[KIND]().with_result_backend(
    RedisAsyncResultBackend(URL, result_px_time=int(os.environ.get("TASKIQ_RESULT_PX", "60000")))
)


@broker.task
async def add(a: int, b: int) -> int:
    return a + b


@broker.task
async def whoami(n: int) -> list[int]:
    """Which worker process ran task n: the stream tests check that the work was shared and done once."""
    return [n, os.getpid()]


@broker.task
async def with_progress(steps: int, progress: ProgressTracker[dict[str, int]] = TaskiqDepends()) -> str:  # noqa: B008
    for step in range(1, steps + 1):
        await progress.set_progress(TaskState.STARTED, {"step": step, "of": steps})
    return "done"


@broker.task
async def fails() -> None:
    raise ValueError("taskiq task failed on purpose")


@broker.task
async def hang_once(n: int) -> int:
    if os.environ.get("TASKIQ_DOOMED") == "1":
        await asyncio.Event().wait()  # until kill -9: the message stays pending, unacknowledged
    return n
