"""The harness itself: reply framing, case parsing, normalizations, the version table, and that it catches
differences (two Redis servers configured differently must diverge)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from compat_runner import (
    Divergence,
    ScenarioError,
    generated_value,
    load_cases,
    make_pair,
    parse_block,
    run_block,
    split_args,
)
from normalizations import normalize
from resp_wire import Node, NotResp, encode, frame_end, parse
from version_differences import KNOWN_DIFFERENCES, RESPQ_TARGET, expected_form

REPLIES = [
    b"+OK\r\n", b"-ERR x\r\n", b":-5\r\n", b"$-1\r\n", b"$0\r\n\r\n", b"$3\r\na\r\n\r\n", b"*-1\r\n", b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", b"%1\r\n+k\r\n~2\r\n,1.5\r\n#t\r\n", b"_\r\n", b"(123\r\n",
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", b"=7\r\ntxt:abc\r\n", b"!3\r\nERR\r\n",
    b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_a_reply_is_framed_exactly_and_only_when_complete(reply: bytes) -> None:
    assert frame_end(reply + b"+NEXT\r\n") == len(reply)
    for cut in range(len(reply)):
        assert frame_end(reply[:cut]) is None


@pytest.mark.parametrize("reply", [r for r in REPLIES if not r.startswith(b"|")])
def test_parse_and_encode_round_trip(reply: bytes) -> None:
    assert encode(parse(reply)) == reply


def test_a_stream_that_is_not_resp_is_rejected() -> None:
    with pytest.raises(NotResp):
        frame_end(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(NotResp):
        frame_end(b"$abc\r\n")


def test_split_args_handles_quotes_and_escapes() -> None:
    assert split_args('SET "a b" \'c d\' plain') == [b"SET", b"a b", b"c d", b"plain"]
    assert split_args(r'X "\x00\xff\r\n\"" "\q" ""') == [b"X", b"\x00\xff\r\n\"", b"q", b""]
    assert split_args(r"X 'it\'s'") == [b"X", b"it's"]
    assert split_args("X caf\u00e9") == [b"X", "caf\u00e9".encode()]
    for bad in ['X "open', "X 'open", 'X "a"b']:
        with pytest.raises(ScenarioError):
            split_args(bad)


def test_an_unquoted_gen_token_is_generated_bytes_and_a_quoted_one_text() -> None:
    value = generated_value(40, 7)
    assert value == b"    7:000000000\n    7:000000016\n    7:00"
    assert split_args("RPUSH q @gen:40:7 '@gen:40:7' \"@gen:0:1\" @gen:40 x@gen:1:1") == [
        b"RPUSH", b"q", value, b"@gen:40:7", b"@gen:0:1", b"@gen:40", b"x@gen:1:1",
    ]
    assert split_args("X @gen:0:3") == [b"X", b""]
    big = generated_value(200_000, 1)
    assert len(big) == 200_000 and big == generated_value(200_000, 1) != generated_value(200_000, 2)
    assert big[134_464:134_480] == b"    1:000134464\n"  # any piece of it says where it was cut from
    with pytest.raises(ScenarioError):
        split_args("X @gen:10:100000")


def _block(text: str):  # type: ignore[no-untyped-def]
    return parse_block(Path("t.redis"), list(enumerate(text.strip().splitlines(), start=1)))


def test_block_directives_parse_into_steps() -> None:
    block = _block("""
        # title
        @isolated --requirepass x
        @proto 2
        [sub] SUBSCRIBE ch
        @wait numsub ch 1
        @client pub
        PUBLISH ch hi
        @read sub
        @norm client-id
        CLIENT ID
        @raw "PING\\r\\n"
        @closed
    """.replace("        ", ""))
    assert block.title == "title" and block.isolated and block.server_args == ("--requirepass", "x")
    assert block.protocols == (2,)
    assert [(s.client, s.action) for s in block.steps] == [
        ("sub", "command"), ("main", "wait"), ("pub", "command"), ("sub", "read"), ("pub", "command"),
        ("pub", "raw"), ("pub", "closed"),
    ]
    assert block.steps[4].norms == ("client-id",)
    assert block.steps[5].args == [b"PING\r\n"]


def test_repeat_expands_a_line_with_its_iteration_and_sized_values() -> None:
    block = _block("@repeat 3 XADD s {i}-1 f {3*x}{i}\n@norm stream-id\n@repeat 2 XADD s * f v")
    assert [step.args for step in block.steps[:3]] == [
        [b"XADD", b"s", b"%d-1" % i, b"f", b"xxx%d" % i] for i in (1, 2, 3)
    ]
    assert [step.norms for step in block.steps] == [(), (), (), ("stream-id",), ("stream-id",)]


@pytest.mark.parametrize(
    "text",
    ["@repeat 0 PING", "@repeat x PING", "@repeat 2",
     "@norm time\nPING", "@norm nosuchnorm\nTIME", "@wait blocked_clients\nPING", "@norm time", "@frobnicate",
     "PING\n@isolated", "@norm client-id\n@read", "@proto 4"],
)
def test_malformed_blocks_are_rejected(text: str) -> None:
    with pytest.raises(ScenarioError):
        _block(text)


def test_a_normalization_is_accepted_on_a_read_of_the_command_it_allows() -> None:
    block = _block("@send TIME\n@norm time\n@read")
    assert block.steps[1].norms == ("time",)


def test_reads_of_a_stream_are_checked_against_the_command_that_started_it() -> None:
    block = _block("@send MONITOR\n@read\nPING\n@norm monitor-line\n@read\n@norm monitor-line\n@read")
    assert [step.norms for step in block.steps if step.action == "read"] == [(), ("monitor-line",), ("monitor-line",)]
    with pytest.raises(ScenarioError):  # the last command sent on it is TIME: MONITOR's normalization is refused
        _block("@send MONITOR\n@read\n@send TIME\n@read\n@norm monitor-line\n@read")


def test_monitor_and_slowlog_normalizations_mask_only_times_and_addresses() -> None:
    line = b'+1796677939.773358 [3 127.0.0.1:51556] "SET" "k" "a\\"b"\r\n'
    assert normalize(line, ("monitor-line",)) == b'+<time> [3 <addr>] "SET" "k" "a\\"b"\r\n'
    entry = b"*1\r\n*6\r\n:4\r\n:1796677939\r\n:12\r\n*1\r\n$4\r\nPING\r\n$15\r\n127.0.0.1:51556\r\n$1\r\nw\r\n"
    masked = normalize(entry, ("slowlog-entries",))
    assert b":4\r\n" in masked and b"PING" in masked and b"$1\r\nw" in masked
    assert b"1796677939" not in masked and b"51556" not in masked


def test_every_case_file_parses_and_every_block_has_an_id() -> None:
    blocks = load_cases(Path(__file__).parent / "cases")
    assert len(blocks) > 50
    assert len({block.case_id for block in blocks}) == len(blocks)


def test_normalizations_hide_only_what_they_name() -> None:
    hello = b"%3\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$2\r\nid\r\n:42\r\n$5\r\nproto\r\n:3\r\n"
    other = hello.replace(b":42", b":7").replace(b"7.0.15", b"0.1.00")
    assert normalize(hello, ("client-id", "server-version")) == normalize(other, ("client-id", "server-version"))
    assert normalize(hello, ("client-id",)) != normalize(other, ("client-id",))
    assert normalize(hello.replace(b":3", b":2"), ("client-id", "server-version")) != normalize(
        other, ("client-id", "server-version"))
    assert normalize(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n", ("unordered",)) == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert normalize(b":-2\r\n", ("positive-ttl",)) == b":-2\r\n"
    assert normalize(b":17\r\n", ("positive-ttl",)) == normalize(b":99\r\n", ("positive-ttl",))
    stale_time = b"*2\r\n$10\r\n1000000000\r\n$1\r\n5\r\n"
    assert normalize(stale_time, ("time",)) == stale_time  # a time far from now is not hidden
    assert normalize(b"-ERR x\r\n", ("time",)) == b"-ERR x\r\n"


def test_unordered_pairs_keeps_pairs_together() -> None:
    def bulk(*items: bytes) -> bytes:
        return b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in items)

    flat = b"*4\r\n" + bulk(b"b", b"2", b"a", b"1")
    assert normalize(flat, ("unordered-pairs",)) == b"*4\r\n" + bulk(b"a", b"1", b"b", b"2")
    assert normalize(b"*4\r\n" + bulk(b"b", b"1", b"a", b"2"), ("unordered-pairs",)) != normalize(
        flat, ("unordered-pairs",))  # values stay with their fields
    scan = b"*2\r\n$1\r\n0\r\n" + flat  # HSCAN: the cursor stays first, the pairs after it are sorted
    assert normalize(scan, ("unordered-pairs",)) == b"*2\r\n$1\r\n0\r\n*4\r\n" + bulk(b"a", b"1", b"b", b"2")
    assert normalize(scan.replace(b"$1\r\n0", b"$1\r\n5", 1), ("unordered-pairs",)) != normalize(
        scan, ("unordered-pairs",))
    nested = b"*2\r\n*2\r\n" + bulk(b"b", b"2") + b"*2\r\n" + bulk(b"a", b"1")  # RESP3 HRANDFIELD WITHVALUES
    assert normalize(nested, ("unordered-pairs",)) == b"*2\r\n*2\r\n" + bulk(b"a", b"1") + b"*2\r\n" + bulk(
        b"b", b"2")


def test_info_values_compares_headers_and_field_names() -> None:
    def info(body: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(body), body)

    one = info(b"# Server\r\nredis_version:7.0.15\r\ntcp_port:1\r\n\r\n# Memory\r\nused_memory:5\r\n")
    same_names = info(b"# Server\r\nredis_version:0.1\r\ntcp_port:2\r\n\r\n# Memory\r\nother:1\r\n")
    missing_field = info(b"# Server\r\nredis_version:0.1\r\n\r\n# Memory\r\n")
    assert normalize(one, ("info-values",)) == normalize(same_names, ("info-values",))
    assert normalize(one, ("info-values",)) != normalize(missing_field, ("info-values",))


def test_version_table_gives_the_form_for_each_version() -> None:
    entry = "client setinfo lib-name redis-py"
    assert expected_form(entry, (7, 0), 2) == b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
    assert expected_form(entry, (8, 0), 3) == b"+OK\r\n"
    assert expected_form("PING", (7, 2), 2) is None
    assert all((7, 0) in difference.forms for difference in KNOWN_DIFFERENCES.values())
    assert RESPQ_TARGET == (7, 0)


def test_a_node_keeps_map_pairs_together() -> None:
    node = parse(b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n")
    assert [(k.value, v.value) for k, v in node.pairs()] == [(b"a", b"1"), (b"b", b"2")]
    assert isinstance(node, Node)


# With real servers: the runner must pass identical servers and catch differing ones.


def test_identical_servers_pass_and_differing_servers_diverge(isolated_redis_pair: Callable[..., object]) -> None:
    block = _block("PING\nCONFIG GET timeout\nECHO x")
    run_block(isolated_redis_pair(), block, 2)
    with pytest.raises(Divergence, match="line 2"):
        run_block(isolated_redis_pair(subject_args=("--timeout", "7")), block, 3)


def test_a_connection_that_stays_open_is_caught(isolated_redis_pair: Callable[..., object],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import compat_runner

    monkeypatch.setattr(compat_runner, "REPLY_TIMEOUT", 0.3)
    with pytest.raises(ScenarioError, match="did not close"):
        run_block(isolated_redis_pair(), _block("PING\n@closed"), 2)


def test_a_long_reply_is_compared_whole_and_its_difference_shown_where_it_starts(
    isolated_redis_pair: Callable[..., object],
) -> None:
    """Two 200 KB values that differ in one byte far from their start: the report names that byte, briefly."""
    pair = isolated_redis_pair()
    value = generated_value(200_000, 1)
    damaged = value[:150_000] + b"#" + value[150_001:]
    pair.oracle.control_call("SET", "k", value)  # type: ignore[attr-defined]
    pair.subject.control_call("SET", "k", damaged)  # type: ignore[attr-defined]
    with pytest.raises(Divergence) as caught:
        run_block(pair, _block("GET k"), 2)  # type: ignore[arg-type]
    report = str(caught.value)
    assert "the replies (200011 and 200011 bytes) first differ at byte 150009:" in report
    assert "1:000149984\\n#   1:000150000\\n" in report  # the bytes around it, as text
    assert len(report) < 4000


@pytest.fixture
def isolated_redis_pair(request: pytest.FixtureRequest) -> object:
    root = request.config.pluginmanager.get_plugin(str(request.config.rootpath / "conftest.py"))
    started = []

    def start(subject_args: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
        oracle, subject = root.start_redis(), root.start_redis(*subject_args)
        started.extend([oracle, subject])
        pair = make_pair(oracle.port, subject.port, "Redis (subject)", subject_is_redis=True)
        pair.reset()
        return pair

    yield start
    for process in started:
        process.stop()
