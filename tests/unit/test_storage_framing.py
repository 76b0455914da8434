"""Record framing: torn tails, flipped bits, and forward/backward agreement."""

from __future__ import annotations

import pytest

from respq.storage import framing

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
