"""RESP requests in and replies out, checked against the bytes Redis 7.0.15 accepts, refuses and sends."""

from __future__ import annotations

import enum
import random
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

import respq.protocol
from conftest import require_speedups
from respq.protocol import (
    ProtocolError,
    RequestParser,
    encode_command,
    encode_into,
    encode_reply,
    split_inline,
)
from respq.replies import (
    NULL_ARRAY,
    OK,
    BigNumber,
    ErrorReply,
    Push,
    Raw,
    SetReply,
    SimpleString,
    Verbatim,
)


@pytest.fixture(autouse=True, params=["python", "c"])
def parser_implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the pure-Python parser and on the C accelerator: both must give Redis's answers."""
    if request.param == "python":
        monkeypatch.setattr(respq.protocol, "_parse_multibulk", None)
    else:  # the C parser even where RESPQ_PURE_PYTHON=1 turned it off for the server
        monkeypatch.setattr(respq.protocol, "_parse_multibulk", require_speedups().parse_multibulk)
    return str(request.param)


Outcome = list[object]  # argv lists, then ("error", message) if the stream ended in a protocol error


def parse_all(chunks: list[bytes], *, authenticated: bool = True, **limits: int) -> Outcome:
    """Feeds each chunk and drains parse() after each, as the connection does."""
    parser = RequestParser(**limits)
    parser.authenticated = authenticated
    out: Outcome = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while batch := parser.parse():
                out.extend(batch)
    except ProtocolError as error:
        out.append(("error", error.message))
    return out


def parse_bytes(data: bytes, **kwargs: object) -> Outcome:
    return parse_all([data], **kwargs)  # type: ignore[arg-type]


def cmd(*args: bytes) -> bytes:
    return encode_command(list(args))


MIXED = (
    cmd(b"LPUSH", b"q", b"x" * 100)
    + cmd(b"SET", b"k\r\nv", b"", b"\x00\xff\r\n\r")
    + b"PING\r\n"
    + b"ECHO \"a b\" 'c'\n"
    + b"\r\n\n"  # empty inline lines are skipped
    + b"*0\r\n*-1\r\n"  # so are empty multibulk commands
    + cmd(b"RPOP", b"q")
    + b"*1\r\n$4\r\nPINGxx"  # Redis skips the two bytes after a bulk without checking them
    + b"*1\rX$4\r\nPING\r\n"  # ... and the byte after a header's CR
    + cmd(*[b"a%d" % i for i in range(50)])
    + cmd(b"Z" * 20000)
)
MIXED_EXPECTED = [
    [b"LPUSH", b"q", b"x" * 100],
    [b"SET", b"k\r\nv", b"", b"\x00\xff\r\n\r"],
    [b"PING"],
    [b"ECHO", b"a b", b"c"],
    [b"RPOP", b"q"],
    [b"PING"],
    [b"PING"],
    [b"a%d" % i for i in range(50)],
    [b"Z" * 20000],
]


# ---- framing ------------------------------------------------------------------------------------------------
def test_mixed_stream_in_one_feed() -> None:
    assert parse_bytes(MIXED) == MIXED_EXPECTED


def test_mixed_stream_one_byte_at_a_time() -> None:
    assert parse_all([MIXED[i : i + 1] for i in range(len(MIXED))]) == MIXED_EXPECTED


def test_mixed_stream_split_in_two_everywhere() -> None:
    head = MIXED[:2000]  # every split point of the varied part; the 20 KB argument is split below
    tail = MIXED[2000:]
    for cut in range(len(head) + 1):
        assert parse_all([head[:cut], head[cut:] + tail]) == MIXED_EXPECTED, cut
    for cut in range(len(MIXED) - 20100, len(MIXED) + 1, 997):
        assert parse_all([MIXED[:cut], MIXED[cut:]]) == MIXED_EXPECTED, cut


def test_pipeline_of_thousands_in_random_chunks() -> None:
    rng = random.Random(7)
    commands = [[b"LPUSH", b"queue:%d" % (i % 13), rng.randbytes(rng.choice((0, 1, 100, 3000)))] for i in range(5000)]
    data = b"".join(encode_command(c) for c in commands)
    cuts = sorted(rng.sample(range(1, len(data)), 300))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert parse_all(chunks) == commands
    assert parse_bytes(data) == commands


def test_binary_arguments_containing_crlf_survive_the_fast_path() -> None:
    args = [b"\r\n", b"$3\r\nfoo\r\n", b"*1\r\n", b"\r\n\r\n\r\n", b"\r", b"\n", b""]
    assert parse_bytes(cmd(*args) * 3) == [args] * 3


def test_large_argument_arriving_in_chunks() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB with CRLFs inside
    data = cmd(b"SET", b"k", value)
    parser = RequestParser()
    cut = len(data) - 10
    for start in range(0, cut, 4096):
        parser.feed(data[start : min(start + 4096, cut)])
        assert parser.parse() == []
    assert parser.buffered() >= len(value) - 10
    parser.feed(data[cut:])
    assert parser.parse() == [[b"SET", b"k", value]]
    assert parser.buffered() == 0


def test_parse_without_new_data_returns_nothing_and_buffered_counts_unread_bytes() -> None:
    parser = RequestParser()
    parser.feed(cmd(b"PING") + b"*2\r\n$3\r\nGET\r\n$1")
    assert parser.parse() == [[b"PING"]]
    assert parser.parse() == []
    assert parser.buffered() == 2  # "$1": the header of the argument still being read
    parser.feed(b"\r\nk\r\n")
    assert parser.parse() == [[b"GET", b"k"]]
    assert parser.buffered() == 0


# ---- inline commands ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "argv"),
    [
        (b"PING", [b"PING"]),
        (b"  SET  k \t v  ", [b"SET", b"k", b"v"]),
        (b'ECHO "a\\x41"', [b"ECHO", b"aA"]),
        (b'ECHO "\\x4"', [b"ECHO", b"x4"]),  # not two hex digits: the backslash escapes the x
        (b'ECHO "a\\qb\\n\\r\\t\\b\\a\\"\\\\"', [b"ECHO", b'aqb\n\r\t\b\a"\\']),
        (b"ECHO 'it\\'s'", [b"ECHO", b"it's"]),
        (b"ECHO 'a\\nb'", [b"ECHO", b"a\\nb"]),  # no escapes in single quotes but \'
        (b'ECHO ""', [b"ECHO", b""]),
        (b'ECHO ab"cd"', [b"ECHO", b"abcd"]),  # a quote may start inside an argument
        (b"ECHO a\x0bb", [b"ECHO", b"a\x0bb"]),  # \v is a blank between arguments, not inside one
        (b"ECHO \x0b\x0cb", [b"ECHO", b"b"]),
        (b'ECHO "a"\x0bb', [b"ECHO", b"a", b"b"]),
        (b"ECHO a\rb", [b"ECHO", b"a", b"b"]),
        (b"ECHO \xff\xfe", [b"ECHO", b"\xff\xfe"]),
        (b"", []),
        (b" \t ", []),
    ],
)
def test_split_inline_like_sdssplitargs(line: bytes, argv: list[bytes]) -> None:
    assert split_inline(line) == argv


@pytest.mark.parametrize(
    "line", [b"ECHO 'it''s'", b'ECHO "ab"cd', b"ECHO 'a'b", b'ECHO "abc', b"ECHO 'abc", b'ECHO "a\\']
)
def test_unbalanced_quotes(line: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        split_inline(line)
    assert caught.value.message == b"ERR Protocol error: unbalanced quotes in request"
    assert parse_bytes(b"PING\r\n" + line + b"\r\nPING\r\n") == [
        [b"PING"],
        ("error", b"ERR Protocol error: unbalanced quotes in request"),
    ]


def test_inline_line_endings() -> None:
    assert parse_bytes(b"PING\nPING\r\nPING\r\r\nECHO a\n") == [[b"PING"]] * 3 + [[b"ECHO", b"a"]]
    assert parse_all([b"PING\n" * 3, b"PI", b"NG\r", b"\n"]) == [[b"PING"]] * 4


def test_inline_line_with_nul_waits_like_strchr() -> None:
    # Redis looks for the LF with strchr, which stops at a NUL: the command never completes.
    assert parse_bytes(b"PING\x00\n") == []
    assert parse_bytes(b"PING\x00\n" + b"x" * 65536) == [("error", b"ERR Protocol error: too big inline request")]


# ---- malformed requests: Redis 7.0.15's replies -------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\n:5\r\n", b"ERR Protocol error: expected '$', got ':'"),
        (b"*1\r\n+OK\r\n", b"ERR Protocol error: expected '$', got '+'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", b"ERR Protocol error: expected '$', got '*'"),
        (b"*1\r\n\r\n", b"ERR Protocol error: expected '$', got ' '"),  # CR shown as a space
        (b"*2\r\n$4\r\nECHO\r\n\n\r\n", b"ERR Protocol error: expected '$', got ' '"),
        (b"*1\r\n\xff\r\n", b"ERR Protocol error: expected '$', got '\xff'"),
        (b"*3\r\n$3\r\nSET\r\n:5\r\n", b"ERR Protocol error: expected '$', got ':'"),  # before the rest arrives
        (b"*01\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*+1\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"* 1\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*1 \r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*-0\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*1_0\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*2147483648\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*99999999999999999999\r\n", b"ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$-1\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$+4\r\nPING\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$4 \r\nPING\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$04\r\nPING\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$536870913\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$999999999999\r\n", b"ERR Protocol error: invalid bulk length"),
        (b"x" * 65537, b"ERR Protocol error: too big inline request"),
        (b"*" + b"1" * 65536, b"ERR Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * 65536, b"ERR Protocol error: too big bulk count string"),
        (b"*1\x00\r\n" + b"1" * 65536, b"ERR Protocol error: too big mbulk count string"),  # strchr stops at NUL
    ],
)
def test_protocol_errors_match_redis(data: bytes, message: bytes) -> None:
    assert parse_bytes(data) == [("error", message)]
    # The same error after good commands: they come out first, the error on the next call.
    parser = RequestParser()
    parser.feed(cmd(b"PING") + b"PING\r\n" + data)
    assert parser.parse() == [[b"PING"], [b"PING"]]
    with pytest.raises(ProtocolError) as caught:
        parser.parse()
    assert caught.value.message == message
    parser.feed(cmd(b"PING"))  # a failed parser stays failed
    with pytest.raises(ProtocolError):
        parser.parse()


@pytest.mark.parametrize(
    "data",
    [
        b"x" * 65536,  # 64 KiB exactly is still allowed
        b"*" + b"1" * 65535,
        b"*1\r\n$" + b"1" * 65530,
        b"*1\x00\r\n",  # strchr stops at the NUL: Redis keeps waiting
        b"*1\r",  # a CR must be followed by one more byte
        b"*1\r\n$4\r",
        b"*2147483647\r\n",
        b"*1\r\n$536870912\r\n",  # the largest bulk Redis accepts by default
    ],
)
def test_incomplete_but_valid_so_far(data: bytes) -> None:
    assert parse_bytes(data) == []


def test_max_bulk_len_is_configurable() -> None:
    assert parse_bytes(cmd(b"a" * 100), max_bulk_len=100) == [[b"a" * 100]]
    assert parse_bytes(cmd(b"a" * 101), max_bulk_len=100) == [("error", b"ERR Protocol error: invalid bulk length")]


def test_huge_declared_sizes_allocate_nothing() -> None:
    tracemalloc.start()
    try:
        parser = RequestParser()
        parser.feed(b"*2147483647\r\n$536870912\r\n" + b"x" * 1000)
        assert parser.parse() == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    assert parser.buffered() == 1000 + len(b"$536870912\r\n")


# ---- authentication and limits ------------------------------------------------------------------------------
def test_unauthenticated_limits() -> None:
    assert parse_bytes(b"*11\r\n", authenticated=False) == [
        ("error", b"ERR Protocol error: unauthenticated multibulk length")
    ]
    assert parse_bytes(b"*1\r\n$16385\r\n", authenticated=False) == [
        ("error", b"ERR Protocol error: unauthenticated bulk length")
    ]
    assert parse_bytes(b"*10\r\n$16384\r\n", authenticated=False) == []
    big = [b"a"] * 11
    assert parse_bytes(cmd(*big)) == [big]
    # invalid is reported before unauthenticated, as Redis checks in that order
    assert parse_bytes(b"*1\r\n$-1\r\n", authenticated=False) == [("error", b"ERR Protocol error: invalid bulk length")]


def test_unauthenticated_parser_returns_one_command_at_a_time() -> None:
    parser = RequestParser()
    parser.authenticated = False
    parser.feed(cmd(b"AUTH", b"pw") + b"PING\r\n" + cmd(*[b"x"] * 11) + cmd(b"GET", b"v" * 20000))
    assert parser.parse() == [[b"AUTH", b"pw"]]
    assert parser.parse() == [[b"PING"]]
    parser.authenticated = True  # the AUTH succeeded: the limits no longer apply to what follows
    assert parser.parse() == [[b"x"] * 11, [b"GET", b"v" * 20000]]


def test_unauthenticated_one_at_a_time_also_when_finishing_a_partial_command() -> None:
    parser = RequestParser()
    parser.authenticated = False
    parser.feed(b"*2\r\n$4\r\nAUTH\r\n$2\r\np")
    assert parser.parse() == []
    parser.feed(b"w\r\n" + cmd(*[b"x"] * 11))
    assert parser.parse() == [[b"AUTH", b"pw"]]
    parser.authenticated = True
    assert parser.parse() == [[b"x"] * 11]


def test_unauthenticated_limit_applies_to_the_command_after_a_failed_auth() -> None:
    parser = RequestParser()
    parser.authenticated = False
    parser.feed(cmd(b"AUTH", b"wrong") + cmd(*[b"x"] * 11))
    assert parser.parse() == [[b"AUTH", b"wrong"]]
    with pytest.raises(ProtocolError) as caught:
        parser.parse()
    assert caught.value.message == b"ERR Protocol error: unauthenticated multibulk length"


def test_query_buffer_limit_closes_without_a_reply() -> None:
    parser = RequestParser(query_buffer_limit=1000)
    parser.feed(b"*1\r\n$2000\r\n" + b"x" * 900)
    assert parser.parse() == []
    parser.feed(b"x" * 200)
    with pytest.raises(ProtocolError) as caught:
        parser.parse()
    assert caught.value.message is None
    # Checked when data arrives, before parsing: complete commands in the same read are not returned.
    parser = RequestParser(query_buffer_limit=1000)
    parser.feed(cmd(b"PING") * 100)
    with pytest.raises(ProtocolError):
        parser.parse()
    # Within the limit, consumed bytes do not count.
    parser = RequestParser(query_buffer_limit=1000)
    for _ in range(100):
        parser.feed(cmd(b"PING") * 50)
        assert len(parser.parse()) == 50


# ---- property: whatever the split, what goes in comes out ---------------------------------------------------
ARG = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\r\n", b"*1\r\n", b"$3\r\n", b"\r", b"\n", b"\x00"]),
    # around the fast path's largest bulk header (16384): cheap to generate, unlike random 16 KB
    st.builds(lambda size, unit: (unit * size)[:size], st.integers(16380, 16390), st.binary(min_size=1, max_size=3)),
)


@given(
    commands=st.lists(st.lists(ARG, min_size=1, max_size=12), min_size=1, max_size=30),
    cut_seeds=st.lists(st.integers(min_value=0), max_size=12),
)
def test_encoded_commands_parse_back_at_any_split(commands: list[list[bytes]], cut_seeds: list[int]) -> None:
    data = b"".join(encode_command(c) for c in commands)
    cuts = sorted({seed % (len(data) + 1) for seed in cut_seeds})
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert parse_all(chunks) == commands


# ---- replies ------------------------------------------------------------------------------------------------
class Color(enum.IntEnum):
    RED = 7


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (b"hello", b"$5\r\nhello\r\n", None),
        (b"", b"$0\r\n\r\n", None),
        (b"a\r\nb", b"$4\r\na\r\nb\r\n", None),
        (0, b":0\r\n", None),
        (-42, b":-42\r\n", None),
        (2**63 - 1, b":9223372036854775807\r\n", None),
        (Color.RED, b":7\r\n", None),
        (None, b"$-1\r\n", b"_\r\n"),
        (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (False, b":0\r\n", b"#f\r\n"),
        (OK, b"+OK\r\n", None),
        (SimpleString(b"QUEUED"), b"+QUEUED\r\n", None),
        (ErrorReply(b"ERR syntax error"), b"-ERR syntax error\r\n", None),
        (Raw(b"+PONG\r\n"), b"+PONG\r\n", None),
        ([], b"*0\r\n", None),
        ((b"a", 1), b"*2\r\n$1\r\na\r\n:1\r\n", None),
        (
            [b"a", [None, [1]]],
            b"*2\r\n$1\r\na\r\n*2\r\n$-1\r\n*1\r\n:1\r\n",
            b"*2\r\n$1\r\na\r\n*2\r\n_\r\n*1\r\n:1\r\n",
        ),
        ({}, b"*0\r\n", b"%0\r\n"),
        (
            {b"k": b"v", b"n": 1},
            b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
            b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
        ),
        (
            {b"m": {b"x": [True]}},
            b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\nx\r\n*1\r\n:1\r\n",
            b"%1\r\n$1\r\nm\r\n%1\r\n$1\r\nx\r\n*1\r\n#t\r\n",
        ),
        (SetReply([b"a", 2]), b"*2\r\n$1\r\na\r\n:2\r\n", b"~2\r\n$1\r\na\r\n:2\r\n"),
        (
            Push([b"message", b"ch", b"hi"]),
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        ),
        (Verbatim(b"# Server\r\n"), b"$10\r\n# Server\r\n\r\n", b"=14\r\ntxt:# Server\r\n\r\n"),
        (Verbatim(b"x", b"mkd"), b"$1\r\nx\r\n", b"=5\r\nmkd:x\r\n"),
        (
            BigNumber(b"123456789012345678901234567890"),
            b"$30\r\n123456789012345678901234567890\r\n",
            b"(123456789012345678901234567890\r\n",
        ),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
        (1e20, b"$5\r\n1e+20\r\n", b",1e+20\r\n"),
        (-0.0, b"$2\r\n-0\r\n", b",-0\r\n"),
        (3.0, b"$1\r\n3\r\n", b",3\r\n"),
        (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
        (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (float("nan"), b"$3\r\nnan\r\n", b",nan\r\n"),
        (
            [SetReply([]), Push([]), ErrorReply(b"E x"), OK, 2.5],
            b"*5\r\n*0\r\n*0\r\n-E x\r\n+OK\r\n$3\r\n2.5\r\n",
            b"*5\r\n~0\r\n>0\r\n-E x\r\n+OK\r\n,2.5\r\n",
        ),
    ],
)
def test_encode_reply(value: object, resp2: bytes, resp3: bytes | None) -> None:
    resp3 = resp2 if resp3 is None else resp3
    assert encode_reply(value, 2) == resp2
    assert encode_reply(value, 3) == resp3
    for protocol, expected in ((2, resp2), (3, resp3)):
        fragments: list[bytes] = []
        encode_into(fragments, value, protocol)
        assert b"".join(fragments) == expected
        buffer = bytearray(b"prefix")
        encode_into(buffer, value, protocol)
        assert buffer == b"prefix" + expected


def test_encode_large_headers() -> None:
    big = b"x" * 5000
    assert encode_reply(big, 2) == b"$5000\r\n" + big + b"\r\n"
    assert encode_reply([big], 3) == b"*1\r\n$5000\r\n" + big + b"\r\n"
    many = [1] * 300
    assert encode_reply(many, 2) == b"*300\r\n" + b":1\r\n" * 300


def test_encode_unknown_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode_reply("text", 2)
    with pytest.raises(TypeError):
        encode_reply([object()], 3)


def test_encode_command() -> None:
    assert encode_command([b"SET", b"k", b""]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
    assert encode_command([]) == b"*0\r\n"
