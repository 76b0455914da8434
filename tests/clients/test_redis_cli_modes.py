"""Debian's redis-cli (7.0) operator modes against the server: --stat, --latency, --latency-history, --bigkeys,
--memkeys, --scan. Each must run to its normal output, not stop at an error reply."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis

from conftest import require_tool

TIMEOUT = 30.0


@pytest.fixture
def filled(server: int) -> Iterator[int]:
    client = redis.Redis(port=server, protocol=2, socket_timeout=10)
    try:
        client.rpush("jobs", "a", "b", "c")
        client.set("greeting", "hello")
        client.hset("job:1", mapping={"state": "new", "tries": "0"})
        client.xadd("events", {"kind": "created"})
        yield server
    finally:
        client.close()


def run_cli(port: int, *args: str) -> str:
    completed = subprocess.run(
        [require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, timeout=TIMEOUT, check=False,
    )
    assert completed.returncode == 0, completed
    return completed.stdout.decode()


def first_lines(port: int, count: int, *args: str) -> list[str]:
    """The first ``count`` lines of a mode that runs until interrupted (unbuffered through stdbuf)."""
    process = subprocess.Popen(
        [require_tool("stdbuf"), "-o0", require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        lines = [process.stdout.readline().decode() for _ in range(count)]
    finally:
        process.kill()
        process.wait(TIMEOUT)
    return lines


def test_bigkeys_finds_the_biggest_key_of_each_type(filled: int) -> None:
    output = run_cli(filled, "--bigkeys")
    assert "Biggest   list found '\"jobs\"' has 3 items" in output
    assert "Biggest   hash found '\"job:1\"' has 2 fields" in output
    assert "Biggest string found '\"greeting\"' has 5 bytes" in output
    assert "Biggest stream found '\"events\"' has 1 entries" in output


def test_memkeys_reports_bytes_per_key(filled: int) -> None:
    output = run_cli(filled, "--memkeys")
    for kind, key in (("list", "jobs"), ("hash", "job:1"), ("string", "greeting"), ("stream", "events")):
        assert f"found '\"{key}\"' has " in output and f"1 {kind}s with " in output
    assert "Sampled 4 keys in the keyspace!" in output


def test_scan_lists_every_key_and_filters_by_pattern(filled: int) -> None:
    assert sorted(run_cli(filled, "--scan").split()) == ["events", "greeting", "job:1", "jobs"]
    assert sorted(run_cli(filled, "--scan", "--pattern", "job*").split()) == ["job:1", "jobs"]


def test_stat_prints_keys_clients_and_requests(filled: int) -> None:
    header, columns, first, second = first_lines(filled, 4, "--stat", "-i", "0.1")
    assert "data" in header and "load" in header
    assert columns.split()[:5] == ["keys", "mem", "clients", "blocked", "requests"]
    for row in (first, second):
        fields = row.split()
        assert fields[0] == "4" and fields[2] == "2" and fields[3] == "0", row  # 4 keys; itself and the filler


def test_latency_modes_measure_round_trips(filled: int) -> None:
    # Without a terminal --latency prints one summary line (min max avg samples) after its interval.
    [summary] = run_cli(filled, "--latency", "-i", "0.2").split("\n")[:1]
    minimum, maximum, average, samples = summary.split()
    assert int(samples) > 0 and int(minimum) <= int(maximum) and float(average) >= 0
    for line in first_lines(filled, 2, "--latency-history", "-i", "0.2"):
        assert len(line.split()) == 4 and int(line.split()[3]) > 0, line
