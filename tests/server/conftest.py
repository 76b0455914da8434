from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from conftest import ServerProcess


@pytest.fixture
def r(respq_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=respq_server.port, protocol=2, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()
