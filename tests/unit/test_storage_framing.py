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
from respq.types.hashes import model as hashes_model
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


@given(
    fields=st.dictionaries(st.binary(max_size=40), st.binary(max_size=300), max_size=20),
    head=st.binary(max_size=2),
)
def test_c_hash_state_and_value_lists_write_the_same_bytes(fields: dict[bytes, bytes], head: bytes) -> None:
    """A hash's dict encoded in one call (its checkpoint state) and value lists of bytes read in place, or with
    other buffers among them: the Python twins' bytes."""
    module = require_speedups()
    assert module.encode_pairs(head, fields) == hashes_model.py_encode_pairs(head, fields)
    flat = [item for pair in fields.items() for item in pair]
    expected = journal.py_encode_values(flat)
    assert module.encode_values(flat) == module.encode_values(tuple(flat)) == expected
    kinds = (bytes, bytearray, memoryview)
    mixed = [kinds[n % 3](value) for n, value in enumerate(flat)]
    assert module.encode_values(mixed) == expected


def test_c_hash_state_leaves_values_not_bytes_to_python() -> None:
    module = require_speedups()
    assert module.encode_pairs(b"\x01", {b"a": bytearray(b"1")}) is None
    assert module.encode_pairs(b"", {"a": b"1"}) is None
    for args in [("h", {}), (b"", [(b"a", b"b")]), (b"",)]:
        with pytest.raises(TypeError):
            module.encode_pairs(*args)


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


_listpack_strings = st.sampled_from(
    [
        b"",
        b"0",
        b"-0",
        b"00",
        b"1",
        b"-1",
        b"127",
        b"128",
        b"-4096",
        b"-4097",
        b"4095",
        b"4096",
        b"32767",
        b"32768",
        b"8388607",
        b"-8388609",
        b"2147483647",
        b"2147483648",
        b"9223372036854775807",
        b"9223372036854775808",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b"+5",
        b" 5",
        b"5 ",
        b"1e3",
        b"\xd9\xa1",
        b"99999999999999999999",
        b"f",
        b"x" * 63,
        b"x" * 64,
        b"x" * 125,
        b"x" * 126,
        b"x" * 4095,
        b"x" * 4096,
        b"x" * 16380,
        b"x" * 20000,
    ]
) | st.binary(max_size=10)


@given(
    fields=st.lists(_listpack_strings, min_size=2, max_size=8).filter(lambda f: len(f) % 2 == 0),
    master=st.none() | st.lists(_listpack_strings, max_size=4).map(tuple),
    same=st.booleans(),
    ms_diff=st.sampled_from([0, 1, 127, 128, 5000, 1 << 31, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]),
    seq_diff=st.sampled_from([0, 5, (1 << 64) - 10, 1 << 40]),
    room=st.sampled_from([0, 1, 10, 100, 4096, 1 << 30]),
)
def test_c_listpack_sizes_agree_with_python(
    fields: list[bytes], master: tuple[bytes, ...] | None, same: bool, ms_diff: int, seq_diff: int, room: int
) -> None:
    """The listpack bytes an entry takes (where Redis starts a stream node): the C twin computes what Python does."""
    module = require_speedups()
    if same and master is not None:
        master = tuple(fields[0::2])
    expected = streamlog.py_lp_entry(fields, master, ms_diff, seq_diff, room)
    assert module.lp_entry(fields, master, ms_diff, seq_diff, room) == expected
    assert module.lp_entry([memoryview(f) for f in fields], master, ms_diff, seq_diff, room) == expected


def test_listpack_sizes_follow_redis_encoding() -> None:
    """Hand-checked against listpack.c: integers stored as integers, string lengths with their headers."""
    assert [streamlog.lp_string_size(s) for s in (b"0", b"127", b"128", b"-1", b"007", b"-0", b"x" * 63)] == [
        2,
        2,
        3,
        3,
        5,
        4,
        65,
    ]
    assert streamlog.lp_string_size(b"x" * 64) == 64 + 2 + 1  # a 12-bit length header, a 1-byte back length
    assert streamlog.lp_string_size(b"x" * 126) == 126 + 2 + 2  # 128 encoded bytes take a 2-byte back length
    # XADD s 1-0 f v alone: header and end byte; field count, "f", 0; flags, 0, 0, "v", lp-count (2 bytes per
    # small integer, 3 per one-byte string). The live and deleted counters (2 bytes each) are not counted.
    assert streamlog.py_lp_entry([b"f", b"v"], None, 0, 0, 0) == -(7 + 2 + 3 + 2 + 6 + 3 + 2)
    # The same fields again, 3 ms later: flags, ms 3, seq 0, "v", lp-count; with other fields their names too.
    assert streamlog.py_lp_entry([b"f", b"v"], (b"f",), 3, 0, 100) == 2 + 2 + 2 + 3 + 2
    assert streamlog.py_lp_entry([b"g", b"v"], (b"f",), 3, 0, 100) == 2 + 2 + 2 + 2 + 3 + 3 + 2
    # Redis starts a new node when the listpack's bytes plus the entry's field and value lengths reach the limit.
    assert streamlog.py_lp_entry([b"f", b"v"], (b"f",), 3, 0, 2) < 0
    assert streamlog.py_lp_entry([b"f", b"v"], (b"f",), 3, 0, 3) > 0


@given(
    fields=st.lists(_listpack_strings, min_size=2, max_size=6).filter(lambda f: len(f) % 2 == 0),
    tail=st.none()
    | st.tuples(
        st.sampled_from([1, 5, 1 << 40]),
        st.sampled_from([0, 3, (1 << 64) - 2]),
        st.integers(0, 200),
        st.integers(0, 200),
        st.sampled_from([10, 4000, 4090, streamlog.LP_UNKNOWN]),
    ),
    same=st.booleans(),
    ms=st.sampled_from([5, 1 << 40, (1 << 63) + 1]),
    seq=st.sampled_from([0, 2, 9]),
    max_entries=st.sampled_from([0, 1, 100, 150]),
    max_bytes=st.sampled_from([100, 4096, 1 << 30]),
)
def test_c_listpack_placement_agrees_with_python(
    fields: list[bytes],
    tail: tuple[int, int, int, int, int] | None,
    same: bool,
    ms: int,
    seq: int,
    max_entries: int,
    max_bytes: int,
) -> None:
    """Which listpack an entry joins, and the listpack array after it: the C twin decides as Python does."""
    module = require_speedups()
    names = tuple(fields[0::2]) if same else (b"other",)
    arrays = []
    for _ in range(2):
        listpacks = array("Q", [7, 7, 7, 7, 1, 1, 50])  # an earlier listpack, untouched
        if tail is not None:
            first_ms, first_seq, live, extra, size = tail
            listpacks.extend((first_ms, first_seq, first_ms, first_seq, live, live + extra, size))
        arrays.append(listpacks)
    got = module.lp_place(arrays[0], fields, names if tail else None, ms, seq, max_entries, max_bytes)
    expected = streamlog.py_lp_place(arrays[1], fields, names if tail else None, ms, seq, max_entries, max_bytes)
    assert got == expected
    assert arrays[0] == arrays[1]


@given(
    entries=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([b"v", b"x" * 1000, b"12", b"x" * 3000])),
        min_size=1,
        max_size=12,
    ),
    start=st.integers(0, 3),
    known=st.booleans(),
    max_entries=st.sampled_from([0, 2, 5]),
    max_bytes=st.sampled_from([100, 4096]),
)
def test_c_listpack_runs_agree_with_python(
    entries: list[tuple[int, int, bytes]], start: int, known: bool, max_entries: int, max_bytes: int
) -> None:
    """Entries placed while they join the last listpack: the C twin places as many as Python does, the same way."""
    module = require_speedups()
    ids, fields_list, ms = [], [], 7
    for ms_step, seq, value in entries:
        ms += ms_step
        ids.append(ms << 64 | seq + len(ids))
        fields_list.append([b"f", value])
    start = min(start, len(ids))
    size = 30 if known else streamlog.LP_UNKNOWN
    arrays = [array("Q", [7, 0, 7, 0, 1, 1, size]) for _ in range(2)]
    got = module.lp_join_many(arrays[0], (b"f",), fields_list, ids, start, max_entries, max_bytes)
    expected = streamlog.py_lp_join_many(arrays[1], (b"f",), fields_list, ids, start, max_entries, max_bytes)
    assert got == expected
    assert arrays[0] == arrays[1]
