"""SRANDMEMBER, ZRANDMEMBER and HRANDFIELD with a huge negative count: the reply is streamed, so the server's memory
stays flat and other clients are served while a reader takes it (or stalls, or goes away)."""

from __future__ import annotations

import time

import pytest

from conftest import ServerProcess, wait_until
from tests.server.helpers import make_client
from tests.server.test_large_replies import RawClient, rss_bytes

COUNT = 1_000_000_000  # picks asked for: built whole, gigabytes
MEMBERS = 1000
READ = 4 << 20  # bytes of the reply the reader takes before and after the other client's turn
MAX_GROWTH = 48 << 20  # what the server may grow by while streaming


def commands() -> list[tuple[list[bytes], int]]:
    """Each command and how many array elements it answers (two per pick WITHSCORES/WITHVALUES in RESP2)."""
    n = b"-%d" % COUNT
    return [
        ([b"SRANDMEMBER", b"s", n], COUNT),
        ([b"ZRANDMEMBER", b"z", n], COUNT),
        ([b"ZRANDMEMBER", b"z", n, b"WITHSCORES"], 2 * COUNT),
        ([b"HRANDFIELD", b"h", n], COUNT),
        ([b"HRANDFIELD", b"h", n, b"WITHVALUES"], 2 * COUNT),
    ]


@pytest.mark.timeout(120)
def test_huge_negative_counts_are_streamed_with_flat_memory(respq_server: ServerProcess) -> None:
    other = make_client(respq_server)
    members = [b"member-%04d" % i for i in range(MEMBERS)]
    other.sadd("s", *members)
    other.zadd("z", {member: i / 4 for i, member in enumerate(members)})
    other.hset("h", mapping={member: b"value-" + member for member in members})
    rss_before = rss_bytes(respq_server)
    for command, length in commands():
        name = b" ".join(command[:1] + command[3:]).decode()
        reader = RawClient(respq_server.port)
        reader.send(command)
        assert reader.line() == b"*%d" % length, name
        first = reader.exactly(READ)
        assert first.startswith(b"$") and b"member-" in first, name
        # The reader stalls mid-reply: another client is served meanwhile, writes included.
        started = time.monotonic()
        assert other.ping() and other.sadd("s", b"late") == 1 and other.srem("s", b"late") == 1
        assert time.monotonic() - started < 5, f"{name}: another client waited while the reply was made"
        growth = rss_bytes(respq_server) - rss_before
        assert growth < MAX_GROWTH, f"{name}: RSS grew by {growth >> 20} MiB"
        assert b"member-" in reader.exactly(READ)  # the reply goes on where it stopped
        reader.close()  # the rest is never read: the server drops it
        wait_until(lambda: int(other.info("clients")["connected_clients"]) == 1, timeout=10)
    growth = rss_bytes(respq_server) - rss_before
    print(f"RSS growth {growth >> 20} MiB over {len(commands())} replies of {COUNT} picks each")
    assert growth < MAX_GROWTH
    assert other.scard("s") == MEMBERS


def test_a_reply_streamed_from_a_snapshot_holds_only_what_the_key_held(respq_server: ServerProcess) -> None:
    """The picks are of the members when the command ran, though the key changes before the last one goes out (the
    reply, 20 MB, is far more than the sockets hold)."""
    other = make_client(respq_server)
    a, b, c = (letter * 1000 for letter in (b"a", b"b", b"c"))
    other.sadd("s", a, b)
    reader = RawClient(respq_server.port)
    reader.send([b"SRANDMEMBER", b"s", b"-20000"], [b"ECHO", b"after"])
    assert reader.line() == b"*20000"
    picks = reader.bulks(20_000)
    assert {next(picks) for _ in range(100)} <= {a, b}
    other.sadd("s", c)
    other.srem("s", a)
    assert set(picks) == {a, b}
    assert reader.line() == b"$5" and reader.line() == b"after"
    reader.close()
