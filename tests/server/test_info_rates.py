"""Instantaneous rates in INFO (respq_syncs_per_sec, instantaneous_ops_per_sec), sampled as Redis samples them."""

from __future__ import annotations

import threading

import redis

from conftest import ServerProcess, wait_until
from respq.stats import RATE_SAMPLES, InstantaneousRate


def test_a_rate_is_the_mean_growth_per_second_over_the_last_samples() -> None:
    rate = InstantaneousRate()
    rate.sample(1000, now=10.0)  # the first sample only sets the baseline
    assert rate.per_second() == 0
    for step in range(1, RATE_SAMPLES + 1):
        rate.sample(1000 + 50 * step, now=10.0 + 0.1 * step)  # +50 per 100 ms
    assert rate.per_second() == 500
    for step in range(RATE_SAMPLES + 1, 2 * RATE_SAMPLES + 1):
        rate.sample(1000 + 50 * RATE_SAMPLES, now=10.0 + 0.1 * step)  # idle: every sample in the window is 0
    assert rate.per_second() == 0
    rate.sample(10, now=20.0)
    rate.reset()
    rate.sample(0, now=20.1)  # after a reset the counter may restart lower: a new baseline, not a negative rate
    assert rate.per_second() == 0


def _persistence(client: redis.Redis) -> dict[str, int]:
    return client.info("persistence")  # type: ignore[return-value]


def test_syncs_per_second_rises_under_writes_with_always_and_falls_to_0_when_idle(
    respq_server: ServerProcess,
) -> None:
    client = redis.Redis(port=respq_server.port, socket_timeout=10)
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    assert _persistence(client)["respq_syncs_per_sec"] == 0
    stop = threading.Event()

    def write() -> None:
        with redis.Redis(port=respq_server.port, socket_timeout=10) as writer:
            while not stop.is_set():
                writer.rpush("q", "job")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_until(lambda: _persistence(client)["respq_syncs_per_sec"] > 0)
        wait_until(lambda: client.info("stats")["instantaneous_ops_per_sec"] > 0)
    finally:
        stop.set()
        writer.join(10)
    wait_until(lambda: _persistence(client)["respq_syncs_per_sec"] == 0)
    client.close()
