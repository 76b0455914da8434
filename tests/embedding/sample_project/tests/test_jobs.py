from __future__ import annotations

import redis
from sample_app import jobs


def test_jobs_run_in_order_and_are_reported(client: redis.Redis) -> None:
    assert jobs.enqueue(client, "add", a=1, b=2) == 1
    assert jobs.enqueue(client, "add", a=10, b=20) == 2
    assert jobs.work_one(client) == "3"
    assert jobs.work_one(client) == "30"
    assert jobs.work_one(client, timeout=0.01) is None
    assert jobs.report(client, "r1") == [("add", "3"), ("add", "30")]
    assert jobs.report(client, "r1") == []


def test_each_test_starts_empty(client: redis.Redis) -> None:
    """The previous test left a stream and a group behind: the fixture flushed them."""
    assert client.dbsize() == 0
    jobs.enqueue(client, "add", a=1)
    assert client.llen(jobs.QUEUE) == 1


def test_url_fixture(respq_url: str) -> None:
    with redis.Redis.from_url(respq_url) as other:
        assert other.ping()
        assert other.dbsize() == 0


def test_the_server_is_respq(respq_server) -> None:  # type: ignore[no-untyped-def]
    with redis.Redis(host=respq_server.host, port=respq_server.port) as other:
        assert "respq_version" in other.info("server")
    assert respq_server.startup_seconds > 0
