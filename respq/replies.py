"""Reply values that command handlers return; the connection encodes them for RESP2 or RESP3.

Plain Python values map directly:
    bytes        -> bulk string
    int          -> integer (bool is *not* an int here: see below)
    None         -> null bulk string (RESP2 ``$-1``; RESP3 ``_``)
    list / tuple -> array
    dict         -> map (RESP2: flat array of key, value, ...)
    bool         -> RESP3 boolean; RESP2 integer 1/0
    float        -> RESP3 double; RESP2 bulk string in Redis's formatting
The classes below cover the shapes plain values cannot express.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any


@dataclass(frozen=True, slots=True)
class SimpleString:
    """A status reply such as ``+OK``."""

    text: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error reply; ``message`` includes the code, e.g. ``b"ERR syntax error"``."""

    message: bytes


class _NullArray:
    """A null array: RESP2 ``*-1`` (BLPOP timeout, EXEC aborted by WATCH); RESP3 ``_``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()


@dataclass(frozen=True, slots=True)
class SetReply:
    """A set: RESP3 ``~``; RESP2 array. Kept as a list so the order on the wire is ours to choose."""

    items: list


@dataclass(frozen=True, slots=True)
class Push:
    """An out-of-band message (pub/sub): RESP3 ``>``; RESP2 array."""

    items: list


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A verbatim string (INFO, CLIENT LIST in RESP3): ``=len\\r\\ntxt:...``; RESP2 bulk string."""

    text: bytes
    format: bytes = b"txt"


@dataclass(frozen=True, slots=True)
class BigNumber:
    """RESP3 ``(``; RESP2 bulk string."""

    digits: bytes


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes already encoded as RESP, sent as they are in either protocol."""

    data: bytes


OK = SimpleString(b"OK")
QUEUED = SimpleString(b"QUEUED")
PONG = SimpleString(b"PONG")


@dataclass(frozen=True, slots=True)
class Replies:
    """Several replies to one command (SUBSCRIBE confirms each channel separately); inside EXEC each is an element."""

    items: tuple


def pushes_in(reply: Any) -> tuple[Push, ...]:
    """The pushes a reply carries (a SUBSCRIBE's confirmations, alone or inside EXEC's array): what CLIENT REPLY
    OFF and SKIP do not silence, since Redis sends pub/sub confirmations and messages whatever the reply mode."""
    kind = type(reply)
    if kind is Push:
        return (reply,)
    items = reply.items if kind is Replies else reply if kind is list else ()
    return tuple(item for item in items if type(item) is Push)


class StreamedArray:
    """An array produced while it is sent (LRANGE over a long list, random picks with a huge count), so it is never
    built whole.

    On the wire it is exactly the array it replaces (``*length`` then each element). Its elements are bulk strings
    (the same in RESP2 and RESP3), or with ``items`` any reply values, each encoded for the client's protocol (the
    [member, score] pairs of RESP3). The connection writes it in batches and calls ``close`` whether it read the
    values or not (``CLIENT REPLY OFF``, a disconnect); ``materialize`` builds the plain list where a reply must be
    whole (inside EXEC).
    """

    __slots__ = ("_on_close", "items", "length", "values")

    def __init__(
        self, length: int, values: Iterator[Any], on_close: Callable[[], None] | None = None, *, items: bool = False
    ) -> None:
        self.length = length
        self.values = values
        self.items = items
        self._on_close: Callable[[], None] | None = on_close

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def materialize(self) -> list[Any]:
        try:
            return list(islice(self.values, self.length))
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"StreamedArray({self.length})"
