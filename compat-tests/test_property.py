"""Random sequences of key, transaction and connection commands (valid, invalid, wrong arity, garbage arguments)
must get the same replies from Redis and respq. A divergence prints the shrunk sequence as a case block that can be
pasted into cases/*.redis.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from compat_runner import Divergence, Pair, ScenarioRun, Step
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from normalizations import allowed

KEYS = st.sampled_from([b"k1", b"k2", b"k3", b"k\x00bin"])
NUMBERS = st.sampled_from(
    [b"0", b"1", b"-1", b"2", b"15", b"16", b"abc", b"", b"1.5", b"9223372036854775807", b"-9223372036854775808",
     b"99999999999999999999"]
)
# Expiry far enough away (or already past) that no key expires while one sequence runs on both servers.
SECONDS = st.sampled_from([b"-1", b"0", b"1000", b"5000", b"100000", b"abc", b"9223372036854775807", b"1.5"])
MILLISECONDS = st.sampled_from([b"-1", b"0", b"1000000", b"5000000", b"abc", b"9223372036854775807"])
UNIX_TIMES = st.sampled_from([b"1", b"4102444800", b"abc", b"-5"])
EXPIRE_OPTIONS = st.lists(st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"nx", b"FOO"]), max_size=2)
GARBAGE = st.binary(max_size=6)
CLIENT_NAMES = st.sampled_from([b"worker", b"", b"a b", b"new\nline", b"ok-name"])
PATTERNS = st.sampled_from([b"*", b"k*", b"k?", b"[k]1", b"nomatch", b"\\"])
# Commands whose names take garbage arguments safely: none of them blocks, closes or silences the connection.
SAFE_NAMES = [b"del", b"exists", b"type", b"ttl", b"pttl", b"expire", b"persist", b"rename", b"renamenx", b"keys",
              b"dbsize", b"select", b"swapdb", b"ping", b"echo", b"multi", b"exec", b"discard", b"watch", b"unwatch",
              b"flushdb", b"expiretime", b"touch", b"unlink", b"time", b"config"]


def _command(name: bytes, *parts: st.SearchStrategy) -> st.SearchStrategy[list[bytes]]:
    return st.tuples(*parts).map(lambda args: [name, *[a for part in args for a in
                                                        (part if isinstance(part, list) else [part])]])


key_commands = st.one_of(
    _command(b"DEL", st.lists(KEYS, min_size=1, max_size=3)),
    _command(b"UNLINK", st.lists(KEYS, min_size=1, max_size=3)),
    _command(b"EXISTS", st.lists(KEYS, min_size=1, max_size=3)),
    _command(b"TOUCH", st.lists(KEYS, min_size=1, max_size=2)),
    _command(b"TYPE", KEYS),
    _command(b"TTL", KEYS),
    _command(b"PTTL", KEYS),
    _command(b"EXPIRETIME", KEYS),
    _command(b"PERSIST", KEYS),
    _command(b"EXPIRE", KEYS, SECONDS, EXPIRE_OPTIONS),
    _command(b"PEXPIRE", KEYS, MILLISECONDS, EXPIRE_OPTIONS),
    _command(b"EXPIREAT", KEYS, UNIX_TIMES, EXPIRE_OPTIONS),
    _command(b"RENAME", KEYS, KEYS),
    _command(b"RENAMENX", KEYS, KEYS),
    _command(b"KEYS", PATTERNS),
    _command(b"SCAN", st.just(b"0"), st.sampled_from([[], [b"MATCH", b"k*"], [b"TYPE", b"list"], [b"COUNT", b"100"],
                                                      [b"COUNT", b"0"], [b"TYPE"], [b"FOO", b"x"]])),
    _command(b"DBSIZE"),
    _command(b"SELECT", NUMBERS),
    _command(b"SWAPDB", NUMBERS, NUMBERS),
    _command(b"FLUSHDB", st.sampled_from([[], [b"ASYNC"], [b"SYNC"], [b"BAD"]])),
)
transaction_commands = st.one_of(
    _command(b"MULTI"), _command(b"EXEC"), _command(b"DISCARD"), _command(b"WATCH", st.lists(KEYS, min_size=1,
                                                                                              max_size=2)),
    _command(b"UNWATCH"),
)
connection_commands = st.one_of(
    _command(b"PING", st.lists(GARBAGE, max_size=2)),
    _command(b"ECHO", st.lists(GARBAGE, max_size=2)),
    _command(b"CLIENT", st.just(b"GETNAME")),
    _command(b"CLIENT", st.just(b"SETNAME"), CLIENT_NAMES),
    _command(b"CLIENT", st.just(b"NO-EVICT"), st.sampled_from([b"ON", b"off", b"maybe"])),
    _command(b"HELLO", st.sampled_from([[b"2"], [b"3"], [b"4"], [b"abc"], [b"3", b"SETNAME"], [b"2", b"FOO"]])),
    _command(b"RESET"),
)
invalid_commands = st.one_of(
    st.tuples(GARBAGE, st.lists(GARBAGE, max_size=3)).map(lambda t: [b"zz" + t[0], *t[1]]),  # unknown command
    st.tuples(st.sampled_from(SAFE_NAMES), st.lists(GARBAGE, max_size=4)).map(lambda t: [t[0], *t[1]]),
)
list_commands = st.one_of(
    _command(b"RPUSH", KEYS, st.lists(GARBAGE, min_size=1, max_size=3)),
    _command(b"LPOP", KEYS, st.sampled_from([[], [b"1"], [b"3"], [b"-1"]])),
    _command(b"LLEN", KEYS),
    _command(b"LRANGE", KEYS, st.just(b"0"), st.just(b"-1")),
)

NORMS_BY_COMMAND = {b"ttl": ("positive-ttl",), b"pttl": ("positive-ttl",), b"expiretime": ("positive-ttl",),
                    b"keys": ("unordered",), b"scan": ("unordered",), b"hello": ("client-id", "server-version")}


def as_steps(commands: list[list[bytes]]) -> list[Step]:
    steps = []
    for number, args in enumerate(commands, start=1):
        norms = tuple(n for n in NORMS_BY_COMMAND.get(args[0].lower(), ()) if allowed(n, args))
        text = " ".join(_quote(arg) for arg in args)
        steps.append(Step(number, "main", "command", args, norms, text))
    return steps


def _quote(arg: bytes) -> str:
    if arg and all(33 <= byte < 127 and byte not in b"\"'\\" for byte in arg):
        return arg.decode()
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in arg) + '"'


def as_case(commands: list[list[bytes]], protocol: int) -> str:
    lines = [f"# found by test_property (RESP{protocol})", *(step.text for step in as_steps(commands))]
    if protocol == 2:
        lines.insert(1, "@proto 2")
    return "\n".join(lines)


@pytest.fixture
def fuzz_pair(isolated_pair: Callable[..., Pair]) -> Pair:
    return isolated_pair()


def _supports_lists(pair: Pair) -> bool:
    reply = pair.subject.control_call("RPUSH", "probe-list", "x")
    pair.subject.control_call("FLUSHALL")
    return reply == b":1\r\n"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_sequences_match(fuzz_pair: Pair, data: st.DataObject) -> None:
    with_lists = getattr(fuzz_pair, "_with_lists", None)
    if with_lists is None:
        with_lists = _supports_lists(fuzz_pair)
        fuzz_pair._with_lists = with_lists  # type: ignore[attr-defined]
    families = [key_commands, transaction_commands, connection_commands, invalid_commands]
    if with_lists:
        families.append(list_commands)
    protocol = data.draw(st.sampled_from([2, 3]), label="protocol")
    commands = data.draw(st.lists(st.one_of(families), min_size=1, max_size=25), label="commands")
    fuzz_pair.reset()
    try:
        ScenarioRun(fuzz_pair, protocol, "test_property").run(as_steps(commands))
    except Divergence as divergence:
        note("as a case block:\n" + as_case(commands, protocol))
        raise AssertionError(f"{divergence}\n\nas a case block:\n{as_case(commands, protocol)}") from None


def test_case_block_printing_round_trips() -> None:
    from pathlib import Path

    from compat_runner import parse_block

    commands = [[b"ECHO", b"a b\x00\"'\\"], [b"zz\xff", b""], [b"EXPIRE", b"k1", b"100", b"NX"]]
    text = as_case(commands, 3).splitlines()
    block = parse_block(Path("generated.redis"), list(enumerate(text, start=1)))
    assert block is not None
    assert [step.args for step in block.steps] == commands
