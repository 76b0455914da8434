"""Clients that write a whole pipeline before reading a reply: the server keeps reading and queues the replies, as
Redis does, within client-output-buffer-limit, maxmemory-clients and respq's client-output-queue-limit.

Tests that name ``kind`` run against a real redis-server too: what they expect is what Redis does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_redis, start_respq, wait_until
from respq.protocol import encode_command
from tests.server.helpers import make_client

pytestmark = pytest.mark.timeout(300)

KINDS = ["respq", "redis"]
PIPELINE = 1_000_000  # commands a raw client writes before it reads; redis-py too under --long
PIPELINE_REDIS_PY = 200_000  # redis-py builds and parses in Python: the full size only under --long
SMALL_LIST = [b"v" * 100] * 100  # LRANGE of it: a reply of about 10 KB, built whole
LRANGE_SMALL = encode_command([b"LRANGE", b"small", b"0", b"-1"])
OVERCOMING = b"for overcoming of output buffer limits."


@contextmanager
def serving(kind: str, tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    server = start_respq(tmp_path / "data", *args) if kind == "respq" else start_redis(*args)
    try:
        yield server
    finally:
        server.stop()


def stalled_client(port: int, name: bytes, timeout: float = 60) -> socket.socket:
    """A connection named ``name`` that reads nothing more after CLIENT SETNAME, through a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode_command([b"CLIENT", b"SETNAME", name]))
    assert recv_exactly(sock, 5) == b"+OK\r\n"
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def client_entry(admin: redis.Redis, name: str) -> dict[str, str] | None:
    return next((entry for entry in admin.client_list() if entry["name"] == name), None)


def omem(admin: redis.Redis, name: str) -> int:
    entry = client_entry(admin, name)
    return int(entry["omem"]) if entry else -1


def pushes(count: int, key: bytes = b"k") -> bytes:
    return b"".join(encode_command([b"RPUSH", key, b"%d" % i]) for i in range(count))


def push_replies(count: int) -> bytes:
    return b"".join(b":%d\r\n" % (i + 1) for i in range(count))


# ---- every reply, in order ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_raw_client_writes_a_million_commands_before_reading_a_reply(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.settimeout(30)
        sock.sendall(pushes(PIPELINE))  # returns only if the server reads while its replies wait
        assert recv_exactly(sock, len(push_replies(PIPELINE))) == push_replies(PIPELINE)
        sock.close()
        check = make_client(server)
        assert check.llen("k") == PIPELINE
        assert check.lrange("k", 0, -1) == [b"%d" % i for i in range(PIPELINE)]


@pytest.mark.parametrize("kind", KINDS)
def test_redis_py_writes_its_whole_pipeline_before_reading(kind: str, tmp_path: Path, long_mode: bool) -> None:
    count = PIPELINE if long_mode else PIPELINE_REDIS_PY
    with serving(kind, tmp_path) as server:
        client = redis.Redis(port=server.port, socket_timeout=5)  # as reported: a hang became a timeout and a retry
        client.rpush("small", *SMALL_LIST)
        pipe = client.pipeline(transaction=False)
        # First replies far larger than the socket buffers hold, then more requests than they hold.
        for _ in range(1000):
            pipe.lrange("small", 0, -1)
        for i in range(count):
            pipe.rpush("k", i)
        assert pipe.execute() == [SMALL_LIST] * 1000 + list(range(1, count + 1))
        assert client.llen("k") == count
        assert client.lrange("k", 0, 2) == [b"0", b"1", b"2"] and client.lindex("k", -1) == b"%d" % (count - 1)


def test_a_streamed_reply_inside_an_unread_pipeline_is_encoded_only_as_it_is_sent(tmp_path: Path) -> None:
    values = [b"%05d:" % i + b"x" * 994 for i in range(20_000)]  # LRANGE: a 20 MB reply, streamed
    with serving("respq", tmp_path) as server:
        admin = make_client(server)
        for start in range(0, len(values), 1000):
            admin.rpush("big", *values[start : start + 1000])
        sock = stalled_client(server.port, b"stalled")
        sock.sendall(encode_command([b"LRANGE", b"big", b"0", b"-1"]) + pushes(300_000, b"side"))
        wait_until(lambda: admin.llen("side") == 300_000, timeout=60)
        # Queued: the pushes' replies and what the LRANGE's snapshot holds, not its 20 MB.
        assert 0 < omem(admin, "stalled") < 5_000_000
        header = b"*20000\r\n"
        body = b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in values)
        assert recv_exactly(sock, len(header) + len(body)) == header + body
        assert recv_exactly(sock, len(push_replies(300_000))) == push_replies(300_000)
        sock.close()


# ---- client-output-buffer-limit ----------------------------------------------------------------------------------
def _stall_until_closed(admin: redis.Redis, sock: socket.socket, name: str, batches: int = 100) -> None:
    """Writes LRANGE pipelines of about 2 MB of replies each, reading none, until the server closes the client."""
    for _ in range(batches):
        try:
            sock.sendall(LRANGE_SMALL * 200)
        except TimeoutError:
            raise AssertionError("the server stopped reading the client's requests") from None
        except OSError:
            break  # closed: the reset reached us first
        if client_entry(admin, name) is None:
            break
    wait_until(lambda: client_entry(admin, name) is None)


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_does_not_read_is_closed_at_the_hard_limit(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path, "--client-output-buffer-limit", "normal 4mb 0 0") as server:
        admin = make_client(server)
        admin.rpush("small", *SMALL_LIST)
        sock = stalled_client(server.port, b"stalled")
        _stall_until_closed(admin, sock, "stalled")
        assert admin.ping()
        wait_until(lambda: b"scheduled to be closed ASAP " + OVERCOMING in server.output)
        sock.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_soft_limit_closes_a_client_over_it_for_longer_than_its_seconds(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path, "--client-output-buffer-limit", "normal 0 2mb 1") as server:
        admin = make_client(server)
        admin.rpush("small", *SMALL_LIST)
        sock = stalled_client(server.port, b"stalled")
        sock.sendall(LRANGE_SMALL * 2000)  # about 20 MB of replies, then nothing more
        # Over the soft limit and still connected: it is closed only once it stayed over for more than a second,
        # by the server's once-a-second check since nothing more is queued.
        wait_until(lambda: omem(admin, "stalled") >= 2 * 1024 * 1024, timeout=30)
        wait_until(lambda: client_entry(admin, "stalled") is None)
        wait_until(lambda: b"closed " + OVERCOMING in server.output)
        sock.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_subscriber_is_held_to_the_pubsub_class_soft_limit(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path, "--client-output-buffer-limit", "pubsub 0 1mb 1") as server:
        admin = make_client(server)
        sock = stalled_client(server.port, b"subscriber")
        sock.sendall(encode_command([b"SUBSCRIBE", b"flood"]))
        confirmation = b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n"
        assert recv_exactly(sock, len(confirmation)) == confirmation
        payload = b"x" * 16384
        for _ in range(2000):  # up to 32 MB, until the subscriber's queue is over the soft limit
            admin.publish("flood", payload)
            if omem(admin, "subscriber") >= 1024 * 1024:
                break
        assert omem(admin, "subscriber") >= 1024 * 1024
        wait_until(lambda: client_entry(admin, "subscriber") is None)  # nothing more published meanwhile
        assert admin.ping()
        sock.close()


# ---- maxmemory-clients -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_the_largest_client_is_evicted_over_maxmemory_clients(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path, "--maxmemory-clients", "4mb") as server:
        admin = make_client(server)
        admin.rpush("small", *SMALL_LIST)
        sock = stalled_client(server.port, b"hog")
        _stall_until_closed(admin, sock, "hog")
        assert admin.info("stats")["evicted_clients"] == 1
        assert b"Evicting client: id=" in server.output and b"name=hog" in server.output
        sock.close()


@pytest.mark.parametrize("kind", KINDS)
def test_clients_that_set_no_evict_stay_over_maxmemory_clients(kind: str, tmp_path: Path) -> None:
    with serving(kind, tmp_path, "--maxmemory-clients", "4mb") as server:
        admin = make_client(server)
        admin.client_no_evict("on")
        admin.rpush("small", *SMALL_LIST)
        sock = stalled_client(server.port, b"hog")
        sock.sendall(encode_command([b"CLIENT", b"NO-EVICT", b"on"]) + LRANGE_SMALL * 1000)  # about 10 MB of replies
        wait_until(lambda: omem(admin, "hog") >= 4 * 1024 * 1024, timeout=30)
        wait_until(lambda: b"Over client maxmemory after evicting all evictable clients" in server.output)
        assert client_entry(admin, "hog") is not None
        assert admin.info("stats")["evicted_clients"] == 0
        sock.close()


# ---- respq's bound: client-output-queue-limit --------------------------------------------------------------------
def test_reading_pauses_while_the_queue_is_over_the_output_queue_limit(tmp_path: Path) -> None:
    limit = 1024 * 1024
    with serving("respq", tmp_path, "--client-output-queue-limit", "1mb") as server:
        admin = make_client(server)
        sock = stalled_client(server.port, b"stalled")
        sender = threading.Thread(target=sock.sendall, args=(pushes(PIPELINE),), daemon=True)
        sender.start()
        wait_until(lambda: omem(admin, "stalled") >= limit, timeout=30)
        # Reading paused: at most one read's replies beyond the limit, and the rest of the pipeline waits.
        assert omem(admin, "stalled") < limit + 256 * 1024
        assert admin.llen("k") < PIPELINE
        assert sender.is_alive()
        wait_until(lambda: int(admin.info("clients")["client_recent_max_output_buffer"]) >= limit)
        assert recv_exactly(sock, len(push_replies(PIPELINE))) == push_replies(PIPELINE)
        sender.join(30)
        assert admin.llen("k") == PIPELINE
        assert omem(admin, "stalled") == 0
        sock.close()
