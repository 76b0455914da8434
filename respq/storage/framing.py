"""Record framing shared by segment, journal and manifest files.

A record is ``[u32 length][u8 type][u32 crc32c(type + payload)][payload][u32 length]`` (little-endian). The
length at both ends lets a reader walk a file forward from any record start or backward from any record end,
and a mismatch between the two is itself a corruption signal. Every file starts with an 8-byte magic + version
followed by file-specific header fields.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate

import crc32c

from respq import speedups
from respq.storage.errors import FormatError

HEAD = struct.Struct("<IBI")
TAIL = struct.Struct("<I")
HEAD_SIZE = HEAD.size  # 9
TAIL_SIZE = TAIL.size  # 4
OVERHEAD = HEAD_SIZE + TAIL_SIZE
MAX_PAYLOAD = 0xFFFF_FFFF
SCAN_BLOCK = 1 << 20  # bytes ``scan_file`` reads at a time (more for a record longer than that)

# Record types. Segment files hold values; journal and manifest files hold their own types (see journal.py).
REC_LIST_VALUE = 1

# File headers: magic (6 bytes) + format version (u16) + file-specific fields.
FILE_PREFIX = struct.Struct("<6sH")
SEGMENT_MAGIC = b"RQSEG\x00"
JOURNAL_MAGIC = b"RQWAL\x00"
MANIFEST_MAGIC = b"RQMAN\x00"
FORMAT_VERSION = 4
SEGMENT_HEADER = struct.Struct("<6sHQQ")  # magic, version, queue id, file id
JOURNAL_HEADER = struct.Struct("<6sHQQ")  # magic, version, sequence number, LSN of its first record byte
MANIFEST_HEADER = FILE_PREFIX

_TYPE_CRC = [crc32c.crc32c(bytes([t])) for t in range(256)]


class FramingError(Exception):
    """A record does not parse at this position; ``incomplete`` means the bytes simply run out (a torn tail)."""

    def __init__(self, reason: str, *, incomplete: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.incomplete = incomplete


def checksum(rtype: int, payload: bytes | memoryview) -> int:
    return crc32c.crc32c(payload, _TYPE_CRC[rtype])


def py_frame(rtype: int, payload: bytes | memoryview) -> bytes:
    length = len(payload)
    return b"".join((HEAD.pack(length, rtype, checksum(rtype, payload)), payload, TAIL.pack(length)))


def py_frame_values(rtype: int, values: Iterable[bytes]) -> bytes:
    """Many records in one buffer, ready for a single write."""
    parts: list[bytes] = []
    head, tail, type_crc = HEAD.pack, TAIL.pack, _TYPE_CRC[rtype]
    for value in values:
        length = len(value)
        parts += (head(length, rtype, crc32c.crc32c(value, type_crc)), value, tail(length))
    return b"".join(parts)


def py_scan_records(data: bytes, pos: int, limit: int, count: int) -> tuple[list[bytes], int]:
    """The payloads of up to ``count`` consecutive well-formed records in ``data[pos:limit]`` and the position after
    them. Stops early, without raising, at a record that is incomplete or fails a check: the caller reads that one
    alone (``parse_forward``), which says what is wrong."""
    payloads = []
    limit = min(limit, len(data))
    while count > 0:
        try:
            _, payload_start, end = parse_forward(data, pos, limit)
        except FramingError:
            break
        payloads.append(bytes(data[payload_start : end - TAIL_SIZE]))
        pos = end
        count -= 1
    return payloads, pos


def py_scan_records_backward(data: bytes, end: int, low: int, count: int) -> tuple[list[bytes], int]:
    """``py_scan_records`` towards lower offsets: the payloads of up to ``count`` records of ``data[low:end]``, the
    one ending at ``end`` first, and where the last one read starts. Stops early, without raising, at a record that
    is incomplete or fails a check: the caller reads that one alone (``parse_backward``), which says what is wrong."""
    if low < 0 or end > len(data):
        raise ValueError("scan_records_backward: region outside the data")
    payloads = []
    while count > 0:
        try:
            _, payload_start, start = parse_backward(data, end, low)
        except FramingError:
            break
        payloads.append(bytes(data[payload_start : end - TAIL_SIZE]))
        end = start
        count -= 1
    return payloads, end


def record_ends(payloads: Sequence[bytes]) -> list[int]:
    """``ends[i]``: the bytes ``payloads[:i + 1]`` take as records."""
    return list(accumulate(len(payload) + OVERHEAD for payload in payloads))


def fitting(ends: list[int], start: int, room: int) -> int:
    """The end index of the records from ``start`` that fit in ``room`` bytes, at least one (a file takes a record
    that overflows it when it is not full yet)."""
    return max(start + 1, bisect.bisect_right(ends, (ends[start - 1] if start else 0) + room, start))


# The C twins, when built: the same results (tests/unit/test_storage_framing.py compares them).
frame = speedups.frame or py_frame
frame_values = speedups.frame_values or py_frame_values
scan_records = speedups.scan_records or py_scan_records
scan_records_backward = speedups.scan_records_backward or py_scan_records_backward


def parse_forward(buf: bytes | memoryview, pos: int, limit: int) -> tuple[int, int, int]:
    """The record starting at ``pos`` within ``buf[:limit]``: (type, payload start, record end)."""
    if pos + HEAD_SIZE > limit:
        raise FramingError("truncated record header", incomplete=True)
    length, rtype, crc = HEAD.unpack_from(buf, pos)
    end = pos + HEAD_SIZE + length + TAIL_SIZE
    if end > limit:
        raise FramingError(f"record of {length} bytes runs past the end", incomplete=True)
    return _verify(buf, rtype, crc, length, pos + HEAD_SIZE, end)


def parse_backward(buf: bytes | memoryview, end: int, low: int) -> tuple[int, int, int]:
    """The record ending at ``end`` (not before ``low``): (type, payload start, record start)."""
    if end - OVERHEAD < low:
        raise FramingError("no room for a record before this point")
    (length,) = TAIL.unpack_from(buf, end - TAIL_SIZE)
    start = end - OVERHEAD - length
    if start < low:
        raise FramingError(f"trailing length {length} points before the region")
    head_length, rtype, crc = HEAD.unpack_from(buf, start)
    if head_length != length:
        raise FramingError(f"leading length {head_length} differs from trailing length {length}")
    _verify(buf, rtype, crc, length, start + HEAD_SIZE, end)
    return rtype, start + HEAD_SIZE, start


def _verify(
    buf: bytes | memoryview, rtype: int, crc: int, length: int, payload_start: int, end: int
) -> tuple[int, int, int]:
    (tail_length,) = TAIL.unpack_from(buf, end - TAIL_SIZE)
    if tail_length != length:
        raise FramingError(f"trailing length {tail_length} differs from leading length {length}")
    if crc32c.crc32c(memoryview(buf)[payload_start : payload_start + length], _TYPE_CRC[rtype]) != crc:
        raise FramingError("checksum mismatch")
    return rtype, payload_start, end


def check_prefix(data: bytes, magic: bytes, what: str) -> int:
    """The format version of a file header; refuses a wrong magic and versions newer than this build."""
    if len(data) < FILE_PREFIX.size:
        raise FormatError(f"{what}: file too short for a header")
    found_magic, version = FILE_PREFIX.unpack_from(data)
    if found_magic != magic:
        raise FormatError(f"{what}: not a respq file (magic {found_magic!r})")
    refuse_newer(data, magic, what)
    if version < 1:
        raise FormatError(f"{what}: format version {version} is not supported")
    return version


def refuse_newer(data: bytes, magic: bytes, what: str) -> None:
    """Refuses a file whose header names a format version newer than this build's. A header cut short or of
    another kind passes: the caller decides what such a file is (a torn new file, say)."""
    if len(data) >= FILE_PREFIX.size:
        found_magic, version = FILE_PREFIX.unpack_from(data)
        if found_magic == magic and version > FORMAT_VERSION:
            raise FormatError(f"{what}: format version {version} is newer than this build supports ({FORMAT_VERSION})")


class ScanError(Exception):
    """Framing failed at ``offset``; ``at_eof`` tells a record cut short by the end of the file (a torn tail)."""

    def __init__(self, offset: int, error: FramingError, at_eof: bool) -> None:
        super().__init__(f"offset {offset}: {error.reason}")
        self.offset = offset
        self.reason = error.reason
        self.at_eof = at_eof


def scan_file(
    read: Callable[[int, int], bytes], start: int, end: int, block: int = SCAN_BLOCK
) -> Iterator[tuple[int, int, memoryview]]:
    """Yields (offset, type, payload) for each record in [start, end) using ``read(length, offset)``.

    The payload view is only valid until the next item. Raises ScanError at the first bad record.
    """
    buf = b""
    base = start  # file offset of buf[0]
    pos = start
    while pos < end:
        rel = pos - base
        try:
            rtype, payload_start, rec_end = parse_forward(buf, rel, len(buf))
        except FramingError as error:
            if not error.incomplete:
                raise ScanError(pos, error, at_eof=False) from None
            want = max(block, _needed(buf, rel))
            more = read(min(want, end - pos), pos) if pos < end else b""
            if len(more) <= len(buf) - rel:
                # Nothing new arrived: the file ends inside this record.
                raise ScanError(pos, error, at_eof=True) from None
            buf, base = more, pos
            continue
        view = memoryview(buf)[payload_start : rec_end - TAIL_SIZE]
        yield pos, rtype, view
        view.release()
        pos = base + rec_end


def _needed(buf: bytes, rel: int) -> int:
    """Bytes needed from ``rel`` to hold the whole record whose header starts there (if the header is there)."""
    if rel + HEAD_SIZE <= len(buf):
        (length,) = TAIL.unpack_from(buf, rel)
        return length + OVERHEAD
    return OVERHEAD
