"""The C accelerator (respq/_speedups.c) against the pure-Python parser: the same commands, errors and positions for
any byte stream cut anywhere. The accelerator only takes complete canonical commands and hands everything else
to the exact path, so any difference here is a bug in it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import respq.protocol
from conftest import require_speedups
from respq.protocol import ProtocolError, RequestParser, encode_command

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def c_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """``speedups=True`` parsers use the C parser (even where RESPQ_PURE_PYTHON=1 turned it off for the server)."""
    monkeypatch.setattr(respq.protocol, "_parse_multibulk", require_speedups().parse_multibulk)


def outcome(chunks: list[bytes], *, speedups: bool, max_bulk_len: int) -> list[object]:
    parser = RequestParser(speedups=speedups, max_bulk_len=max_bulk_len)
    out: list[object] = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while batch := parser.parse():
                out.extend(batch)
                out.append(("buffered", parser.buffered()))
    except ProtocolError as error:
        out.append(("error", error.message))
    out.append(("left", parser.buffered()))
    return out


_arguments = st.lists(st.binary(max_size=24) | st.sampled_from([b"", b"\r\n", b"$3\r\n", b"*1\r\n", b"\0"]), max_size=5)
# Pieces near the canonical shape, where a parser that cuts corners would differ from Redis.
_pieces = st.one_of(
    _arguments.map(encode_command),
    _arguments.map(encode_command),
    st.sampled_from(
        [
            b"*03\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*+1\r\n$1\r\na\r\n",
            b"*1\r\n$01\r\na\r\n",
            b"*1\r\n$-0\r\n",
            b"*1\r\n$+1\r\na\r\n",
            b"*1\r\n$3\r\nabcXY",
            b"*1\r\n$3\r\nabc\r",
            b"*1\r\n:3\r\nabc\r\n",
            b"*1\r\n$ 3\r\nabc\r\n",
            b"*2147483648\r\n",
            b"*99999999999999999999\r\n",
            b"*1\r\n$99999999999999999999\r\n",
            b"*1\r\n$200\r\n",
            b"*1\n$1\r\na\r\n",
            b"*1\r\n$1\na\r\n",
            b"*1\r\n$1\r\n\0\r\n",
            b"*1\0\r\n",
            b"PING\r\n",
            b"PING\n",
            b'SET "a b" c\r\n',
            b"\r\n",
            b"\n",
            b" \r\n",
            b"\0",
        ]
    ),
    st.binary(max_size=12),
)


@given(
    pieces=st.lists(_pieces, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
    max_bulk_len=st.sampled_from([512 * 1024 * 1024, 3, 20]),
)
@example(pieces=[encode_command([b"LPUSH", b"q", b"x" * 100])] * 16, cuts=[], max_bulk_len=512 * 1024 * 1024)
@example(pieces=[b"*1\r\n$3\r\nabcXY", b"*1\r\n$1\r\na\r\n"], cuts=[7], max_bulk_len=512 * 1024 * 1024)
def test_accelerated_parser_agrees_with_python(pieces: list[bytes], cuts: list[int], max_bulk_len: int) -> None:
    data = b"".join(pieces)
    bounds = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    expected = outcome(chunks, speedups=False, max_bulk_len=max_bulk_len)
    assert outcome(chunks, speedups=True, max_bulk_len=max_bulk_len) == expected


def test_accelerator_takes_canonical_commands_and_stops_at_anything_else() -> None:
    parse = respq.protocol._parse_multibulk
    assert parse is not None
    good = encode_command([b"LPUSH", b"q", b"a\r\nb", b""])
    commands: list[list[bytes]] = []
    assert parse(good * 2 + b"PING\r\n" + good, 0, 1 << 20, commands) == 2 * len(good)
    assert commands == [[b"LPUSH", b"q", b"a\r\nb", b""]] * 2
    not_taken = (
        b"*01\r\n$1\r\na\r\n",  # a leading zero
        b"*1\r\n$1\r\naXY",  # no CRLF after the argument
        b"*1\r\n$2\r\na",  # incomplete
        b"*1\r\n$-1\r\n",  # negative
        b"*1\r\n$5\r\nabcde\r\n",  # over max_bulk_len
    )
    for shape in not_taken:
        commands = []
        assert parse(shape, 0, 4, commands) == 0, shape
        assert commands == []


def test_accelerator_refuses_bad_arguments() -> None:
    parse = respq.protocol._parse_multibulk
    assert parse is not None
    with pytest.raises(TypeError):
        parse(bytearray(b"*1\r\n$1\r\na\r\n"), 0, 10, [])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse(b"*1\r\n", 5, 10, [])
    with pytest.raises(TypeError):
        parse(b"", 0, 10)  # type: ignore[call-arg]


_reply_items = st.lists(
    st.one_of(st.binary(max_size=1100), st.none(), st.integers(), st.lists(st.binary(max_size=4), max_size=2)),
    max_size=8,
)


@given(_reply_items)
@example([b"x" * 1024, None, b""])
def test_the_bulk_array_encoder_agrees_with_python(items: list[object]) -> None:
    """Arrays of bulk strings and nulls come out of one C call, byte for byte what the Python encoder writes (in RESP2
    and RESP3, headers past the cached ones included); anything else inside goes back to the Python encoder."""
    accelerated = require_speedups().encode_bulks
    for protocol in (2, 3):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(respq.protocol, "_encode_bulks", None)
            expected = respq.protocol.encode_reply(items, protocol)
        assert respq.protocol.encode_reply(items, protocol) == expected
        encoded = accelerated(items, b"$-1\r\n" if protocol == 2 else b"_\r\n")
        assert encoded == (expected if all(i is None or type(i) is bytes for i in items) else None)


def test_the_bulk_array_encoder_refuses_bad_arguments() -> None:
    encode_bulks = require_speedups().encode_bulks
    for args in [((b"a",), b""), ([b"a"], "nil"), ([b"a"],)]:
        with pytest.raises(TypeError):
            encode_bulks(*args)
