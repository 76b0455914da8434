"""A string value, held inline in memory: journaled writes, its whole contents in each checkpoint's manifest.

A string key is one ``StringValue``: its bytes and, like every catalog entry, its expiry. Every change is one journal
record naming the queue id (``OP_SET``: the new contents; ``OP_APPEND``: the bytes added; ``OP_SET_RANGE``: an
offset and the bytes written there), and replay applies it through the same code as the live call. The manifest
holds the contents whole (``dump``), so a restart replays only the records written since the last checkpoint.

Nothing is written to segment files: strings have no files, no cold form, nothing to settle. The bytes a value
holds are reported to the engine (``StorePort.inline_changed``) for ``maxmemory``.

Contents are ``bytes`` until the first APPEND or SETRANGE turns them into a ``bytearray`` that grows in place, as
Redis grows an sds: a string built by many appends costs amortized O(appended bytes), not a copy per append. That
is also how Redis tells its encodings apart: APPEND and SETRANGE leave a ``raw`` string (see ``encoding``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import ClassVar

from respq.storage import framing
from respq.storage.port import StorePort, Value, ValueType
from respq.types import memory

# Journal record types of strings (50-59 are theirs). Part of the on-disk format: never renumber. Each payload
# starts with the value's queue id.
OP_SET = 50  # qid, then the whole new contents
OP_APPEND = 51  # qid, then the bytes appended
OP_SET_RANGE = 52  # qid, offset, then the bytes written at it (zeros fill any gap before it)

QID = struct.Struct("<Q")
SET_RANGE_HEAD = struct.Struct("<QQ")  # qid, offset
# What a string key costs in memory beyond its contents and its key, counted towards maxmemory with the contents:
# measured with tracemalloc on CPython 3.11 over 100,000 keys, 148 bytes for the value object and the catalog's
# dict slot, plus 33 for the bytes object's header.
VALUE_OVERHEAD = 180
EMBSTR_SIZE_LIMIT = 44  # Redis keeps strings up to this length in one allocation with their object ("embstr")
_LONG = re.compile(rb"-?[1-9][0-9]{0,19}|0")  # string2l's form (no "+", no leading zeros); range checked apart
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
SHARED_INTEGERS = 10000  # Redis shares one object for each integer 0-9999 (OBJ_SHARED_INTEGERS)
SHARED_REFCOUNT = (1 << 31) - 1  # what OBJECT REFCOUNT shows for a shared object
GREEDY_LIMIT = 1 << 20  # sds growth doubles a string's room up to 1 MiB, then adds 1 MiB (SDS_MAX_PREALLOC)


class StringValue(Value):
    """One string key's value. Read ``data`` (or ``len``); change it only through ``set``, ``append`` and
    ``set_range``, each journaled as one record (inside ``port.atomic()`` when the caller needs several together:
    a new key is created and filled in one atomic block, so a crash never leaves it empty)."""

    __slots__ = ("_data", "_port", "qid")
    type = "string"
    vtype: ClassVar[ValueType]

    def __init__(self, port: StorePort, qid: int) -> None:
        super().__init__()
        self._port = port
        self.qid = qid
        self._data: bytes | bytearray = b""
        port.inline_changed(VALUE_OVERHEAD)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"StringValue(qid={self.qid}, len={len(self._data)})"

    @property
    def data(self) -> bytes:
        """The whole value."""
        data = self._data
        return data if type(data) is bytes else bytes(data)

    def substring(self, start: int, end: int) -> bytes:
        """``data[start:end]`` without copying the whole value first (GETRANGE of a long string)."""
        return bytes(self._data[start:end])

    # -- writes: before_write, change, journal

    def set(self, data: bytes) -> None:
        """Replaces the contents."""
        port = self._port
        port.before_write(len(data) + framing.OVERHEAD + QID.size)
        self._set(data)
        port.log(OP_SET, QID.pack(self.qid) + data)

    def append(self, data: bytes) -> int:
        """Adds ``data`` at the end; returns the new length."""
        port = self._port
        port.before_write(len(data) + framing.OVERHEAD + QID.size)
        self._append(data)
        port.log(OP_APPEND, QID.pack(self.qid) + data)
        return len(self._data)

    def set_range(self, offset: int, data: bytes) -> int:
        """Writes ``data`` at ``offset``, zero bytes filling any gap past the end; returns the new length."""
        port = self._port
        port.before_write(len(data) + framing.OVERHEAD + SET_RANGE_HEAD.size)
        self._set_range(offset, data)
        port.log(OP_SET_RANGE, SET_RANGE_HEAD.pack(self.qid, offset) + data)
        return len(self._data)

    def _set(self, data: bytes) -> None:
        self._port.inline_changed(len(data) - len(self._data))
        self._data = data

    def _append(self, data: bytes) -> None:
        current = self._data
        if type(current) is bytes:
            current = self._data = bytearray(current)
        current += data
        self._port.inline_changed(len(data))

    def _set_range(self, offset: int, data: bytes) -> None:
        current = self._data
        if type(current) is bytes:
            current = self._data = bytearray(current)
        before = len(current)
        end = offset + len(data)
        if end > before:
            current.extend(bytes(end - before))
            self._port.inline_changed(end - before)
        current[offset:end] = data

    # -- what Redis would report of it

    def encoding(self) -> bytes:
        """OBJECT ENCODING as Redis 7.0 names it for the same value: ``int`` for what a 64-bit integer holds,
        ``embstr`` up to 44 bytes, ``raw`` beyond, and ``raw`` after APPEND or SETRANGE (they unshare the value
        into a growable string). Derived from the contents, so after a restart as after Redis reloads its AOF."""
        data = self._data
        if type(data) is not bytes:
            return b"raw"
        if len(data) <= 20 and _LONG.fullmatch(data) is not None and _LONG_MIN <= int(data) <= _LONG_MAX:
            return b"int"
        return b"embstr" if len(data) <= EMBSTR_SIZE_LIMIT else b"raw"

    def refcount(self) -> int:
        """Redis shares the objects of the integers 0-9999 (with no LRU/LFU maxmemory policy, the default)."""
        if self.encoding() == b"int" and 0 <= int(self._data) < SHARED_INTEGERS:
            return SHARED_REFCOUNT
        return 1

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for the same string: the object alone for an integer, object and bytes in one
        allocation for an embstr, the object and the sds for a raw string. A string APPEND or SETRANGE grew has
        the room sds growth gives (double its length below 1 MiB) as if its last write grew it."""
        encoding = self.encoding()
        length = len(self._data)
        if encoding == b"int":
            return memory.ROBJ
        if encoding == b"embstr":
            return memory.malloc_size(memory.ROBJ + 3 + length + 1)  # sdshdr8 after the object
        if type(self._data) is bytes:
            return memory.ROBJ + memory.sds_size(length)
        room = length * 2 if length < GREEDY_LIMIT else length + GREEDY_LIMIT
        return memory.ROBJ + memory.sds_size(room, grown=True)

    # -- lifecycle and persistence

    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        if op == OP_SET:
            self._set(payload[QID.size :])
        elif op == OP_APPEND:
            self._append(payload[QID.size :])
        elif op == OP_SET_RANGE:
            _, offset = SET_RANGE_HEAD.unpack_from(payload)
            self._set_range(offset, payload[SET_RANGE_HEAD.size :])
        else:
            raise ValueError(f"unknown string operation {op}")

    def dump(self) -> bytes:
        return self.data

    def files(self) -> set[int]:
        return set()

    def drop(self) -> None:
        self._port.inline_changed(-len(self._data) - VALUE_OVERHEAD)
        self._data = b""


DATA_SLOT = StringValue._data  # the member ``data`` reads (bytes, or a bytearray it copies): MGET's C path reads it


class StringType(ValueType):
    """Strings: held inline, journaled as data, dumped whole into the manifest."""

    name = "string"
    code = 3
    ops = (OP_SET, OP_APPEND, OP_SET_RANGE)

    def create(self, port: StorePort, qid: int) -> StringValue:
        return StringValue(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        assert isinstance(value, StringValue)
        yield [b"SET", key, value.data]

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> StringValue:
        value = StringValue(port, qid)
        value._set(bytes(state))
        return value

    def copy(self, port: StorePort, value: Value, qid: int) -> StringValue:
        """COPY: the same bytes (one OP_SET); a raw string stays raw, as Redis's dupStringObject keeps the
        encoding (an empty OP_APPEND makes replay grow it in place too)."""
        assert isinstance(value, StringValue)
        copied = StringValue(port, qid)
        copied.set(value.data)
        if type(value._data) is not bytes:
            copied.append(b"")
        return copied


STRING = StringType()
StringValue.vtype = STRING
