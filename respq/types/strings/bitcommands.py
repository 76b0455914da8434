"""The bit commands on string values (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO), with Redis
7.0's semantics (bitops.c): arguments are checked in Redis's order, a missing key reads as an empty string.

The bit arithmetic is in ``bits`` (pure functions). Writes change only the bytes they touch (``set_range``); a
command that writes several places, or creates its key, does it inside one ``engine.atomic()``. As in Redis, a
write that changes no bit and does not grow the string is no change for WATCH.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from respq import errors
from respq.commands.args import parse_int, try_int
from respq.commands.context import Context
from respq.commands.table import command
from respq.errors import CommandError
from respq.types.strings import bits
from respq.types.strings.bits import Overflow
from respq.types.strings.errors import (
    BIT_OFFSET_INVALID,
    BIT_VALUE_INVALID,
    BITFIELD_OVERFLOW_INVALID,
    BITFIELD_RO_GET_ONLY,
    BITFIELD_TYPE_INVALID,
    BITOP_NOT_ONE_SOURCE,
    BITPOS_BIT_INVALID,
)

if TYPE_CHECKING:
    from respq.types.strings.model import StringValue

G = "bitmap"
_OPS = (b"and", b"or", b"xor", b"not")
_OVERFLOWS = {b"wrap": Overflow.WRAP, b"sat": Overflow.SAT, b"fail": Overflow.FAIL}
_UNITS = {b"bit": True, b"byte": False}
_RECORD_OVERHEAD = 128  # journal bytes around a write's data (key creation, framing), generously


def _keyword(arg: bytes) -> bytes:
    """A keyword as Redis compares it (strcasecmp on a C string): any case, and it ends at a NUL byte."""
    end = arg.find(0)
    return (arg if end < 0 else arg[:end]).lower()


def _bit_offset(ctx: Context, arg: bytes, width: int = 0) -> int:
    """A bit offset: a non-negative integer addressing a byte below proto-max-bulk-len. With a field ``width``
    (BITFIELD), ``#N`` means N fields of that width (the product wraps in 64 bits, as in Redis)."""
    by_fields = width > 0 and arg[:1] == b"#"
    offset = try_int(arg[1:] if by_fields else arg)
    if offset is None:
        raise CommandError(BIT_OFFSET_INVALID)
    if by_fields:
        offset = (offset * width + (1 << 63)) % (1 << 64) - (1 << 63)
    if offset < 0 or offset >> 3 >= ctx.config.proto_max_bulk_len:
        raise CommandError(BIT_OFFSET_INVALID)
    return offset


def _bit_units(arg: bytes) -> bool:
    """BITCOUNT's and BITPOS's unit: True for BIT, False for BYTE."""
    unit = _UNITS.get(_keyword(arg))
    if unit is None:
        raise CommandError(errors.SYNTAX)
    return unit


def _string(ctx: Context, key: bytes) -> StringValue | None:
    return ctx.keyspace.typed(ctx.client.db, key, "string")


def _room(ctx: Context, key: bytes, size: int) -> None:
    """Refuses a write of several steps (create then fill, delete then replace, several ranges) before its first
    step, when storage could not take all of it: a step must not fail once another is done."""
    ctx.engine.before_write(len(key) + size + _RECORD_OVERHEAD)


def _byte(value: StringValue, index: int) -> int:
    """The value's byte at ``index``; 0 past its end."""
    return value.substring(index, index + 1)[0] if index < len(value) else 0


# ---- SETBIT / GETBIT ----------------------------------------------------------------------------------------------


@command(
    "setbit",
    4,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Sets or clears one bit of a string, zero-padding or creating it; replies with the bit's old value.",
    since="2.2.0",
)
def setbit(ctx: Context, argv: list[bytes]) -> Any:
    offset = _bit_offset(ctx, argv[2])
    on = try_int(argv[3])
    if on is None or on not in (0, 1):
        raise CommandError(BIT_VALUE_INVALID)
    key, db, keyspace = argv[1], ctx.client.db, ctx.keyspace
    index, mask = offset >> 3, 0x80 >> (offset & 7)
    value = _string(ctx, key)
    if value is None:
        _room(ctx, key, index + 1)
        with ctx.engine.atomic():  # never an empty key after a crash
            value = keyspace.create(db, key, "string")
            value.set_range(index, bytes((mask if on else 0,)))
        keyspace.touch(db, key)
        return 0
    byte = _byte(value, index)
    was = 1 if byte & mask else 0
    if was != on or index >= len(value):
        value.set_range(index, bytes((byte | mask if on else byte & ~mask,)))
        keyspace.touch(db, key)
    return was


@command(
    "getbit",
    3,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Replies with one bit of a string: 0 past its end or for a missing key.",
    since="2.2.0",
)
def getbit(ctx: Context, argv: list[bytes]) -> Any:
    offset = _bit_offset(ctx, argv[2])
    value = _string(ctx, argv[1])
    if value is None:
        return 0
    return 1 if _byte(value, offset >> 3) & (0x80 >> (offset & 7)) else 0


# ---- BITCOUNT / BITPOS --------------------------------------------------------------------------------------------


@command(
    "bitcount",
    -2,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Counts the set bits of a string, or of a range of its bytes or bits.",
    since="2.6.0",
    complexity="O(N)",
    options=("BYTE", "BIT"),
)
def bitcount(ctx: Context, argv: list[bytes]) -> Any:
    value = _string(ctx, argv[1])
    if value is None:  # before the arguments are looked at, as in Redis
        return 0
    if len(argv) == 2:
        return bits.bitcount(len(value), value.substring)
    if len(argv) > 5 or len(argv) == 3:
        raise CommandError(errors.SYNTAX)
    start, end = parse_int(argv[2]), parse_int(argv[3])
    if start < 0 and end < 0 and start > end:  # decided before the unit is checked
        return 0
    bit_units = len(argv) == 5 and _bit_units(argv[4])
    return bits.bitcount(len(value), value.substring, start, end, bit_units=bit_units)


@command(
    "bitpos",
    -3,
    "readonly",
    (1, 1, 1),
    group=G,
    summary="Finds the first set or clear bit of a string, or of a range of its bytes or bits.",
    since="2.8.7",
    complexity="O(N)",
    options=("BYTE", "BIT"),
)
def bitpos(ctx: Context, argv: list[bytes]) -> Any:
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError(BITPOS_BIT_INVALID)
    value = _string(ctx, argv[1])
    if value is None:  # an endless run of zeros, whatever the range
        return -1 if bit else 0
    if len(argv) == 3:
        return bits.bitpos(len(value), value.substring, bit)
    if len(argv) > 6:
        raise CommandError(errors.SYNTAX)
    start = parse_int(argv[3])
    bit_units = len(argv) == 6 and _bit_units(argv[5])  # checked before the end is parsed, as in Redis
    end = parse_int(argv[4]) if len(argv) >= 5 else None
    return bits.bitpos(len(value), value.substring, bit, start, end, bit_units=bit_units)


# ---- BITOP --------------------------------------------------------------------------------------------------------


@command(
    "bitop",
    -4,
    "write denyoom",
    (2, -1, 1),
    group=G,
    summary="Stores the bitwise AND, OR, XOR or NOT of strings in a key, replacing what was there.",
    since="2.6.0",
    complexity="O(N)",
    options=("AND", "OR", "XOR", "NOT"),
)
def bitop(ctx: Context, argv: list[bytes]) -> Any:
    op = _keyword(argv[1])
    if op not in _OPS:
        raise CommandError(errors.SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError(BITOP_NOT_ONE_SOURCE)
    sources = []
    for key in argv[3:]:
        value = _string(ctx, key)
        sources.append(b"" if value is None else value.data)
    result = bits.bitop(op.decode(), sources)
    db, dest, keyspace = ctx.client.db, argv[2], ctx.keyspace
    if not result:
        keyspace.delete(db, dest)  # an empty result deletes the destination, of whatever type
        return 0
    _room(ctx, dest, len(result))  # once the old value is deleted the new one must not fail for room
    with ctx.engine.atomic():  # the old value (any type) and the new one: both or neither after a crash
        target = keyspace.replace(db, dest, "string")
        # Written as a range, not set: Redis's result is a new "raw" string, as a written range leaves it.
        target.set_range(0, result)
    return len(result)


# ---- BITFIELD / BITFIELD_RO ---------------------------------------------------------------------------------------

_GET, _SET, _INCRBY = b"get", b"set", b"incrby"
_ARGS = {_GET: 2, _SET: 3, _INCRBY: 3}  # arguments after each operation's name


@dataclass(slots=True)
class _FieldOp:
    kind: bytes  # _GET, _SET or _INCRBY
    offset: int
    width: int
    signed: bool
    number: int  # SET's value, INCRBY's increment
    overflow: Overflow


def _field_type(arg: bytes) -> tuple[bool, int]:
    """A field type ``i1``..``i64`` or ``u1``..``u63``: (signed, width). Redis reads the width as a C string."""
    signed = arg[:1] == b"i"
    if not signed and arg[:1] != b"u":
        raise CommandError(BITFIELD_TYPE_INVALID)
    width = try_int(arg[1:].split(b"\0", 1)[0])
    if width is None or not 1 <= width <= (64 if signed else 63):
        raise CommandError(BITFIELD_TYPE_INVALID)
    return signed, width


def _parse_field_ops(ctx: Context, argv: list[bytes]) -> list[_FieldOp]:
    """BITFIELD's operations, every one checked (in order) before anything runs; OVERFLOW applies to the operations
    after it."""
    ops = []
    overflow = Overflow.WRAP
    i = 2
    while i < len(argv):
        name = _keyword(argv[i])
        remaining = len(argv) - i - 1
        if name == b"overflow" and remaining >= 1:
            mode = _OVERFLOWS.get(_keyword(argv[i + 1]))
            if mode is None:
                raise CommandError(BITFIELD_OVERFLOW_INVALID)
            overflow = mode
            i += 2
            continue
        needed = _ARGS.get(name)
        if needed is None or remaining < needed:
            raise CommandError(errors.SYNTAX)
        signed, width = _field_type(argv[i + 1])
        offset = _bit_offset(ctx, argv[i + 2], width)
        number = parse_int(argv[i + 3]) if name != _GET else 0
        ops.append(_FieldOp(name, offset, width, signed, number, overflow))
        i += 1 + needed
    return ops


class _Bytes:
    """A string's bytes as a BITFIELD sees them while it runs: its own writes over the stored value (zeros past
    the end). Only the changed bytes are held; they are written back once all operations ran."""

    __slots__ = ("changed", "length", "value")

    def __init__(self, value: StringValue | None) -> None:
        self.value = value
        self.length = 0 if value is None else len(value)
        self.changed: dict[int, int] = {}

    def read(self, start: int, end: int) -> bytes:
        stored = b"" if self.value is None or start >= self.length else self.value.substring(start, end)
        chunk = bytearray(stored.ljust(end - start, b"\0"))
        for index in range(start, end):
            byte = self.changed.get(index)
            if byte is not None:
                chunk[index - start] = byte
        return bytes(chunk)

    def write(self, start: int, chunk: bytes) -> None:
        for index, byte in enumerate(chunk, start):
            self.changed[index] = byte

    def runs(self, grow_to: int) -> list[tuple[int, bytes]]:
        """The changed bytes as (offset, bytes) runs, the string grown to ``grow_to`` bytes (zeros) if shorter."""
        original = _Bytes(self.value)
        changed = {i: b for i, b in self.changed.items() if b != original.read(i, i + 1)[0]}
        if grow_to > self.length and grow_to - 1 not in changed:
            changed[grow_to - 1] = self.changed.get(grow_to - 1, 0)
        runs: list[tuple[int, bytearray]] = []
        for index in sorted(changed):
            if runs and runs[-1][0] + len(runs[-1][1]) == index:
                runs[-1][1].append(changed[index])
            else:
                runs.append((index, bytearray((changed[index],))))
        return [(start, bytes(chunk)) for start, chunk in runs]


def _get(view: _Bytes, op: _FieldOp) -> int:
    return bits.get_field(view.read(*bits.field_span(op.offset, op.width)), op.offset & 7, op.width, op.signed)


def _bitfield(ctx: Context, argv: list[bytes], *, readonly: bool) -> Any:
    ops = _parse_field_ops(ctx, argv)
    key, db, keyspace = argv[1], ctx.client.db, ctx.keyspace
    writes = [op for op in ops if op.kind != _GET]
    if writes and readonly:
        raise CommandError(BITFIELD_RO_GET_ONLY)
    value = _string(ctx, key)
    view = _Bytes(value)
    if not writes:
        return [_get(view, op) for op in ops]
    # As in Redis, the string grows to the farthest field written, even when that write fails under FAIL.
    grow_to = max(bits.field_span(op.offset, op.width)[1] for op in writes)
    grows = grow_to > view.length
    replies: list[int | None] = []
    changes = 0
    for op in ops:
        first, end = bits.field_span(op.offset, op.width)
        chunk = view.read(first, end)
        local = op.offset & 7
        old = bits.get_field(chunk, local, op.width, op.signed)
        if op.kind == _GET:
            replies.append(old)
            continue
        if op.kind == _INCRBY:
            new = bits.incr_field(old, op.number, op.width, op.signed, op.overflow)
        else:
            new = bits.set_field_value(op.number, op.width, op.signed, op.overflow)
        if new is None:  # overflow under FAIL: nothing written
            replies.append(None)
            continue
        replies.append(new if op.kind == _INCRBY else old)
        at, written = bits.put_field(chunk, local, op.width, new)
        view.write(first + at, written)
        if grows or new != old:
            changes += 1
    runs = view.runs(grow_to)
    if value is None or len(runs) > 1:
        _room(ctx, key, grow_to if value is None else sum(len(chunk) for _, chunk in runs))
    with ctx.engine.atomic():  # a new key and all its writes, or several runs: all or nothing after a crash
        if value is None:
            value = keyspace.create(db, key, "string")
        for start, chunk in runs:
            value.set_range(start, chunk)
    if changes:
        keyspace.touch(db, key)
    return replies


@command(
    "bitfield",
    -2,
    "write denyoom",
    (1, 1, 1),
    group=G,
    summary="Reads, writes and increments integer fields of any width at any bit offset of a string.",
    since="3.2.0",
    complexity="O(1) per operation",
    options=("GET", "SET", "INCRBY", "OVERFLOW", "WRAP", "SAT", "FAIL"),
)
def bitfield(ctx: Context, argv: list[bytes]) -> Any:
    return _bitfield(ctx, argv, readonly=False)


@command(
    "bitfield_ro",
    -2,
    "readonly fast",
    (1, 1, 1),
    group=G,
    summary="Reads integer fields of a string as BITFIELD GET does, and refuses any write.",
    since="6.0.0",
    complexity="O(1) per operation",
    options=("GET",),
)
def bitfield_ro(ctx: Context, argv: list[bytes]) -> Any:
    return _bitfield(ctx, argv, readonly=True)
