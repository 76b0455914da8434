"""Sans-I/O RESP: request bytes in, argv lists out (with Redis 7.0's parsing rules, limits and error
texts); reply values out as RESP2 or RESP3 bytes. No sockets and no Trio here: the connection feeds and sends.

Requests are not parsed by ``hiredis.Reader``: it parses *replies*, so it accepts element types, nesting and
sizes a server must refuse, and preallocates from a client's declared count. Validating every header in Python
already locates every argument, and cutting them out here measured faster than handing the validated frames to
hiredis (which also slows down quadratically on a multi-megabyte feed); see ``RequestParser``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from respq import speedups
from respq.replies import (
    NULL_ARRAY,
    BigNumber,
    ErrorReply,
    Push,
    Raw,
    SetReply,
    SimpleString,
    Verbatim,
)

# The C accelerator for canonical multibulk commands (None: not built, or turned off).
_parse_multibulk = speedups.parse_multibulk

# Redis 7.0 limits (server.h / networking.c).
INLINE_MAX_SIZE = 64 * 1024  # longest inline request, and longest header line awaited without its CR
INT_MAX = 2**31 - 1  # a multibulk count above this is invalid
UNAUTHENTICATED_MAX_ARGS = 10
UNAUTHENTICATED_MAX_BULK = 16384
_LONG_STR_SIZE = 21  # string2ll refuses a number this long or longer
_LLONG_MAX = 2**63 - 1

# Replies sent before Redis closes the connection (addReplyError adds the "ERR " code).
ERR_TOO_BIG_INLINE = b"ERR Protocol error: too big inline request"
ERR_UNBALANCED_QUOTES = b"ERR Protocol error: unbalanced quotes in request"
ERR_TOO_BIG_MBULK_COUNT = b"ERR Protocol error: too big mbulk count string"
ERR_INVALID_MBULK_LENGTH = b"ERR Protocol error: invalid multibulk length"
ERR_UNAUTHENTICATED_MBULK = b"ERR Protocol error: unauthenticated multibulk length"
ERR_TOO_BIG_BULK_COUNT = b"ERR Protocol error: too big bulk count string"
ERR_INVALID_BULK_LENGTH = b"ERR Protocol error: invalid bulk length"
ERR_UNAUTHENTICATED_BULK = b"ERR Protocol error: unauthenticated bulk length"


def _expected_dollar(got: int) -> bytes:
    # Redis formats the byte with %c, then maps CR and LF to spaces to keep the reply on one line.
    shown = b" " if got in (10, 13) else bytes((got,))
    return b"ERR Protocol error: expected '$', got '" + shown + b"'"


class ProtocolError(Exception):
    """The client broke the protocol; the connection sends ``-<message>\\r\\n`` (if any) and closes.

    ``message`` is None where Redis closes without a reply (query buffer limit exceeded).
    """

    def __init__(self, message: bytes | None) -> None:
        super().__init__(message)
        self.message: bytes | None = message


# Header lines mapped to their value: one dict lookup both validates a canonical header (digits, no sign, no
# leading zero, within the limits) and converts it. Anything else takes the exact, slower path.
_FAST_COUNT_MAX = 1024
_FAST_BULK_MAX = UNAUTHENTICATED_MAX_BULK


@lru_cache(maxsize=8)
def _count_headers(limit: int) -> dict[bytes, int]:
    return {b"*%d" % n: n for n in range(1, limit + 1)}


@lru_cache(maxsize=8)
def _bulk_headers(limit: int) -> dict[bytes, int]:
    return {b"$%d" % n: n for n in range(limit + 1)}


def _string2ll(text: bytes) -> int | None:
    """Redis's string2ll: optional '-', no '+', no spaces, no leading zeros, fits a signed 64-bit integer."""
    if not text or len(text) >= _LONG_STR_SIZE:
        return None
    if text == b"0":
        return 0
    negative = text[0] == 45  # '-'
    digits = text[1:] if negative else text
    if not digits or not digits.isdigit() or digits[0] == 48:  # '0'
        return None
    value = int(digits)
    if negative:
        return -value if value <= _LLONG_MAX + 1 else None
    return value if value <= _LLONG_MAX else None


def _find_stop(buf: bytes, char: bytes, start: int) -> int:
    """The index of ``char`` from ``start``, or -1 if absent. Redis searches with strchr, which also stops
    at a NUL byte, so a NUL before ``char`` means "not found yet" (Redis waits, up to the 64 KiB limit)."""
    found = buf.find(char, start)
    if found < 0 or buf.find(b"\0", start, found) >= 0:
        return -1
    return found


# ---- inline commands (Redis's sdssplitargs) ----------------------------------------------------------------
_BLANKS = frozenset(b" \t\n\v\f\r")  # C isspace(): skipped between arguments, allowed after a closing quote
_ENDS_WORD = frozenset(b" \t\n\r")  # what ends an unquoted argument (\v and \f do not)
_NEEDS_SLOW_SPLIT = (b'"', b"'", b"\v", b"\f")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_QUOTE, _APOSTROPHE, _BACKSLASH = ord('"'), ord("'"), ord("\\")


def split_inline(line: bytes) -> list[bytes]:
    """Splits an inline request the way Redis does; raises ProtocolError on unbalanced quotes."""
    for special in _NEEDS_SLOW_SPLIT:
        if special in line:
            return _split_quoted(line)
    return line.split()  # without quotes or \v \f, bytes.split() is exactly sdssplitargs


def _split_quoted(line: bytes) -> list[bytes]:
    args: list[bytes] = []
    size = len(line)
    i = 0
    while True:
        while i < size and line[i] in _BLANKS:
            i += 1
        if i >= size:
            return args
        arg = bytearray()
        in_double = in_single = done = False
        while not done:
            char = line[i] if i < size else 0  # the C string's terminating NUL
            after = line[i + 1] if i + 1 < size else 0
            if in_double:
                if (
                    char == _BACKSLASH
                    and after == 120  # 'x'
                    and i + 3 < size
                    and line[i + 2] in _HEX_DIGITS
                    and line[i + 3] in _HEX_DIGITS
                ):
                    arg.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif char == _BACKSLASH and after:
                    i += 1
                    arg.append(_ESCAPES.get(after, after))
                elif char == _QUOTE:
                    if after and after not in _BLANKS:
                        raise ProtocolError(ERR_UNBALANCED_QUOTES)
                    done = True
                elif not char:
                    raise ProtocolError(ERR_UNBALANCED_QUOTES)
                else:
                    arg.append(char)
            elif in_single:
                if char == _BACKSLASH and after == _APOSTROPHE:
                    i += 1
                    arg.append(_APOSTROPHE)
                elif char == _APOSTROPHE:
                    if after and after not in _BLANKS:
                        raise ProtocolError(ERR_UNBALANCED_QUOTES)
                    done = True
                elif not char:
                    raise ProtocolError(ERR_UNBALANCED_QUOTES)
                else:
                    arg.append(char)
            elif not char or char in _ENDS_WORD:
                done = True
            elif char == _QUOTE:
                in_double = True
            elif char == _APOSTROPHE:
                in_single = True
            else:
                arg.append(char)
            if char:
                i += 1
        args.append(bytes(arg))


# ---- requests ----------------------------------------------------------------------------------------------
class RequestParser:
    """Incremental request parser for one connection.

    ``feed()`` the bytes read, then ``parse()`` for the complete commands. A protocol error found after some
    good commands is raised by the *next* ``parse()``; after that the parser stays failed.

    While ``authenticated`` is False, Redis's unauthenticated limits apply and ``parse()`` returns at most one
    command, so that a successful AUTH can lift the limits before the next command is read.

    Speed: with the C accelerator (when it is built and ``speedups`` is left True), ``parse_multibulk`` takes
    every complete canonical command and the exact path below the rest (``_parse_accelerated``): about ten times
    faster than the pure-Python fast path (``python -m bench.micro``). Without it: the buffer is split at every
    CRLF in one C call; a canonical command (``*N`` and ``$len`` headers
    found in the dicts, each body exactly ``len`` bytes) is then checked and cut out with a few list
    operations, whatever its argument count. Anything else (CRLF-terminated inline commands excepted) goes
    through the exact path that mirrors Redis step by step, as does every command of an unauthenticated
    client.
    Measured (2 busy cores, pipelines of 10k commands fed in 256 KiB reads, commands/s): ``LPUSH q <100 B>``
    0.60M, ``PING`` 1.9M, ``LPUSH`` of ten values 0.23M. A find()-and-slice loop per header: 0.46M, 0.94M,
    0.14M; that loop handing the validated frames to hiredis: 0.44M, 1.06M, 0.12M.
    """

    __slots__ = (
        "_args_left",
        "_argv",
        "_buf",
        "_bulk_headers",
        "_chunks",
        "_chunks_len",
        "_count_headers",
        "_error",
        "_max_bulk_len",
        "_need",
        "_parse_canonical",
        "_pos",
        "_query_buffer_limit",
        "_waiting",
        "authenticated",
    )

    def __init__(
        self, *, max_bulk_len: int = 512 * 1024 * 1024, query_buffer_limit: int = 1024**3, speedups: bool = True
    ) -> None:
        self.authenticated = True
        self._parse_canonical = _parse_multibulk if speedups else None
        self._max_bulk_len = max_bulk_len
        self._query_buffer_limit = query_buffer_limit
        self._count_headers = _count_headers(_FAST_COUNT_MAX)
        self._bulk_headers = _bulk_headers(min(_FAST_BULK_MAX, max_bulk_len))
        self._buf = b""
        self._pos = 0
        self._chunks: list[bytes] = []
        self._chunks_len = 0
        # True when everything parseable has been parsed: parse() then waits for data instead of rescanning.
        self._waiting = False
        # Bytes (from _pos) needed before parsing can progress, set while a large argument arrives: its chunks
        # are then joined once instead of on every read.
        self._need = 0
        # A multibulk command cut short by the end of the buffer: its arguments so far and how many remain.
        self._argv: list[bytes] | None = None
        self._args_left = 0
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> None:
        if self._error is not None or not data:
            return
        self._chunks.append(data)
        self._chunks_len += len(data)
        # Redis checks after every read, before parsing: a client over the limit is closed without a reply.
        if self.buffered() > self._query_buffer_limit:
            self._error = ProtocolError(None)

    def buffered(self) -> int:
        """Bytes received and not yet consumed by a returned (or partly read) command."""
        return len(self._buf) - self._pos + self._chunks_len

    def parse(self) -> list[list[bytes]]:
        if self._error is not None:
            raise self._error
        if self._chunks:
            if self.buffered() < self._need:
                return []
            self._absorb_chunks()
        elif self._waiting:
            return []
        commands: list[list[bytes]] = []
        try:
            self._parse_into(commands)
        except ProtocolError as error:
            self._error = error
            if not commands:
                raise
        return commands

    def _absorb_chunks(self) -> None:
        chunks = self._chunks
        if self._pos < len(self._buf):
            chunks.insert(0, memoryview(self._buf)[self._pos :])
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._buf = buf if type(buf) is bytes else bytes(buf)
        self._pos = 0
        self._chunks = []
        self._chunks_len = 0
        self._need = 0
        self._waiting = False

    def _parse_into(self, commands: list[list[bytes]]) -> None:
        buf = self._buf
        pos = self._pos
        try:
            if self._argv is not None:
                pos, more = self._read_multibulk(buf, pos, commands)
                if not more:
                    self._waiting = True
                    return
            if self.authenticated:
                if self._parse_canonical is not None:
                    pos = self._parse_accelerated(buf, pos, commands)
                else:
                    pos = self._parse_lines(buf, pos, commands)
                self._waiting = True
            elif not commands and pos < len(buf):
                pos, more = self._read_one(buf, pos, commands)
                self._waiting = not more
        finally:
            self._pos = pos

    def _parse_accelerated(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> int:
        """``_parse_lines`` with the C accelerator: it takes every canonical command, the exact path the rest."""
        parse_canonical, end, max_bulk_len = self._parse_canonical, len(buf), self._max_bulk_len
        while True:
            pos = parse_canonical(buf, pos, max_bulk_len, commands)  # type: ignore[misc]
            if pos >= end:
                return pos
            pos, more = self._read_one(buf, pos, commands)
            if not more:
                return pos

    def _parse_lines(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> int:
        """Parses every complete command from ``pos``; returns the position where parsing stopped."""
        if pos >= len(buf):
            return pos
        lines = (buf[pos:] if pos else buf).split(b"\r\n")
        last = len(lines) - 1  # lines[last] is not CRLF-terminated (b"" when the buffer ends with CRLF)
        append = commands.append
        count_of = self._count_headers.get
        size_of = self._bulk_headers.get
        i = synced = 0  # lines[synced] starts at byte ``pos``
        while i < last:
            line = lines[i]
            count = count_of(line)
            if count is not None:
                stop = i + 1 + 2 * count
                if stop <= last:
                    if count == 1:
                        body = lines[i + 2]
                        if size_of(lines[i + 1]) == len(body):
                            append([body])
                            i = stop
                            continue
                    else:
                        bodies = lines[i + 2 : stop : 2]
                        if list(map(size_of, lines[i + 1 : stop : 2])) == list(map(len, bodies)):
                            append(bodies)
                            i = stop
                            continue
            elif (not line or line[0] != 42) and b"\n" not in line and b"\0" not in line:
                # A CRLF-terminated inline command (a lone LF or a NUL needs the exact path).
                argv = split_inline(line)
                if argv:  # Redis skips empty lines
                    append(argv)
                i += 1
                continue
            # Not canonical, or incomplete: one command through the exact path, then realign with the lines.
            pos += sum(map(len, lines[synced:i])) + 2 * (i - synced)
            next_pos, more = self._read_one(buf, pos, commands)
            if not more:
                return next_pos
            while pos < next_pos and i < last:
                pos += len(lines[i]) + 2
                i += 1
            if pos != next_pos:  # it ended inside a line (a lone LF, or a bulk not followed by CRLF)
                return self._parse_exact(buf, next_pos, commands)
            synced = i
        pos += sum(map(len, lines[synced:i])) + 2 * (i - synced)
        return self._parse_exact(buf, pos, commands)  # the unterminated tail, if any

    def _parse_exact(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> int:
        end = len(buf)
        while pos < end:
            pos, more = self._read_one(buf, pos, commands)
            if not more:
                break
        return pos

    def _read_one(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> tuple[int, bool]:
        """Reads one command at ``pos`` the way Redis does. Returns the position after what was consumed and
        whether parsing can go on (False: more data is needed)."""
        if buf[pos] == 42:  # '*'
            return self._read_multibulk(buf, pos, commands)
        return self._read_inline(buf, pos, commands)

    def _read_inline(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> tuple[int, bool]:
        newline = _find_stop(buf, b"\n", pos)
        if newline < 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise ProtocolError(ERR_TOO_BIG_INLINE)
            return pos, False
        line_end = newline - 1 if newline > pos and buf[newline - 1] == 13 else newline
        argv = split_inline(buf[pos:line_end])
        if argv:
            commands.append(argv)
        return newline + 1, True

    def _read_multibulk(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> tuple[int, bool]:
        """Redis's processMultibulkBuffer: reads the multibulk command at ``pos``, or resumes the one in
        ``self._argv``. Returns like ``_read_one``; an incomplete command is kept in ``self._argv``."""
        end = len(buf)
        argv = self._argv
        if argv is None:
            line_end = _find_stop(buf, b"\r", pos)
            if line_end < 0:
                if end - pos > INLINE_MAX_SIZE:
                    raise ProtocolError(ERR_TOO_BIG_MBULK_COUNT)
                return pos, False
            if line_end + 1 >= end:  # Redis wants one more byte after the CR (and skips it unchecked)
                return pos, False
            count = _string2ll(buf[pos + 1 : line_end])
            if count is None or count > INT_MAX:
                raise ProtocolError(ERR_INVALID_MBULK_LENGTH)
            if count > UNAUTHENTICATED_MAX_ARGS and not self.authenticated:
                raise ProtocolError(ERR_UNAUTHENTICATED_MBULK)
            pos = line_end + 2
            if count <= 0:  # an empty command: Redis skips it
                return pos, True
            # Arguments are appended as they arrive: a huge declared count allocates nothing up front.
            argv = self._argv = []
            self._args_left = count
        while self._args_left:
            line_end = _find_stop(buf, b"\r", pos)
            if line_end < 0:
                if end - pos > INLINE_MAX_SIZE:
                    raise ProtocolError(ERR_TOO_BIG_BULK_COUNT)
                return pos, False
            if line_end + 1 >= end:
                return pos, False
            if buf[pos] != 36:  # '$'
                raise ProtocolError(_expected_dollar(buf[pos]))
            size = _string2ll(buf[pos + 1 : line_end])
            if size is None or size < 0 or size > self._max_bulk_len:
                raise ProtocolError(ERR_INVALID_BULK_LENGTH)
            if size > UNAUTHENTICATED_MAX_BULK and not self.authenticated:
                raise ProtocolError(ERR_UNAUTHENTICATED_BULK)
            start = line_end + 2
            # Redis skips the two bytes after an argument without checking that they are CRLF.
            if start + size + 2 > end:
                self._need = start + size + 2 - pos
                return pos, False
            argv.append(buf[start : start + size])
            pos = start + size + 2
            self._args_left -= 1
        commands.append(argv)
        self._argv = None
        return pos, True


# ---- replies -----------------------------------------------------------------------------------------------
_Write = Callable[[bytes], Any]
_Encoder = Callable[[_Write, Any, "_Dispatch"], None]

_CRLF = b"\r\n"
_BULK_HEADERS = tuple(b"$%d\r\n" % n for n in range(1024))
_ARRAY_HEADERS = tuple(b"*%d\r\n" % n for n in range(256))
_NIL2, _NIL3 = b"$-1\r\n", b"_\r\n"
# A list of bulk strings and nulls (MGET, LRANGE, HGETALL ...) encoded in one C call; None: not built.
_encode_bulks = speedups.encode_bulks


class _Dispatch(dict[type, _Encoder]):
    """Encoders by exact type; a subclass (an IntEnum, say) is resolved through its MRO once, then cached. ``nil``
    is the protocol's null, for the C encoder of bulk-string arrays."""

    def __init__(self, encoders: dict[type, _Encoder], nil: bytes) -> None:
        super().__init__(encoders)
        self.nil = nil

    def __missing__(self, kind: type) -> _Encoder:
        for base in kind.__mro__[1:]:
            if base in self:
                self[kind] = self[base]
                return self[kind]
        raise TypeError(f"no RESP encoding for {kind.__name__}")


def _format_double(value: float) -> bytes:
    # Redis 7.0 prints doubles with "%.17g", except infinities which it spells out (libc output varies).
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"  # glibc keeps the sign of a NaN
    return b"%.17g" % value


def _bulk(write: _Write, value: bytes, enc: _Dispatch) -> None:
    size = len(value)
    write(_BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size)
    write(value)
    write(_CRLF)


def _integer(write: _Write, value: int, enc: _Dispatch) -> None:
    write(b":%d\r\n" % value)


def _array(write: _Write, value: list | tuple, enc: _Dispatch) -> None:
    if _encode_bulks is not None and type(value) is list:
        data = _encode_bulks(value, enc.nil)
        if data is not None:
            write(data)
            return
    size = len(value)
    write(_ARRAY_HEADERS[size] if size < 256 else b"*%d\r\n" % size)
    for item in value:
        kind = type(item)
        if kind is bytes:
            size = len(item)
            write(_BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size)
            write(item)
            write(_CRLF)
        else:
            enc[kind](write, item, enc)


def _items(write: _Write, items: list, enc: _Dispatch) -> None:
    for item in items:
        enc[type(item)](write, item, enc)


def _simple(write: _Write, value: SimpleString, enc: _Dispatch) -> None:
    write(b"+" + value.text + _CRLF)


def _error(write: _Write, value: ErrorReply, enc: _Dispatch) -> None:
    write(b"-" + value.message + _CRLF)


def _raw(write: _Write, value: Raw, enc: _Dispatch) -> None:
    write(value.data)


def _null2(write: _Write, value: None, enc: _Dispatch) -> None:
    write(_NIL2)


def _null_array2(write: _Write, value: object, enc: _Dispatch) -> None:
    write(b"*-1\r\n")


def _map2(write: _Write, value: dict, enc: _Dispatch) -> None:
    write(b"*%d\r\n" % (2 * len(value)))
    for key, item in value.items():
        enc[type(key)](write, key, enc)
        enc[type(item)](write, item, enc)


def _set2(write: _Write, value: SetReply, enc: _Dispatch) -> None:
    _array(write, value.items, enc)


def _push2(write: _Write, value: Push, enc: _Dispatch) -> None:
    _array(write, value.items, enc)


def _bool2(write: _Write, value: bool, enc: _Dispatch) -> None:
    write(b":1\r\n" if value else b":0\r\n")


def _double2(write: _Write, value: float, enc: _Dispatch) -> None:
    _bulk(write, _format_double(value), enc)


def _verbatim2(write: _Write, value: Verbatim, enc: _Dispatch) -> None:
    _bulk(write, value.text, enc)


def _big_number2(write: _Write, value: BigNumber, enc: _Dispatch) -> None:
    _bulk(write, value.digits, enc)


def _null3(write: _Write, value: object, enc: _Dispatch) -> None:
    write(_NIL3)


def _map3(write: _Write, value: dict, enc: _Dispatch) -> None:
    write(b"%%%d\r\n" % len(value))
    for key, item in value.items():
        enc[type(key)](write, key, enc)
        enc[type(item)](write, item, enc)


def _set3(write: _Write, value: SetReply, enc: _Dispatch) -> None:
    write(b"~%d\r\n" % len(value.items))
    _items(write, value.items, enc)


def _push3(write: _Write, value: Push, enc: _Dispatch) -> None:
    write(b">%d\r\n" % len(value.items))
    _items(write, value.items, enc)


def _bool3(write: _Write, value: bool, enc: _Dispatch) -> None:
    write(b"#t\r\n" if value else b"#f\r\n")


def _double3(write: _Write, value: float, enc: _Dispatch) -> None:
    write(b"," + _format_double(value) + _CRLF)


def _verbatim3(write: _Write, value: Verbatim, enc: _Dispatch) -> None:
    write(b"=%d\r\n%b:%b\r\n" % (len(value.format) + 1 + len(value.text), value.format, value.text))


def _big_number3(write: _Write, value: BigNumber, enc: _Dispatch) -> None:
    write(b"(" + value.digits + _CRLF)


_COMMON: dict[type, _Encoder] = {
    bytes: _bulk,
    int: _integer,
    list: _array,
    tuple: _array,
    SimpleString: _simple,
    ErrorReply: _error,
    Raw: _raw,
}
_RESP2 = _Dispatch(_COMMON, _NIL2)
_RESP2.update(
    {
        type(None): _null2,
        type(NULL_ARRAY): _null_array2,
        dict: _map2,
        SetReply: _set2,
        Push: _push2,
        bool: _bool2,
        float: _double2,
        Verbatim: _verbatim2,
        BigNumber: _big_number2,
    }
)
_RESP3 = _Dispatch(_COMMON, _NIL3)
_RESP3.update(
    {
        type(None): _null3,
        type(NULL_ARRAY): _null3,
        dict: _map3,
        SetReply: _set3,
        Push: _push3,
        bool: _bool3,
        float: _double3,
        Verbatim: _verbatim3,
        BigNumber: _big_number3,
    }
)
_BY_PROTOCOL = {2: _RESP2, 3: _RESP3}


def encode_into(out: list[bytes] | bytearray, value: object, protocol: int) -> None:
    """Appends the encoding of ``value`` to ``out`` (fragments to a list, bytes to a bytearray)."""
    enc = _BY_PROTOCOL[protocol]
    write = out.append if type(out) is list else out.extend  # type: ignore[union-attr]
    enc[type(value)](write, value, enc)


def encode_reply(value: object, protocol: int) -> bytes:
    """The RESP2 (``protocol=2``) or RESP3 (``protocol=3``) encoding of a reply value (see respq.replies)."""
    kind = type(value)
    if kind is bytes:
        size = len(value)  # type: ignore[arg-type]
        header = _BULK_HEADERS[size] if size < 1024 else b"$%d\r\n" % size
        return header + value + _CRLF  # type: ignore[operator]
    if kind is int:
        return b":%d\r\n" % value  # type: ignore[str-format]
    if kind is SimpleString:
        return b"+" + value.text + _CRLF  # type: ignore[attr-defined]
    enc = _BY_PROTOCOL[protocol]
    if kind is list and _encode_bulks is not None:
        data = _encode_bulks(value, enc.nil)  # type: ignore[arg-type]
        if data is not None:
            return data
    parts: list[bytes] = []
    enc[kind](parts.append, value, enc)
    return b"".join(parts)


def encode_replies(values: Iterable[object], protocol: int) -> bytes:
    """``encode_reply`` of each value, joined; integers (the lengths a run of pushes answers) formatted in place."""
    return b"".join([b":%d\r\n" % value if type(value) is int else encode_reply(value, protocol) for value in values])


def encode_command(args: list[bytes]) -> bytes:
    """A request as clients send it: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(_CRLF)
    return b"".join(parts)
