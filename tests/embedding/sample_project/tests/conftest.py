"""Where this suite had ``fakeredis.FakeRedis()``, it now has a real respq (the respq pytest plugin)."""

from __future__ import annotations

import pytest
import redis


@pytest.fixture
def client(respq_client: redis.Redis) -> redis.Redis:
    return respq_client
