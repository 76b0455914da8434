"""Helpers for tests that talk to a respq subprocess with redis-py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis

from conftest import ServerProcess


def make_client(server: ServerProcess, protocol: int = 2) -> redis.Redis:
    return redis.Redis(port=server.port, protocol=protocol, socket_timeout=10)


def blocked_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def in_thread(function: Callable[..., Any], *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Runs a blocking client call in a thread; the result dict gets "value" or "error"."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = function(*args)
        except Exception as error:  # surfaced by the test's assertions
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result
