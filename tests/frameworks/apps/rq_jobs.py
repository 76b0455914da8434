"""RQ job functions as a user writes them; the worker imports them by name."""

from __future__ import annotations

import os
import time

from rq import get_current_job


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def flaky(name: str, failures: int) -> int:
    """Fails `failures` times; the application's attempt counter lives beside RQ's keys."""
    attempt = int(get_current_job().connection.incr(f"attempts:{name}"))
    if attempt <= failures:
        raise RuntimeError(f"{name} attempt {attempt}")
    return attempt


def stuck(seconds: float) -> None:
    time.sleep(seconds)  # outlives its job_timeout: the work horse is killed


def pid() -> int:
    return os.getpid()


def record(job: str) -> str:
    """The crash test's job: its completion is its result."""
    return job
