"""redis-py's stream API gives the same results against respq as against redis-server, in RESP2 and RESP3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from conftest import ServerProcess, start_redis

# Values that depend on when each server ran the command: compared as "present and plausible", not equal.
TIME_FIELDS = {"idle", "seen-time", "time_since_delivered", "seen_time", "last_delivered_time"}


@pytest.fixture(scope="module")
def oracle() -> Iterator[ServerProcess]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = key.decode() if isinstance(key, bytes) else key
            if name in TIME_FIELDS and isinstance(item, int):
                assert 0 <= item < 10**13
                out[key] = "<time>"
            else:
                out[key] = _scrub(item)
        return out
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        return "<unix-ms>"  # an absolute delivery time (XINFO STREAM FULL)
    return value


def _scenario(client: redis.Redis) -> list[Any]:
    results: list[Any] = []
    record: Callable[[Any], None] = results.append
    record(client.xadd("s", {"a": "1"}, id="1-0"))
    record(client.xadd("s", {"b": "2", "c": "3"}, id="2-0"))
    record(client.xadd("s", {"d": "4"}, id="3-0"))
    record(client.xadd("s", {"e": "5"}, id="4-0", maxlen=10, approximate=False))
    record(client.xadd("nomk", {"x": "1"}, nomkstream=True))
    record(client.xlen("s"))
    record(client.xrange("s", "-", "+", count=2))
    record(client.xrevrange("s", "+", "-"))
    record(client.xgroup_create("s", "g", id="0"))
    record(client.xgroup_create("s", "other", id="$"))
    with pytest.raises(redis.ResponseError) as busy:
        client.xgroup_create("s", "g", id="0")
    record(str(busy.value))
    record(client.xreadgroup("g", "alice", {"s": ">"}, count=2))
    record(client.xreadgroup("g", "bob", {"s": ">"}, count=1, noack=False))
    record(client.xreadgroup("g", "alice", {"s": "0"}))
    record(client.xread({"s": "2-0"}, count=5))
    record(client.xread({"s": "$"}, block=1))
    record(client.xack("s", "g", "1-0", "9-0"))
    record(client.xpending("s", "g"))
    record(client.xpending_range("s", "g", "-", "+", 10))
    record(client.xpending_range("s", "g", "-", "+", 10, consumername="bob"))
    record(client.xclaim("s", "g", "carol", 0, ["2-0"]))
    record(client.xclaim("s", "g", "carol", 0, ["3-0"], justid=True))
    record(client.xdel("s", "2-0"))
    record(client.xautoclaim("s", "g", "dave", 0, "0-0", count=10))
    record(client.xautoclaim("s", "g", "erin", 0, "0-0", justid=True))
    record(client.xinfo_groups("s"))
    record(client.xinfo_consumers("s", "g"))
    record(client.xinfo_stream("s"))
    record(client.xinfo_stream("s", full=True))
    record(client.xgroup_setid("s", "g", "$"))
    record(client.xgroup_createconsumer("s", "g", "frank"))
    record(client.xgroup_delconsumer("s", "g", "dave"))
    record(client.xgroup_destroy("s", "other"))
    record(client.xtrim("s", maxlen=1))
    record(client.xtrim("s", minid="5-0"))
    record(client.xinfo_stream("s"))
    with pytest.raises(redis.ResponseError) as nogroup:
        client.xreadgroup("missing", "c", {"s": ">"})
    record(str(nogroup.value))
    return results


@pytest.mark.parametrize("protocol", [2, 3])
def test_stream_api_matches_redis(oracle: ServerProcess, respq_server: ServerProcess, protocol: int) -> None:
    outcomes = []
    for server in (oracle, respq_server):
        client = redis.Redis(port=server.port, protocol=protocol, socket_timeout=10)
        try:
            client.flushall()
            outcomes.append(_scrub(_scenario(client)))
        finally:
            client.close()
    expected, actual = outcomes
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        assert got == want, f"call {index} differs"


@pytest.mark.parametrize("protocol", [2, 3])
def test_auto_ids_and_blocking_read(respq_server: ServerProcess, protocol: int) -> None:
    client = redis.Redis(port=respq_server.port, protocol=protocol, socket_timeout=10)
    try:
        first = client.xadd("s", {"f": "v"})
        second = client.xadd("s", {"f": "w"})
        assert first < second or len(first) < len(second)
        ms, _, seq = second.partition(b"-")
        assert ms.isdigit() and seq.isdigit()
        reply = client.xread({"s": first}, block=0)
        entries = reply[b"s"][0] if protocol == 3 else reply[0][1]
        assert entries == [(second, {b"f": b"w"})]
    finally:
        client.close()
