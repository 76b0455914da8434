"""The bit operations on string values, as pure functions over bytes (no storage, no protocol).

Bit 0 of a string is the most significant bit of its first byte, as in Redis's SETBIT, BITPOS and BITFIELD. Ranges
follow Redis 7.0's bitops.c: negative indexes count from the end, then the range is clamped to the string. The
scans (popcount, first set or clear bit) run in the C module when it is built; their Python twins define the
result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from respq import speedups

# BITFIELD's OVERFLOW modes. Numbers are internal only.


class Overflow(enum.IntEnum):
    WRAP = 0
    SAT = 1
    FAIL = 2


_INT64_MIN = -(1 << 63)
_CHUNK = 1 << 16  # bytes per int conversion in the pure-Python scans: keeps the temporary objects small


# ---- scans over whole bytes ---------------------------------------------------------------------------------------


def _popcount_py(data: bytes, start: int, end: int) -> int:
    view = memoryview(data)
    return sum(int.from_bytes(view[i : min(i + _CHUNK, end)], "little").bit_count() for i in range(start, end, _CHUNK))


def _first_bit_py(data: bytes, bit: int, start: int, end: int) -> int:
    skip = b"\x00" if bit else b"\xff"
    for i in range(start, end, _CHUNK):
        chunk = data[i : min(i + _CHUNK, end)]
        rest = chunk.lstrip(skip)
        if rest:
            byte = rest[0] if bit else rest[0] ^ 0xFF
            return (i + len(chunk) - len(rest)) * 8 + 8 - byte.bit_length()
    return -1


def popcount(data: bytes, start: int = 0, end: int | None = None) -> int:
    """The number of set bits in bytes ``data[start:end]``."""
    if end is None or end > len(data):
        end = len(data)
    if start >= end:
        return 0
    if speedups.popcount is not None:
        return speedups.popcount(data, start, end)
    return _popcount_py(data, start, end)


def first_bit(data: bytes, bit: int, start: int = 0, end: int | None = None) -> int:
    """The position (in bits, from the start of ``data``) of the first bit equal to ``bit`` in bytes
    ``data[start:end]``; -1 when there is none."""
    if end is None or end > len(data):
        end = len(data)
    if start >= end:
        return -1
    if speedups.first_bit is not None:
        return speedups.first_bit(data, bit, start, end)
    return _first_bit_py(data, bit, start, end)


# ---- BITCOUNT and BITPOS ------------------------------------------------------------------------------------------

# How BITCOUNT and BITPOS see a value: ``read(start, end)`` returns its bytes [start, end) (within the value), so a
# scan copies what it looks at, a chunk at a time, rather than the whole value.
Reader = Callable[[int, int], bytes]
READ_CHUNK = 1 << 20


def clamp_range(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's range rule: negative indexes count from ``total``; then both are clamped into ``[0, total)`` (an empty
    range comes out with start > end)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = min(max(end, 0), total - 1)
    return start, end


def _edge_masks(start: int, end: int) -> tuple[int, int]:
    """For the bit range [start, end]: the bits of its first byte before start, of its last byte after end."""
    return (0xFF00 >> (start & 7)) & 0xFF, (1 << (7 - (end & 7))) - 1


def bitcount(length: int, read: Reader, start: int = 0, end: int = -1, *, bit_units: bool = False) -> int:
    """BITCOUNT of a value of ``length`` bytes: set bits between indexes ``start`` and ``end`` (inclusive; bytes,
    or bits with ``bit_units``)."""
    if start < 0 and end < 0 and start > end:
        return 0
    start, end = clamp_range(start, end, length * 8 if bit_units else length)
    if start > end:
        return 0
    if bit_units:
        before, after = _edge_masks(start, end)
        start, end = start >> 3, end >> 3
        if before or after:
            edges = read(start, start + 1)[0] & before, read(end, end + 1)[0] & after
            return _count(read, start, end + 1) - edges[0].bit_count() - edges[1].bit_count()
    return _count(read, start, end + 1)


def _count(read: Reader, start: int, end: int) -> int:
    return sum(popcount(read(i, min(i + READ_CHUNK, end))) for i in range(start, end, READ_CHUNK))


def _find(read: Reader, bit: int, start: int, end: int) -> int:
    """The first bit equal to ``bit`` in bytes [start, end), as a bit position in the value; -1 if none."""
    for i in range(start, end, READ_CHUNK):
        found = first_bit(read(i, min(i + READ_CHUNK, end)), bit)
        if found >= 0:
            return i * 8 + found
    return -1


def _in_byte(byte: int, bit: int, outside: int) -> int:
    """The first ``bit`` in ``byte`` (0 = its most significant bit), ignoring the ``outside`` bits; -1 if none."""
    byte = byte & ~outside if bit else (byte | outside) ^ 0xFF
    return 8 - byte.bit_length() if byte else -1


def _first_bit_in(read: Reader, bit: int, start: int, end: int) -> int:
    """The first bit equal to ``bit`` at bit positions [start, end] of the value (both inside it); -1 if none."""
    first, last = start >> 3, end >> 3
    before, after = _edge_masks(start, end)
    if first == last:
        found = _in_byte(read(first, first + 1)[0], bit, before | after)
        return -1 if found < 0 else first * 8 + found
    if before:
        found = _in_byte(read(first, first + 1)[0], bit, before)
        if found >= 0:
            return first * 8 + found
        first += 1
    found = _find(read, bit, first, last if after else last + 1)
    if found >= 0 or not after:
        return found
    found = _in_byte(read(last, last + 1)[0], bit, after)
    return -1 if found < 0 else last * 8 + found


def bitpos(
    length: int, read: Reader, bit: int, start: int = 0, end: int | None = None, *, bit_units: bool = False
) -> int:
    """BITPOS of an existing value of ``length`` bytes: the first ``bit`` between indexes ``start`` and ``end``
    (bytes, or bits with ``bit_units``). Looking for a 0 with no end given, the value counts as padded with zeros:
    past an all-ones range the answer is the first bit after the value. With an end given, or looking for a 1,
    none is -1."""
    total = length * 8 if bit_units else length
    first, last = clamp_range(start, -1 if end is None else end, total)
    if first > last:
        return -1
    if not bit_units:
        first, last = first * 8, last * 8 + 7
    found = _first_bit_in(read, bit, first, last)
    if found < 0 and bit == 0 and end is None:
        return last + 1
    return found


# ---- BITOP --------------------------------------------------------------------------------------------------------


def bitop(op: str, sources: list[bytes]) -> bytes:
    """BITOP's result: ``op`` is "and", "or", "xor" or "not" (one source); shorter sources count as padded with
    zero bytes to the longest. Empty when every source is."""
    length = max(map(len, sources), default=0)
    if not length:
        return b""
    # Little-endian, a source's missing tail bytes are the integer's missing high bytes: zeros.
    values = [int.from_bytes(source, "little") for source in sources]
    result = values[0]
    if op == "not":
        result ^= (1 << (8 * length)) - 1
    elif op == "and":
        for value in values[1:]:
            result &= value
    elif op == "or":
        for value in values[1:]:
            result |= value
    elif op == "xor":
        for value in values[1:]:
            result ^= value
    else:
        raise ValueError(op)
    return result.to_bytes(length, "little")


# ---- BITFIELD -----------------------------------------------------------------------------------------------------


def field_span(offset: int, bits: int) -> tuple[int, int]:
    """The bytes [first, end) a field of ``bits`` bits at bit ``offset`` occupies."""
    return offset >> 3, ((offset + bits - 1) >> 3) + 1


def get_field(data: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The integer of ``bits`` bits at bit ``offset`` (big-endian bit order); bytes past the end of data read as 0."""
    first, end = field_span(offset, bits)
    chunk = int.from_bytes(data[first:end], "big") << (8 * (end - first - len(data[first:end])))
    value = (chunk >> (8 * (end - first) - (offset & 7) - bits)) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def put_field(data: bytes | bytearray, offset: int, bits: int, value: int) -> tuple[int, bytes]:
    """Writes ``value`` (its low ``bits`` bits, two's complement) at bit ``offset``: returns the first byte index and
    the new bytes of the field's span, to write over data (which may be shorter: missing bytes are zeros)."""
    first, end = field_span(offset, bits)
    size = end - first
    old = data[first:end]
    chunk = int.from_bytes(old, "big") << (8 * (size - len(old)))
    shift = 8 * size - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    chunk = (chunk & ~mask) | ((value << shift) & mask)
    return first, chunk.to_bytes(size, "big")


def _limits(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _wrap(value: int, bits: int, signed: bool) -> int:
    if signed:
        half = 1 << (bits - 1)
        return (value + half) % (1 << bits) - half
    return value % (1 << bits)


def _resolve(value: int, bits: int, signed: bool, overflow: Overflow, high: bool) -> int | None:
    """The value written for an out-of-range ``value`` (``high``: beyond the maximum, else below the minimum);
    None under FAIL."""
    if overflow is Overflow.FAIL:
        return None
    if overflow is Overflow.SAT:
        low_limit, high_limit = _limits(bits, signed)
        return high_limit if high else low_limit
    return _wrap(value, bits, signed)


def incr_field(old: int, increment: int, bits: int, signed: bool, overflow: Overflow) -> int | None:
    """BITFIELD INCRBY: the field's new value, None when it overflows under FAIL (nothing written)."""
    new = old + increment
    low, high = _limits(bits, signed)
    if low <= new <= high:
        return new
    return _resolve(new, bits, signed, overflow, new > high)


def set_field_value(value: int, bits: int, signed: bool, overflow: Overflow) -> int | None:
    """BITFIELD SET: the value written for a 64-bit signed ``value``, None when it overflows under FAIL.

    Redis checks the value as its overflow check sees it: an unsigned field takes the value as a 64-bit unsigned
    integer (a negative value is too large: SAT writes the maximum), and a signed field narrower than 64 bits
    counts a value within the field's maximum of -2**63 as too large (its check computes max - value in 64 bits,
    which wraps), so SAT writes the maximum there too."""
    low, high = _limits(bits, signed)
    if low <= value <= high:
        return value
    # Unsigned: past the maximum, or negative (a huge unsigned number).
    too_large = value > high or (bits < 64 and value <= high + _INT64_MIN) if signed else True
    return _resolve(value, bits, signed, overflow, too_large)
