from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess
from tests.server.test_http import start_with_http


@pytest.fixture
def r(respq_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=respq_server.port, protocol=2, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    """respq with its HTTP listener on (test_http, test_http_api, test_dashboard): the server and its HTTP port."""
    server, http_port = start_with_http(tmp_path)
    try:
        yield server, http_port
    finally:
        server.stop()
