"""An arq application as a user writes one: `arq tests.frameworks.apps.arq_app.WorkerSettings`, server from ARQ_URL."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq import Retry
from arq.connections import RedisSettings

URL = os.environ.get("ARQ_URL", "redis://127.0.0.1:6379/0")


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


async def flaky(ctx: dict[str, Any], failures: int) -> int:
    """arq counts the tries itself: fail until try `failures + 1`, retrying after a short defer."""
    if ctx["job_try"] <= failures:
        raise Retry(defer=0.2)
    return int(ctx["job_try"])


async def forever(ctx: dict[str, Any]) -> None:
    await asyncio.Event().wait()  # until aborted


class WorkerSettings:
    functions = [add, fail, flaky, forever]
    redis_settings = RedisSettings.from_dsn(URL)
    allow_abort_jobs = True
    poll_delay = 0.05
    max_tries = 5
