"""Values as large as the storage's blocks and buffers through a respq server and redis-py, byte for byte.

Every list command that reads a value (pops from either end, by count, blocking and not, LMPOP/BLMPOP, LMOVE and
its blocking and older forms, LINDEX, LRANGE built whole and streamed, and the values LPOS, LREM and LINSERT compare),
MULTI, and stream entries (XADD, XRANGE, XREVRANGE, XREAD, XREADGROUP), for every boundary size of
tests/bigvalues.py; then a kill -9 and a clean restart with values of every size in the journal and in segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until
from respq.storage.framing import SCAN_BLOCK
from respq.storage.journal import READ_BLOCK
from respq.storage.segments import SEGMENT_SIZE
from respq.types.lists.commands import STREAMED_RANGE
from tests.bigvalues import BOUNDARY_SIZES, check_value, check_values, make_value
from tests.server.helpers import blocked_clients, in_thread, make_client

OPTIONS = ("--appendfsync", "always", "--segment-size", str(SEGMENT_SIZE))
# Through a socket every size costs: CI runs one under and a few over a read block; --long runs every boundary size.
CI_SIZES = [READ_BLOCK - 1, READ_BLOCK + 1, 2 * READ_BLOCK, SCAN_BLOCK + 1, SEGMENT_SIZE + 1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", BOUNDARY_SIZES if metafunc.config.getoption("--long") else CI_SIZES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_respq(tmp_path_factory.mktemp("big") / "data", *OPTIONS)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[redis.Redis]:
    connection = make_client(server)
    connection.flushall()
    try:
        yield connection
    finally:
        connection.close()


class Values:
    def __init__(self, size: int, salt: int) -> None:
        self.size = size
        self.tag = salt << 20

    def big(self) -> bytes:
        self.tag += 1
        return make_value(self.tag, self.size)

    def small(self) -> bytes:
        self.tag += 1
        return make_value(self.tag, 5)


def test_every_list_read_returns_whole_values(server: ServerProcess, client: redis.Redis, size: int) -> None:
    v = Values(size, 1)
    right = [v.small(), v.big(), v.small(), v.big(), v.big()]
    left = [v.small(), v.big(), v.small(), v.big(), v.big()]
    assert client.rpush("r", *right) == 5 and client.lpush("l", *left) == 5
    # In the journal: read from the end they were pushed to (against the push direction) and from the other.
    check_value(client.lindex("l", 0), left[-1], "LINDEX l 0")
    check_values(client.lrange("l", 0, -1), left[::-1], "LRANGE l")
    check_values(client.lrange("r", -2, -1), right[-2:], "LRANGE r -2 -1")
    assert client.lpos("r", right[-1], rank=-1) == 4 and client.lpos("l", left[-1]) == 0
    check_value(client.rpop("r"), right.pop(), "RPOP")
    check_value(client.lpop("l"), left.pop(), "LPOP")
    check_values(client.rpop("r", 2), [right.pop(), right.pop()], "RPOP r 2")
    check_values(client.lpop("l", 2), [left.pop(), left.pop()], "LPOP l 2")
    more_right, more_left = [v.big() for _ in range(4)], [v.big() for _ in range(4)]
    client.rpush("r", *more_right)
    client.lpush("l", *more_left)
    right += more_right
    left += more_left
    _, values = client.lmpop(1, "r", direction="RIGHT", count=1)  # type: ignore[misc]
    check_values(values, [right.pop()], "LMPOP RIGHT")
    _, values = client.execute_command("BLMPOP", 0, 1, "l", "LEFT", "COUNT", 1)
    check_values(values, [left.pop()], "BLMPOP LEFT")
    check_value(client.brpop(["r"], 1)[1], right.pop(), "BRPOP")  # type: ignore[index]
    check_value(client.blpop(["l"], 1)[1], left.pop(), "BLPOP")  # type: ignore[index]
    moved = [right.pop(), left.pop()]
    check_value(client.lmove("r", "m", "RIGHT", "LEFT"), moved[0], "LMOVE r m RIGHT LEFT")
    check_value(client.blmove("l", "m", 1, "LEFT", "RIGHT"), moved[1], "BLMOVE l m LEFT RIGHT")
    right.append(v.big())
    client.rpush("r", right[-1])
    moved.insert(0, right.pop())
    check_value(client.rpoplpush("r", "m"), moved[0], "RPOPLPUSH")
    moved.insert(0, v.big())
    client.lpush("m", moved[0])
    check_value(client.brpoplpush("m", "m", 1), moved[-1], "BRPOPLPUSH m m")
    moved.insert(0, moved.pop())
    check_values(client.lrange("m", 0, -1), moved, "LRANGE m")
    # Values compared, not returned: LREM, LINSERT's pivot, LPOS from the tail.
    pivot = moved[-1]
    assert client.linsert("m", "BEFORE", pivot, b"x") == len(moved) + 1
    moved.insert(moved.index(pivot), b"x")  # before its first occurrence (values of size 0 are all alike)
    target = moved[0]
    assert client.lrem("m", -1, target) == 1
    del moved[len(moved) - 1 - moved[::-1].index(target)]  # the occurrence nearest the tail
    assert client.lpos("m", moved[-1], rank=-1) == len(moved) - 1
    new = v.big()
    assert client.lset("m", -1, new)
    moved[-1] = new
    check_value(client.lindex("m", -1), new, "LINDEX after LSET")
    check_values(client.lrange("m", 0, -1), moved, "LRANGE m after LSET")
    check_values(client.lrange("r", 0, -1), right, "LRANGE r")
    check_values(client.lrange("l", 0, -1), left[::-1], "LRANGE l")


def test_pushes_and_pops_in_multi_come_back_whole(client: redis.Redis, size: int) -> None:
    """EXEC journals its commands one by one, as they would be outside it: pops read values from the journal's file
    (pushed before) and from its buffer (pushed in the same transaction)."""
    v = Values(size, 2)
    queued_right, queued_left = [v.big(), v.small(), v.big()], [v.big(), v.big()]
    client.rpush("r", *queued_right)
    client.lpush("l", *queued_left)
    right, left = [v.big(), v.small(), v.big()], [v.big(), v.big()]
    pipe = client.pipeline(transaction=True)
    pipe.rpop("r")
    pipe.lpop("l", 2)
    pipe.rpush("t", *right)
    pipe.lpush("t", *left)
    pipe.lpop("t")
    pipe.rpop("t", 2)
    popped_r, popped_l, _, length, popped_head, popped_tail = pipe.execute()
    assert length == 5
    check_value(popped_r, queued_right[-1], "RPOP r in MULTI")
    check_values(popped_l, queued_left[::-1], "LPOP l 2 in MULTI")
    check_value(popped_head, left[-1], "LPOP t in MULTI (pushed in it)")
    check_values(popped_tail, right[:0:-1], "RPOP t 2 in MULTI (pushed in it)")
    check_values(client.lrange("t", 0, -1), [left[0], right[0]], "LRANGE t after MULTI")
    check_values(client.lrange("r", 0, -1), queued_right[:-1], "LRANGE r after MULTI")


def test_stream_entries_come_back_whole(client: redis.Redis, size: int) -> None:
    """Entries live in their stream's segment file (never the journal), read forward and backward."""
    v = Values(size, 3)
    entries = [[v.big(), v.small()], [v.small()], [v.big(), v.big()]]
    ids = [client.xadd("s", {b"f%d" % i: value for i, value in enumerate(fields)}) for fields in entries]
    client.xgroup_create("s", "g", id="0")
    got = client.xrange("s")
    assert [i for i, _ in got] == ids
    for (stream_id, fields), values in zip(got, entries, strict=True):
        check_values(list(fields.values()), values, f"XRANGE {stream_id!r}")
    for (stream_id, fields), values in zip(client.xrevrange("s"), entries[::-1], strict=True):
        check_values(list(fields.values()), values, f"XREVRANGE {stream_id!r}")
    ((_, read),) = client.xread({"s": ids[0]}, count=1)
    check_values(list(read[0][1].values()), entries[1], "XREAD after the first entry")
    ((_, delivered),) = client.xreadgroup("g", "c", {"s": ">"}, count=3)
    for (_, fields), values in zip(delivered, entries, strict=True):
        check_values(list(fields.values()), values, "XREADGROUP >")
    ((_, again),) = client.xreadgroup("g", "c", {"s": "0"})
    assert [i for i, _ in again] == ids
    for (_, fields), values in zip(again, entries, strict=True):
        check_values(list(fields.values()), values, "XREADGROUP 0 (pending, read again)")


def test_blocking_pops_return_whole_values(server: ServerProcess, client: redis.Redis) -> None:
    """Blocking pops of values already in the journal are answered at once; those that wait are woken by a push."""
    values = [make_value(4 << 20 | n, size) for n, size in enumerate((SEGMENT_SIZE + 1, 2 * SEGMENT_SIZE, 70_000))]
    client.lpush("ready", values[2], values[0])
    client.rpush("ready2", values[1], values[2])
    check_value(client.blpop(["ready"], 1)[1], values[0], "BLPOP of an LPUSHed value")  # type: ignore[index]
    check_value(client.brpop(["ready2"], 1)[1], values[2], "BRPOP of an RPUSHed value")  # type: ignore[index]
    check_value(client.blmove("ready", "ready2", 1, "LEFT", "RIGHT"), values[2], "BLMOVE ready ready2 LEFT RIGHT")
    _, popped = client.execute_command("BLMPOP", 1, 1, "ready2", "RIGHT", "COUNT", 2)
    check_values(popped, [values[2], values[1]], "BLMPOP RIGHT COUNT 2")
    clients = [make_client(server) for _ in range(3)]
    waiters = [
        in_thread(clients[0].blpop, ["b1"], 10),
        in_thread(clients[1].blmove, "b2", "b3", 10, "RIGHT", "LEFT"),
        in_thread(clients[2].execute_command, "BLMPOP", 10, 1, "b4", "RIGHT", "COUNT", 2),
    ]
    wait_until(lambda: blocked_clients(client) == 3)
    client.lpush("b1", values[0])
    client.rpush("b2", values[1])
    client.rpush("b4", values[2], values[0])
    for thread, _ in waiters:
        thread.join(20)
    for waiter in clients:
        waiter.close()
    results = [result.get("value", result.get("error")) for _, result in waiters]
    check_value(results[0][1], values[0], "BLPOP served by LPUSH")
    check_value(results[1], values[1], "BLMOVE served by RPUSH")
    check_values(results[2][1], [values[0], values[2]], "BLMPOP RIGHT COUNT 2 served by RPUSH")
    check_value(client.lpop("b3"), values[1], "LPOP of the BLMOVE destination")


def test_a_streamed_lrange_returns_whole_values(client: redis.Redis) -> None:
    """LRANGE replies of more than STREAMED_RANGE values are sent while read, from a snapshot; then a consumer pops
    from the ends the values were pushed to."""
    big = [make_value(5 << 20 | n, size) for n, size in enumerate((70_000, SEGMENT_SIZE + 1, 140_000, 1 << 20))]
    small = [b"%d" % i for i in range(STREAMED_RANGE)]
    client.rpush("q", *small[:500], big[0], *small[500:], big[1])
    client.lpush("q", big[2], big[3])
    expected = [big[3], big[2], *small[:500], big[0], *small[500:], big[1]]
    check_values(client.lrange("q", 0, -1), expected, "LRANGE streamed from the journal")
    check_value(client.lpop("q"), big[3], "LPOP after the streamed LRANGE")
    check_value(client.rpop("q"), big[1], "RPOP after the streamed LRANGE")
    check_values(client.lrange("q", 0, -1), expected[1:-1], "LRANGE streamed after pops from both ends")


def test_values_of_every_size_survive_kill9_and_a_clean_restart(tmp_path: Path, long_mode: bool) -> None:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, *OPTIONS)
    sizes = BOUNDARY_SIZES if long_mode else [0, 1, *CI_SIZES]
    right = [make_value(6 << 20 | n, size) for n, size in enumerate(sizes)]
    left = [make_value(7 << 20 | n, size) for n, size in enumerate(sizes)]
    try:
        client = make_client(server)
        for value in right:
            client.rpush("r", value)
        client.lpush("l", *left)
        entry = [right[-1], left[-1]]
        client.xadd("s", {b"v": entry[0], b"w": entry[1]})
        server.stop()  # SIGKILL: every value lives in the journal only
        server = start_respq(data_dir, *OPTIONS)
        client = make_client(server)
        check_values(client.lrange("r", 0, -1), right, "LRANGE r after kill -9")
        check_value(client.rpop("r"), right.pop(), "RPOP after kill -9")
        check_value(client.lpop("l"), left.pop(), "LPOP after kill -9")
        ((_, fields),) = client.xrange("s")
        check_values(list(fields.values()), entry, "XRANGE after kill -9")
        server.terminate()  # SIGTERM: a clean shutdown checkpoints, so the values are read from segments
        server = start_respq(data_dir, *OPTIONS, "--scrub-bandwidth", "1000")
        client = make_client(server)
        # The scrub walks records larger than its chunks and its reads: none may look corrupt to it.
        wait_until(lambda: client.info("persistence")["respq_scrub_status"] == "done", timeout=60)
        scrub = client.info("persistence")
        assert scrub["respq_scrub_errors"] == 0 and scrub["respq_scrub_bytes"] >= sum(map(len, right + left))
        check_values(client.lrange("l", 0, -1), left[::-1], "LRANGE l after a clean restart")
        check_values(client.rpop("r", len(right)), right[::-1], "RPOP r COUNT after a clean restart")
        check_values(client.lpop("l", len(left)), left[::-1], "LPOP l COUNT after a clean restart")
        ((_, fields),) = client.xrevrange("s")
        check_values(list(fields.values()), entry, "XREVRANGE after a clean restart")
    finally:
        server.stop()


@pytest.mark.timeout(900)
def test_a_100_mb_value_through_the_server(tmp_path: Path, long_mode: bool) -> None:
    if not long_mode:
        pytest.skip("runs with --long")
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, *OPTIONS)
    value, other = make_value(8 << 20, 100_000_000), make_value(8 << 20 | 1, 100_000_000)
    try:
        client = redis.Redis(port=server.port, socket_timeout=300)
        client.rpush("r", b"a", value)
        check_value(client.rpop("r"), value, "RPOP of 100 MB")
        client.lpush("l", other, b"b")
        client.lpush("l", value)
        check_value(client.lindex("l", 0), value, "LINDEX of 100 MB")
        server.stop()  # SIGKILL: replayed from the journal
        server = start_respq(data_dir, *OPTIONS)
        client = redis.Redis(port=server.port, socket_timeout=300)
        check_value(client.lpop("l"), value, "LPOP of 100 MB after kill -9")
        server.terminate()
        server = start_respq(data_dir, *OPTIONS)
        client = redis.Redis(port=server.port, socket_timeout=300)
        check_values(client.lrange("l", 0, -1), [b"b", other], "LRANGE after a clean restart")
    finally:
        server.stop()
