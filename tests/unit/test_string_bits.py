"""The bit functions of string values against a plain model: the string as a list of bits, scanned one at a time,
and Redis's overflow checks written out in 64-bit arithmetic as bitops.c does them."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from respq import speedups
from respq.types.strings import bits
from respq.types.strings.bits import Overflow

MASK64 = (1 << 64) - 1


def reader(data: bytes) -> bits.Reader:
    def read(start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(data), "reads stay inside the value"
        return data[start:end]

    return read


def of(data: bytes) -> tuple[int, bits.Reader]:
    return len(data), reader(data)


def as_bits(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def model_range(start: int, end: int, total: int) -> tuple[int, int]:
    start = max(start + total if start < 0 else start, 0)
    end = min(max(end + total if end < 0 else end, 0), total - 1)
    return start, end


def model_bitcount(data: bytes, start: int, end: int, bit_units: bool) -> int:
    if start < 0 and end < 0 and start > end:
        return 0
    scale = 1 if bit_units else 8
    start, end = model_range(start, end, len(data) * 8 // scale)
    return sum(as_bits(data)[start * scale : (end + 1) * scale])


def model_bitpos(data: bytes, bit: int, start: int, end: int | None, bit_units: bool) -> int:
    scale = 1 if bit_units else 8
    first, last = model_range(start, -1 if end is None else end, len(data) * 8 // scale)
    if first > last:
        return -1
    positions = range(first * scale, (last + 1) * scale)
    found = next((i for i in positions if as_bits(data)[i] == bit), -1)
    if found < 0 and bit == 0 and end is None:
        return (last + 1) * scale
    return found


def model_bitop(op: str, sources: list[bytes]) -> bytes:
    length = max(map(len, sources), default=0)
    out = bytearray()
    for j in range(length):
        column = [source[j] if j < len(source) else 0 for source in sources]
        if op == "not":
            out.append(~column[0] & 0xFF)
            continue
        byte = column[0]
        for other in column[1:]:
            byte = {"and": byte & other, "or": byte | other, "xor": byte ^ other}[op]
        out.append(byte)
    return bytes(out)


def model_get(data: bytes, offset: int, width: int, signed: bool) -> int:
    padded = as_bits(data) + [0] * (offset + width)
    value = 0
    for i in range(width):
        value = value << 1 | padded[offset + i]
    return value - (1 << width) if signed and value >> (width - 1) else value


def model_put(data: bytes, offset: int, width: int, value: int) -> bytes:
    """The whole string after the write, grown with zero bytes to hold the field."""
    need = (offset + width + 7) // 8
    bitlist = as_bits(data.ljust(need, b"\0"))
    for i in range(width):
        bitlist[offset + i] = (value >> (width - 1 - i)) & 1
    return bytes(int("".join(map(str, bitlist[k : k + 8])), 2) for k in range(0, len(bitlist), 8))


def s64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def redis_unsigned_check(value: int, incr: int, width: int, owtype: Overflow) -> tuple[int, int | None]:
    """checkUnsignedBitfieldOverflow in 64-bit arithmetic: (status, limit)."""
    value &= MASK64
    maximum = (1 << width) - 1
    maxincr, minincr = s64(maximum - value), s64(-value)
    wrapped = ((value + incr) & MASK64) & maximum
    if value > maximum or (incr > 0 and incr > maxincr):
        return 1, {Overflow.WRAP: wrapped, Overflow.SAT: maximum}.get(owtype)
    if incr < 0 and incr < minincr:
        return -1, {Overflow.WRAP: wrapped, Overflow.SAT: 0}.get(owtype)
    return 0, None


def redis_signed_check(value: int, incr: int, width: int, owtype: Overflow) -> tuple[int, int | None]:
    """checkSignedBitfieldOverflow in 64-bit arithmetic: (status, limit)."""
    maximum = (1 << 63) - 1 if width == 64 else (1 << (width - 1)) - 1
    minimum = -maximum - 1
    maxincr, minincr = s64(maximum - value), s64(minimum - value)
    c = (value + incr) & MASK64
    if width < 64:
        c = c | (MASK64 << width) & MASK64 if c & (1 << (width - 1)) else c & ~(MASK64 << width)
    wrapped = s64(c)
    if value > maximum or (width != 64 and incr > maxincr) or (value >= 0 and incr > 0 and incr > maxincr):
        return 1, {Overflow.WRAP: wrapped, Overflow.SAT: maximum}.get(owtype)
    if value < minimum or (width != 64 and incr < minincr) or (value < 0 and incr < 0 and incr < minincr):
        return -1, {Overflow.WRAP: wrapped, Overflow.SAT: minimum}.get(owtype)
    return 0, None


def model_incr(old: int, incr: int, width: int, signed: bool, owtype: Overflow) -> int | None:
    check = redis_signed_check if signed else redis_unsigned_check
    status, limit = check(old, incr, width, owtype)
    if not status:
        return old + incr
    return None if owtype is Overflow.FAIL else limit


def model_set(value: int, width: int, signed: bool, owtype: Overflow) -> int | None:
    check = redis_signed_check if signed else redis_unsigned_check
    status, limit = check(value, 0, width, owtype)
    if not status:
        return value
    return None if owtype is Overflow.FAIL else limit


# ---- strategies -----------------------------------------------------------------------------------------------------

# Mostly short strings of a few byte values, so that runs of 0x00 and 0xff (and whole words of them) are common.
data = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from([0, 0xFF, 1, 0x80, 0x7F, 0xFE]), max_size=40).map(bytes),
)
index = st.integers(-400, 400) | st.sampled_from([-(1 << 63), (1 << 63) - 1])
int64 = st.integers(-(1 << 63), (1 << 63) - 1)
overflow = st.sampled_from(list(Overflow))
chunk = st.sampled_from([1, 3, 8, bits.READ_CHUNK])  # how much BITCOUNT/BITPOS read at a time


@st.composite
def field_type(draw: st.DrawFn) -> tuple[int, bool]:
    signed = draw(st.booleans())
    return draw(st.integers(1, 64 if signed else 63)), signed


# ---- scans ----------------------------------------------------------------------------------------------------------


@given(data, index, index, st.booleans(), chunk)
def test_bitcount_matches_the_model(value: bytes, start: int, end: int, bit_units: bool, read_chunk: int) -> None:
    expected = model_bitcount(value, start, end, bit_units)
    with patch.object(bits, "READ_CHUNK", read_chunk):
        assert bits.bitcount(*of(value), start, end, bit_units=bit_units) == expected


@given(data)
def test_bitcount_of_the_whole_string(value: bytes) -> None:
    assert bits.bitcount(*of(value)) == sum(as_bits(value))


@given(data, st.integers(0, 1), index, index | st.none(), st.booleans(), chunk)
def test_bitpos_matches_the_model(
    value: bytes, bit: int, start: int, end: int | None, bit_units: bool, read_chunk: int
) -> None:
    if bit_units and end is None:
        end = -1  # BITPOS takes BIT/BYTE only after an end
    expected = model_bitpos(value, bit, start, end, bit_units)
    with patch.object(bits, "READ_CHUNK", read_chunk):
        assert bits.bitpos(*of(value), bit, start, end, bit_units=bit_units) == expected


def test_bitpos_examples_from_the_redis_docs() -> None:
    assert bits.bitpos(*of(b"\xff\xf0\x00"), 0) == 12
    assert bits.bitpos(*of(b"\x00\xff\xf0"), 1, 0) == 8
    assert bits.bitpos(*of(b"\x00\xff\xf0"), 1, 2) == 16
    assert bits.bitpos(*of(b"\x00\xff\xf0"), 1, 2, -1, bit_units=False) == 16
    assert bits.bitpos(*of(b"\x00\xff\xf0"), 1, 7, 15, bit_units=True) == 8
    assert bits.bitpos(*of(b"\xff\xff"), 0) == 16  # the right of the string counts as zeros
    assert bits.bitpos(*of(b"\xff\xff"), 0, 0, -1) == -1  # ... unless an end is given
    assert bits.bitpos(*of(b""), 0) == -1  # an existing empty string has no bit at all


@pytest.mark.parametrize("implementation", ["python", "c"])
@given(value=data, bit=st.integers(0, 1), start=st.integers(0, 45), end=st.integers(0, 45))
def test_scans_agree_with_the_model(implementation: str, value: bytes, bit: int, start: int, end: int) -> None:
    if implementation == "c":
        if speedups.popcount is None or speedups.first_bit is None:
            pytest.skip("the C module is not built")
        popcount, first_bit = speedups.popcount, speedups.first_bit
    else:
        popcount, first_bit = bits._popcount_py, bits._first_bit_py
    start, end = min(start, len(value)), min(end, len(value))
    start, end = min(start, end), max(start, end)
    bitlist = as_bits(value)
    assert popcount(value, start, end) == sum(bitlist[start * 8 : end * 8])
    expected = next((i for i in range(start * 8, end * 8) if bitlist[i] == bit), -1)
    assert first_bit(value, bit, start, end) == expected


def test_scans_cross_word_and_chunk_boundaries() -> None:
    for size in (7, 8, 9, 63, 64, 65, bits._CHUNK - 1, bits._CHUNK, bits._CHUNK + 3):
        for at in {0, size // 2, size - 1}:
            zeros = bytearray(size)
            zeros[at] = 0x10
            ones = bytearray(b"\xff" * size)
            ones[at] = 0xEF
            for scan in (bits._first_bit_py, speedups.first_bit):
                if scan is None:
                    continue
                assert scan(bytes(zeros), 1, 0, size) == at * 8 + 3
                assert scan(bytes(ones), 0, 0, size) == at * 8 + 3
                assert scan(bytes(zeros), 1, at + 1, size) == -1
            for count in (bits._popcount_py, speedups.popcount):
                if count is not None:
                    assert count(bytes(ones), 0, size) == size * 8 - 1


# ---- BITOP ----------------------------------------------------------------------------------------------------------


@given(st.sampled_from(["and", "or", "xor"]), st.lists(data, min_size=1, max_size=5))
def test_bitop_matches_the_model(op: str, sources: list[bytes]) -> None:
    assert bits.bitop(op, sources) == model_bitop(op, sources)


@given(data)
def test_bitop_not_matches_the_model(source: bytes) -> None:
    assert bits.bitop("not", [source]) == model_bitop("not", [source])


def test_bitop_of_empty_sources_is_empty() -> None:
    assert bits.bitop("and", [b"", b""]) == b""
    assert bits.bitop("not", [b""]) == b""


# ---- BITFIELD -------------------------------------------------------------------------------------------------------


@given(data, st.integers(0, 400), field_type())
def test_get_field_matches_the_model(value: bytes, offset: int, kind: tuple[int, bool]) -> None:
    width, signed = kind
    assert bits.get_field(value, offset, width, signed) == model_get(value, offset, width, signed)


@given(data, st.integers(0, 400), field_type(), int64)
def test_put_field_matches_the_model(value: bytes, offset: int, kind: tuple[int, bool], number: int) -> None:
    width, _ = kind
    first, chunk = bits.put_field(value, offset, width, number)
    grown = bytearray(value.ljust(first + len(chunk), b"\0"))
    grown[first : first + len(chunk)] = chunk
    expected = model_put(value, offset, width, number)
    assert bytes(grown) == expected.ljust(len(grown), b"\0")
    assert len(grown) == max(len(value), len(expected))


@given(field_type(), int64, int64, overflow)
def test_incr_field_matches_redis_overflow_checks(kind: tuple[int, bool], old: int, incr: int, mode: Overflow) -> None:
    width, signed = kind
    old = bits._wrap(old, width, signed)  # a stored field's value is always in range
    assert bits.incr_field(old, incr, width, signed, mode) == model_incr(old, incr, width, signed, mode)


@given(field_type(), int64 | st.integers(-300, 300), overflow)
def test_set_field_value_matches_redis_overflow_checks(kind: tuple[int, bool], value: int, mode: Overflow) -> None:
    width, signed = kind
    assert bits.set_field_value(value, width, signed, mode) == model_set(value, width, signed, mode)


@settings(max_examples=50)
@given(st.integers(1, 63), overflow)
def test_set_field_edge_values(width: int, mode: Overflow) -> None:
    for signed in (True, False):
        for value in (-(1 << 63), -(1 << 63) + 1, (1 << 63) - 1, -1, 0, 1 << (width - 1), -(1 << (width - 1)) - 1):
            assert bits.set_field_value(value, width, signed, mode) == model_set(value, width, signed, mode)


def test_set_of_int64_min_saturates_high_in_a_narrow_signed_field() -> None:
    # Redis's overflow check computes max - value in 64 bits, which wraps: it takes INT64_MIN as too large.
    assert bits.set_field_value(-(1 << 63), 8, True, Overflow.SAT) == 127
    assert bits.set_field_value(-(1 << 63) + 200, 8, True, Overflow.SAT) == -128
    assert bits.set_field_value(-1, 8, False, Overflow.SAT) == 255
