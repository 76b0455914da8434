"""A pipelining RESP2 client that records exactly which commands were answered before the connection died."""

from __future__ import annotations

import socket
from typing import Any

import hiredis


def encode(*args: bytes | str | int | float) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class Pipeline:
    """One connection. ``run`` sends a batch in one write and collects replies until all came or the link broke."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()
        self.in_flight = 0  # sent and not answered: read by the killer to prove the load was real

    def run(self, commands: list[tuple[bytes | str | int | float, ...]]) -> tuple[list[Any], bool]:
        """Replies to a prefix of ``commands`` (error replies come back as exceptions) and whether all arrived."""
        replies: list[Any] = []
        self.in_flight = len(commands)
        try:
            self.sock.sendall(b"".join(encode(*command) for command in commands))
            while len(replies) < len(commands):
                data = self.sock.recv(1 << 16)
                if not data:
                    return replies, False
                self.reader.feed(data)
                while True:
                    reply = self.reader.gets()
                    if reply is False:
                        break
                    replies.append(reply)
                    self.in_flight -= 1
        except OSError:
            return replies, False
        return replies, True

    def close(self) -> None:
        self.sock.close()
