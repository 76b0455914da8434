"""Large LRANGE replies are streamed from a snapshot: bounded memory, exact contents, byte-identical to Redis."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until
from respq.protocol import encode_command
from tests.server.helpers import make_client

BACKLOG = 200_000
VALUE_SIZE = 1024
PUSH_BATCH = 1000


def element(i: int) -> bytes:
    return b"%07d:" % i + bytes([65 + i % 26]) * (VALUE_SIZE - 8)


def rss_bytes(server: ServerProcess) -> int:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def checkpoint_time(client: redis.Redis) -> float:
    return float(client.info("persistence")["respq_last_checkpoint_time"])


def files_of_first_key(data_dir: Path) -> set[Path]:
    """Segment files of the first key created in a fresh data directory (queue id 1)."""
    return set((data_dir / "queues" / f"{1:016x}").glob("*.seg"))


def force_checkpoint(client: redis.Redis, checkpoint_bytes: int) -> None:
    """Journal traffic beyond checkpoint-bytes makes the server's checkpointer run one."""
    before = checkpoint_time(client)

    def done() -> bool:
        client.rpush("filler", b"f" * checkpoint_bytes)
        client.delete("filler")
        return checkpoint_time(client) > before

    wait_until(done, timeout=30, interval=0.05)


class RawClient:
    """A socket read only when the test says so, with a small receive buffer: a slow reader."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = bytearray()

    def send(self, *commands: list[bytes]) -> None:
        self.sock.sendall(b"".join(encode_command(command) for command in commands))

    def _fill(self) -> None:
        data = self.sock.recv(256 * 1024)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def bulks(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            header = self.line()
            assert header[:1] == b"$", header
            yield self.exactly(int(header[1:]) + 2)[:-2]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def backlog_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    data_dir = tmp_path / "data"
    server = start_respq(data_dir, "--checkpoint-bytes", "1mb", "--segment-size", "1mb")
    try:
        yield server, data_dir
    finally:
        server.stop()


def push_backlog(client: redis.Redis, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, PUSH_BATCH):
        pipe.rpush("q", *[element(i) for i in range(start, min(count, start + PUSH_BATCH))])
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


def test_a_slow_reader_gets_the_list_as_it_was_while_others_empty_it(
    backlog_server: tuple[ServerProcess, Path],
) -> None:
    server, data_dir = backlog_server
    other = make_client(server)
    push_backlog(other, BACKLOG)
    assert other.llen("q") == BACKLOG
    force_checkpoint(other, 1 << 20)
    files_of_q = files_of_first_key(data_dir)  # settled into segments by that checkpoint
    assert files_of_q
    rss_before = rss_bytes(server)
    reader = RawClient(server.port)
    reader.send([b"LRANGE", b"q", b"0", b"-1"], [b"ECHO", b"after"], [b"LLEN", b"q"])
    assert reader.line() == b"*%d" % BACKLOG
    values = reader.bulks(BACKLOG)
    for i in range(1000):
        assert next(values) == element(i)
    # The reader stalls; meanwhile another client is served: it empties the list and checkpoints retire its files.
    popped = 0
    while batch := other.lpop("q", 5000):
        popped += len(batch)
    assert popped == BACKLOG and other.exists("q") == 0
    force_checkpoint(other, 1 << 20)
    force_checkpoint(other, 1 << 20)
    reply_size = BACKLOG * (VALUE_SIZE + 8)
    growth = rss_bytes(server) - rss_before
    print(f"RSS growth {growth >> 20} MiB while streaming {reply_size >> 20} MiB")
    assert growth < reply_size // 8, f"RSS grew by {growth >> 20} MiB while streaming a {reply_size >> 20} MiB reply"
    for i in range(1000, BACKLOG):
        assert next(values) == element(i)
    # Pipelined commands after the LRANGE are answered after it, in order; they ran as they arrived, as in Redis,
    # before the other client emptied the list.
    assert reader.line() == b"$5" and reader.line() == b"after"
    assert reader.line() == b":%d" % BACKLOG
    reader.close()
    # Held while the reply was read (checkpoints retired them); once it is done, a checkpoint deletes them.
    force_checkpoint(other, 1 << 20)
    assert not files_of_first_key(data_dir)


@pytest.mark.parametrize("ending", ["disconnect", "client kill"])
def test_a_reply_abandoned_mid_way_releases_the_snapshot(
    backlog_server: tuple[ServerProcess, Path], ending: str
) -> None:
    server, data_dir = backlog_server
    other = make_client(server)
    push_backlog(other, 20_000)
    force_checkpoint(other, 1 << 20)
    files_of_q = files_of_first_key(data_dir)
    assert files_of_q
    reader = RawClient(server.port)
    reader.send([b"CLIENT", b"ID"])
    reader_id = int(reader.line()[1:])
    reader.send([b"LRANGE", b"q", b"0", b"-1"])
    assert reader.line() == b"*20000"
    assert next(reader.bulks(1)) == element(0)
    other.delete("q")
    force_checkpoint(other, 1 << 20)
    assert files_of_first_key(data_dir) == files_of_q  # still read by the reply
    if ending == "client kill":
        assert other.client_kill_filter(_id=reader_id) == 1
    reader.close()
    wait_until(lambda: other.info("clients")["connected_clients"] == 1)
    force_checkpoint(other, 1 << 20)
    assert not files_of_first_key(data_dir)
    assert other.ping()


def raw_reply(port: int, commands: list[list[bytes]], resp3: bool) -> bytes:
    """Everything the server answers to ``commands`` (after an optional HELLO 3), ending with a PING's +PONG."""
    client = RawClient(port)
    try:
        if resp3:
            client.send([b"HELLO", b"3"])
            parser = hiredis.Reader()  # HELLO's own reply differs between servers: parse it and drop it
            while parser.gets() is False:
                client._fill()
                parser.feed(bytes(client.buffer))
                client.buffer.clear()
        client.send(*commands, [b"PING"])
        while not client.buffer.endswith(b"+PONG\r\n"):
            client._fill()
        return bytes(client.buffer)
    finally:
        client.close()


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_streamed_replies_are_byte_identical_to_redis(
    respq_server: ServerProcess, redis_oracle: ServerProcess, resp3: bool
) -> None:
    values = [b"v%d" % i + b"." * (i % 300) for i in range(5000)]
    commands = [
        [b"LRANGE", b"big", b"0", b"-1"],
        [b"LRANGE", b"big", b"-3000", b"2999"],
        [b"LRANGE", b"big", b"10", b"1033"],  # exactly at the streaming threshold and just past it
        [b"LRANGE", b"big", b"10", b"1034"],
        [b"MULTI"],
        [b"LRANGE", b"big", b"0", b"-1"],
        [b"RPOP", b"big", b"2"],
        [b"EXEC"],
        [b"CLIENT", b"REPLY", b"SKIP"],
        [b"LRANGE", b"big", b"0", b"-1"],
        [b"LLEN", b"big"],
        [b"CLIENT", b"REPLY", b"OFF"],
        [b"LRANGE", b"big", b"0", b"-1"],
        [b"CLIENT", b"REPLY", b"ON"],
        [b"LRANGE", b"big", b"1", b"-2"],
    ]
    replies = []
    for server in (respq_server, redis_oracle):
        client = redis.Redis(port=server.port, socket_timeout=10)
        client.delete("big")
        client.rpush("big", *values)
        client.close()
        replies.append(raw_reply(server.port, commands, resp3))
    assert replies[0] == replies[1]
    assert replies[0].startswith(b"*5000\r\n$2\r\nv0\r\n")
