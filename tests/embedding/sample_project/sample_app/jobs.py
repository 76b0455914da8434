"""A job queue on a Redis list, with a stream of finished jobs read by a consumer group."""

from __future__ import annotations

import json
from typing import Any

import redis

QUEUE = "jobs"
DONE = "jobs:done"
GROUP = "reporters"


def enqueue(client: redis.Redis, name: str, **args: Any) -> int:
    return client.rpush(QUEUE, json.dumps({"name": name, "args": args}))


def work_one(client: redis.Redis, timeout: float = 1.0) -> str | None:
    """Takes the next job (waiting up to ``timeout`` seconds), runs it, and reports it on the done stream."""
    popped = client.blpop([QUEUE], timeout=timeout)
    if popped is None:
        return None
    job = json.loads(popped[1])
    result = str(sum(job["args"].values()))
    client.xadd(DONE, {"name": job["name"], "result": result})
    return result


def report(client: redis.Redis, consumer: str) -> list[tuple[str, str]]:
    """Finished jobs not yet reported, acknowledged once read."""
    try:
        client.xgroup_create(DONE, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if not str(error).startswith("BUSYGROUP"):
            raise
    reply = client.xreadgroup(GROUP, consumer, {DONE: ">"}, count=100)
    entries = reply[0][1] if reply else []
    if entries:
        client.xack(DONE, GROUP, *[entry_id for entry_id, _ in entries])
    return [(fields[b"name"].decode(), fields[b"result"].decode()) for _, fields in entries]
