"""RESP on the wire for the differential harness: frame exactly one reply, parse it into a tree, encode it back.

Written from the protocol description, independent of respq's own codec, so a bug there cannot hide itself.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

LINE_TYPES = frozenset(b"+-:_,#(")  # one CRLF-terminated line
BULK_TYPES = frozenset(b"$=!")  # length-prefixed payload
AGGREGATE_TYPES = frozenset(b"*~>%|")  # count-prefixed children (maps and attributes: 2 per count)

# Stands in for a reply when the server closed the connection instead of answering.
CLOSED = b"<connection closed>"
# Stands in for a reply that did not arrive in time.
NO_REPLY = b"<no reply in time>"


class NotResp(Exception):
    """The byte stream is not a RESP reply stream."""


def frame_end(buf: bytes | bytearray, start: int = 0) -> int | None:
    """The offset just past the reply that starts at ``start``, or None if it is not complete yet."""
    if start >= len(buf):
        return None
    kind = buf[start]
    line_end = buf.find(b"\r\n", start)
    if line_end < 0:
        return None
    header = bytes(buf[start + 1 : line_end])
    after_header = line_end + 2
    if kind in LINE_TYPES:
        return after_header
    if kind not in BULK_TYPES and kind not in AGGREGATE_TYPES:
        raise NotResp(f"unexpected reply type byte {bytes([kind])!r} in {bytes(buf[start:start + 40])!r}")
    try:
        count = int(header)
    except ValueError:
        raise NotResp(f"bad length {header!r} in {bytes(buf[start:start + 40])!r}") from None
    if kind in BULK_TYPES:
        if count < 0:
            return after_header
        end = after_header + count + 2
        return end if end <= len(buf) else None
    if count < 0:
        return after_header
    children = count * 2 if kind in b"%|" else count
    position: int | None = after_header
    for _ in range(children):
        position = frame_end(buf, position)
        if position is None:
            return None
    if kind == ord("|"):
        # An attribute precedes the reply it describes; both belong to one read.
        return frame_end(buf, position)
    return position


@dataclass(frozen=True, slots=True)
class Node:
    """One parsed reply. ``kind`` is the type byte as a str; ``value`` is bytes, None (null) or a list of Nodes.

    Maps and attributes keep their keys and values interleaved in ``value``.
    """

    kind: str
    value: bytes | list[Node] | None

    @property
    def items(self) -> list[Node]:
        assert isinstance(self.value, list), self
        return self.value

    def pairs(self) -> list[tuple[Node, Node]]:
        return list(zip(self.items[0::2], self.items[1::2], strict=True))


def parse(data: bytes) -> Node:
    node, end = _parse_at(data, 0)
    if end != len(data):
        raise NotResp(f"trailing bytes after a reply: {data[end:end + 40]!r}")
    return node


def _parse_at(data: bytes, start: int) -> tuple[Node, int]:
    kind = chr(data[start])
    line_end = data.index(b"\r\n", start)
    header = data[start + 1 : line_end]
    position = line_end + 2
    if kind in "+-:_,#(":
        return Node(kind, header), position
    count = int(header)
    if kind in "$=!":
        if count < 0:
            return Node(kind, None), position
        return Node(kind, data[position : position + count]), position + count + 2
    if count < 0:
        return Node(kind, None), position
    children: list[Node] = []
    for _ in range(count * 2 if kind in "%|" else count):
        child, position = _parse_at(data, position)
        children.append(child)
    return Node(kind, children), position


def encode(node: Node) -> bytes:
    if node.value is None:
        return f"{node.kind}-1\r\n".encode()
    if isinstance(node.value, bytes):
        if node.kind in "$=!":
            return f"{node.kind}{len(node.value)}\r\n".encode() + node.value + b"\r\n"
        return node.kind.encode() + node.value + b"\r\n"
    count = len(node.value) // 2 if node.kind in "%|" else len(node.value)
    return f"{node.kind}{count}\r\n".encode() + b"".join(encode(child) for child in node.value)


def encode_command(args: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class Connection:
    """A blocking raw-socket client that returns each reply as the exact bytes the server sent."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = bytearray()
        self.eof = False

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            # The server may already have closed the connection; the next read reports that.
            self.eof = True

    def call(self, *args: bytes | str) -> bytes:
        self.send(encode_command([a.encode() if isinstance(a, str) else a for a in args]))
        return self.read_reply()

    def read_reply(self, timeout: float | None = None) -> bytes:
        """One complete reply, CLOSED if the server closed first, NO_REPLY if nothing complete came in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            end = frame_end(self.buffer)
            if end is not None:
                reply = bytes(self.buffer[:end])
                del self.buffer[:end]
                return reply
            if self.eof:
                return CLOSED
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return NO_REPLY
            if not self._receive(remaining):
                return NO_REPLY

    def read_close(self, timeout: float | None = None) -> bytes:
        """Waits for the server to close: returns b"" if it did with nothing more sent, else what came instead."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._receive(remaining):
                return bytes(self.buffer) + NO_REPLY
        return bytes(self.buffer)

    def _receive(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            chunk = b""  # a reset counts as a close
        if not chunk:
            self.eof = True
        self.buffer += chunk
        return True

    def close(self) -> None:
        self.sock.close()
