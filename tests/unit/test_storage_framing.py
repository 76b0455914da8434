"""Record framing: torn tails, flipped bits, and forward/backward agreement."""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import require_speedups
from respq.storage import fileio, framing, journal
from respq.types.streams import model as streamlog

VALUES = [b"", b"a", b"hello world", bytes(range(256)), b"x" * 1000]


def _file(values: list[bytes]) -> tuple[bytes, list[int]]:
    """Records back to back, with the offset at which each record ends."""
    data = b""
    ends = []
    for value in values:
        data += framing.frame(framing.REC_LIST_VALUE, value)
        ends.append(len(data))
    return data, ends


def _scan(data: bytes) -> tuple[list[bytes], framing.ScanError | None]:
    found: list[bytes] = []
    try:
        for _, _, payload in framing.scan_file(lambda n, at: data[at : at + n], 0, len(data), block=64):
            found.append(bytes(payload))
    except framing.ScanError as error:
        return found, error
    return found, None


def test_forward_and_backward_reads_agree() -> None:
    data, _ = _file(VALUES)
    forward, error = _scan(data)
    assert error is None
    assert forward == VALUES
    backward = []
    end = len(data)
    while end > 0:
        _, payload_start, start = framing.parse_backward(data, end, 0)
        backward.append(data[payload_start : end - framing.TAIL_SIZE])
        end = start
    assert backward[::-1] == VALUES


def test_frame_values_matches_single_frames() -> None:
    assert framing.frame_values(framing.REC_LIST_VALUE, VALUES) == _file(VALUES)[0]


def test_truncation_at_every_offset_recovers_to_the_previous_record() -> None:
    data, ends = _file(VALUES)
    for cut in range(len(data)):
        found, error = _scan(data[:cut])
        complete = sum(1 for end in ends if end <= cut)
        assert found == VALUES[:complete], cut
        boundary = ends[complete - 1] if complete else 0
        if cut == boundary:
            assert error is None
        else:
            assert error is not None and error.at_eof and error.offset == boundary, cut


def test_every_flipped_bit_is_detected() -> None:
    data, _ = _file([b"abc", b"payload of a record", b"z"])
    for position in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            found, error = _scan(bytes(damaged))
            assert error is not None, (position, bit)
            # Whatever came before the damaged record is still intact.
            assert all(value in (b"abc", b"payload of a record", b"z") for value in found)


def test_backward_read_detects_mismatched_lengths() -> None:
    data = bytearray(framing.frame(framing.REC_LIST_VALUE, b"abcdef"))
    data[-4] ^= 1  # trailing length no longer matches the leading one
    with pytest.raises(framing.FramingError):
        framing.parse_backward(bytes(data), len(data), 0)


# ---- the C twins (respq/_speedups.c) write exactly the bytes of the Python functions -------------------------
_values = st.lists(st.binary(max_size=300), max_size=20)


@given(data=st.binary(max_size=600), start=st.integers(min_value=0, max_value=0xFFFF_FFFF))
def test_c_crc32c_agrees_with_the_crc32c_package(data: bytes, start: int) -> None:
    module = require_speedups()
    expected = crc32c.crc32c(data, start)
    assert module.crc32c(data, start) == expected
    assert module.crc32c(data, start, True) == expected  # the portable implementation, used off x86-64


@given(rtype=st.integers(min_value=0, max_value=255), values=_values)
def test_c_framing_writes_the_same_bytes(rtype: int, values: list[bytes]) -> None:
    module = require_speedups()
    assert module.frame_values(rtype, values) == framing.py_frame_values(rtype, values)
    assert module.frame_values(rtype, tuple(values)) == framing.py_frame_values(rtype, values)
    assert module.encode_values(values) == journal.py_encode_values(values)
    for value in values[:3]:
        assert module.frame(rtype, value) == framing.py_frame(rtype, value)
        assert module.frame(rtype, memoryview(value)) == framing.py_frame(rtype, value)


def test_c_framing_refuses_what_python_refuses() -> None:
    module = require_speedups()
    with pytest.raises(ValueError):
        module.frame(256, b"x")
    with pytest.raises(TypeError):
        module.frame_values(1, [b"a", "not bytes"])
    with pytest.raises(TypeError):
        module.encode_values(None)
    assert module.frame_values(1, []) == b"" == module.encode_values([])


@given(
    values=_values,
    flip=st.none() | st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    cut=st.integers(min_value=0, max_value=40),
    start=st.integers(min_value=0, max_value=30),
    count=st.integers(min_value=0, max_value=25),
)
def test_c_record_scan_agrees_with_python(
    values: list[bytes], flip: tuple[int, int] | None, cut: int, start: int, count: int
) -> None:
    """Scans, forward and backward, stop at the same record whether it is torn, corrupt or past the limit."""
    module = require_speedups()
    data = bytearray(framing.py_frame_values(framing.REC_LIST_VALUE, values))
    if flip is not None and data:
        data[flip[0] % len(data)] ^= flip[1]
    blob = bytes(data)
    limit = max(0, len(blob) - cut)
    for pos in (0, start):
        assert module.scan_records(blob, pos, limit, count) == framing.py_scan_records(blob, pos, limit, count)
    for low in (0, min(start, limit)):
        assert module.scan_records_backward(blob, limit, low, count) == framing.py_scan_records_backward(
            blob, limit, low, count
        )
    if flip is None and cut == 0:  # intact: the scan reads every record, last first
        assert module.scan_records_backward(blob, len(blob), 0, len(values))[0] == values[::-1]


@given(reads=st.lists(st.tuples(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=80))))
def test_c_pread_many_agrees_with_python(
    tmp_path_factory: pytest.TempPathFactory, reads: list[tuple[int, int]]
) -> None:
    """Reads inside the file, across its end (short) and past it (empty)."""
    module = require_speedups()
    path = tmp_path_factory.mktemp("pread") / "file"
    path.write_bytes(bytes(range(256)))
    fd = os.open(path, os.O_RDONLY)
    try:
        offsets, lengths = [offset for offset, _ in reads], [length for _, length in reads]
        assert module.pread_many(fd, offsets, lengths) == fileio.py_pread_many(fd, offsets, lengths)
        assert module.pread_many(fd, array("Q", offsets), array("I", lengths)) == fileio.py_pread_many(
            fd, offsets, lengths
        )
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        module.pread_many(fd, [0], [1])  # closed


def _decoded(data: bytes, start: int, *decoders: Callable[[bytes, int], list[bytes]]) -> list[list[bytes] | str]:
    """What each decoder makes of ``data``: its values, or its ValueError's message."""
    outcomes: list[list[bytes] | str] = []
    for decode in decoders:
        try:
            outcomes.append(decode(data, start))
        except ValueError as error:
            outcomes.append(str(error))
    return outcomes


@given(values=_values, prefix=st.binary(max_size=20), damage=st.integers(min_value=-6, max_value=6))
def test_c_decode_values_agrees_with_python(values: list[bytes], prefix: bytes, damage: int) -> None:
    module = require_speedups()
    data = prefix + journal.py_encode_values(values)
    if damage < 0:
        data = data[:damage]  # a truncated list is malformed, whichever way it was cut
    elif damage > 0:
        data += bytes(damage)
    outcomes = _decoded(data, len(prefix), module.decode_values, journal.py_decode_values)
    assert outcomes[0] == outcomes[1]
    if damage == 0:
        assert outcomes[0] == values


_long_values = st.lists(st.binary(max_size=40) | st.sampled_from([b"x" * 127, b"y" * 128, b"z" * 20000]), max_size=6)


@given(values=_long_values, prefix=st.binary(max_size=20), damage=st.integers(min_value=-6, max_value=6))
def test_c_stream_fields_agree_with_python(values: list[bytes], prefix: bytes, damage: int) -> None:
    """Stream entries' fields after varint lengths: the same bytes, and the same values or error read back."""
    module = require_speedups()
    encoded = streamlog.py_encode_fields(values)
    assert module.encode_fields(values) == encoded
    assert module.encode_fields(tuple(values)) == encoded
    data = prefix + encoded
    if damage < 0:
        data = data[:damage]
    elif damage > 0:
        data += b"\xff" * damage  # an unfinished varint at the end
    outcomes = _decoded(data, len(prefix), module.decode_fields, streamlog.py_decode_fields)
    assert outcomes[0] == outcomes[1]
    if damage == 0:
        assert outcomes[0] == values
    elif damage > 0:
        assert outcomes[0] == streamlog.MALFORMED_ENTRY
