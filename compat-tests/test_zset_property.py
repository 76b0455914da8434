"""Random sequences of sorted set commands (valid and invalid arguments, listpack and skiplist encodings, the STORE
forms, pops) must get the same replies from Redis and respq. A divergence prints the shrunk sequence as a case
block that can be pasted into cases/zsets.redis. Lex ranges are left to the cases: over members of different
scores, Redis's answer for a skiplist depends on its random levels."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from compat_runner import Divergence, Pair, ScenarioRun
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_property import as_case, as_steps


def _flat(parts: list[list[bytes]]) -> list[bytes]:
    return [arg for part in parts for arg in part]


KEYS = st.sampled_from([b"z1", b"z2", b"z3"])
MEMBERS = st.sampled_from([b"a", b"b", b"c", b"", b"m\x00", b"1", b"10", b"x" * 70])
SCORES = st.sampled_from([b"0", b"1", b"-1", b"1.5", b"0.1", b"-0", b"inf", b"-inf", b"1e300", b"abc", b"nan",
                          b"3", b"0x10", b"1e-320"])
BOUNDS = st.sampled_from([b"-inf", b"+inf", b"0", b"(0", b"1", b"(1.5", b"2", b"x", b"(", b"", b"(inf", b"3"])
INTS = st.sampled_from([b"0", b"1", b"-1", b"2", b"-2", b"5", b"100", b"x"])
ZADD_FLAGS = st.lists(st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"]), max_size=2, unique=True)
RANGE_OPTIONS = st.lists(st.sampled_from([[b"REV"], [b"WITHSCORES"], [b"LIMIT", b"1", b"2"], [b"LIMIT", b"0", b"-1"],
                                          [b"LIMIT", b"-1", b"1"]]), max_size=2).map(_flat)
SETOP_OPTIONS = st.lists(st.sampled_from([[b"WEIGHTS", b"2", b"-1"], [b"AGGREGATE", b"MIN"], [b"AGGREGATE", b"MAX"],
                                          [b"AGGREGATE", b"SUM"], [b"WITHSCORES"]]), max_size=2).map(_flat)


def _command(name: bytes, *parts: st.SearchStrategy) -> st.SearchStrategy[list[bytes]]:
    return st.tuples(*parts).map(lambda args: [name, *[a for part in args for a in
                                                        (part if isinstance(part, list) else [part])]])


PAIRS = st.lists(st.tuples(SCORES, MEMBERS).map(list), min_size=1, max_size=4).map(_flat)

zset_commands = st.one_of(
    _command(b"ZADD", KEYS, ZADD_FLAGS, PAIRS),
    _command(b"ZINCRBY", KEYS, SCORES, MEMBERS),
    _command(b"ZREM", KEYS, st.lists(MEMBERS, min_size=1, max_size=3)),
    _command(b"ZSCORE", KEYS, MEMBERS),
    _command(b"ZMSCORE", KEYS, st.lists(MEMBERS, min_size=1, max_size=3)),
    _command(b"ZCARD", KEYS),
    _command(b"ZRANK", KEYS, MEMBERS),
    _command(b"ZREVRANK", KEYS, MEMBERS),
    _command(b"ZCOUNT", KEYS, BOUNDS, BOUNDS),
    _command(b"ZRANGE", KEYS, INTS, INTS, RANGE_OPTIONS),
    _command(b"ZRANGE", KEYS, BOUNDS, BOUNDS, st.just(b"BYSCORE"), RANGE_OPTIONS),
    _command(b"ZRANGEBYSCORE", KEYS, BOUNDS, BOUNDS, RANGE_OPTIONS),
    _command(b"ZREVRANGEBYSCORE", KEYS, BOUNDS, BOUNDS, RANGE_OPTIONS),
    _command(b"ZRANGESTORE", KEYS, KEYS, INTS, INTS),
    _command(b"ZRANGESTORE", KEYS, KEYS, BOUNDS, BOUNDS, st.just(b"BYSCORE"), RANGE_OPTIONS),
    _command(b"ZREMRANGEBYRANK", KEYS, INTS, INTS),
    _command(b"ZREMRANGEBYSCORE", KEYS, BOUNDS, BOUNDS),
    _command(b"ZPOPMIN", KEYS, st.lists(INTS, max_size=1)),
    _command(b"ZPOPMAX", KEYS, st.lists(INTS, max_size=1)),
    _command(b"ZMPOP", st.just(b"2"), KEYS, KEYS, st.sampled_from([b"MIN", b"MAX"]),
             st.sampled_from([[], [b"COUNT", b"2"], [b"COUNT", b"0"]])),
    _command(b"ZUNION", st.just(b"2"), KEYS, KEYS, SETOP_OPTIONS),
    _command(b"ZINTER", st.just(b"2"), KEYS, KEYS, SETOP_OPTIONS),
    _command(b"ZDIFF", st.just(b"2"), KEYS, KEYS, st.sampled_from([[], [b"WITHSCORES"]])),
    _command(b"ZUNIONSTORE", KEYS, st.just(b"2"), KEYS, KEYS, SETOP_OPTIONS),
    _command(b"ZINTERSTORE", KEYS, st.just(b"2"), KEYS, KEYS, SETOP_OPTIONS),
    _command(b"ZDIFFSTORE", KEYS, st.just(b"2"), KEYS, KEYS),
    _command(b"ZINTERCARD", st.just(b"2"), KEYS, KEYS, st.sampled_from([[], [b"LIMIT", b"1"]])),
    _command(b"OBJECT", st.just(b"ENCODING"), KEYS),
    _command(b"DEL", KEYS),
    _command(b"SET", KEYS, st.just(b"v")),
)


# Every sequence starts from sorted sets with members, so that ranges, pops and set operations have work to do.
SEED = [
    [b"ZADD", b"z1", b"1", b"a", b"2", b"b", b"3", b"c", b"0", b"d"],
    [b"ZADD", b"z2", b"0", b"a", b"0", b"b", b"0", b"c", b"2", b"x", b"5", b"10"],
]


@pytest.fixture
def fuzz_pair(isolated_pair: Callable[..., Pair]) -> Pair:
    # Small listpack limits, so that sequences cross them both ways.
    return isolated_pair("--zset-max-listpack-entries", "3", "--zset-max-listpack-value", "8")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(data=st.data())
def test_random_sorted_set_sequences_match(fuzz_pair: Pair, data: st.DataObject) -> None:
    protocol = data.draw(st.sampled_from([2, 3]), label="protocol")
    commands = [*SEED, *data.draw(st.lists(zset_commands, min_size=5, max_size=30), label="commands")]
    fuzz_pair.reset()
    try:
        ScenarioRun(fuzz_pair, protocol, "test_zset_property").run(as_steps(commands))
    except Divergence as divergence:
        note("as a case block:\n" + as_case(commands, protocol))
        raise AssertionError(f"{divergence}\n\nas a case block:\n{as_case(commands, protocol)}") from None
