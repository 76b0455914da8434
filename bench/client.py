"""A minimal blocking RESP2 client: pipelines of encoded commands over one socket, replies parsed by hiredis.

redis-py's per-command overhead would make the load generator the bottleneck on a two-core machine.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence

import hiredis

Arg = bytes | str | int


def encode(*args: Arg) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class ReplyError(Exception):
    """An error reply where the harness expected a value."""


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 300.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, payload: bytes) -> None:
        self.sock.sendall(payload)

    def read_replies(self, count: int) -> list[object]:
        replies: list[object] = []
        while len(replies) < count:
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(1 << 18)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.reader.feed(data)
                continue
            replies.append(reply)
        return replies

    def exchange(self, payload: bytes, count: int) -> list[object]:
        """Sends already encoded commands and reads their ``count`` replies, none of which may be an error."""
        self.send(payload)
        replies = self.read_replies(count)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise ReplyError(str(reply))
        return replies

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        return self.exchange(b"".join(encode(*command) for command in commands), len(commands))

    def call(self, *args: Arg) -> object:
        return self.pipeline([args])[0]


def wait_serving(port: int, timeout: float) -> float:
    """Seconds until PING answers PONG (a loading server answers an error, a starting one refuses connections)."""
    start = time.monotonic()
    while True:
        try:
            with Client(port, timeout=5.0) as client:
                while client.pipeline([("PING",)])[0] != b"PONG":
                    time.sleep(0.01)
                return time.monotonic() - start
        except (OSError, ReplyError):
            if time.monotonic() - start > timeout:
                raise
            time.sleep(0.01)


def chunked(items: Iterable[Sequence[Arg]], size: int) -> Iterable[list[Sequence[Arg]]]:
    batch: list[Sequence[Arg]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
