"""Pipelined SADD and SISMEMBER run without the dispatch around each call (dispatch.execute_run); every call still
answers, and changes, what it would alone: keys of another type fail alone, a run of SADDs on one key journals one
record whose replay gives the same set and encoding, and under maxmemory each SADD is checked on its own."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from respq.commands.dispatch import execute, execute_run
from respq.replies import ErrorReply, SetReply
from tests.unit.test_dispatch_order import error_text, server_with_client

_KEYS = st.sampled_from([b"s", b"s2", b"l", b"gone"])
_MEMBERS = st.sampled_from([b"1", b"2", b"a", b"-3", b"b"])
_CALLS = st.lists(
    st.one_of(
        st.tuples(st.just(b"SISMEMBER"), _KEYS, _MEMBERS).map(list),
        st.tuples(st.just(b"SADD"), _KEYS, st.lists(_MEMBERS, min_size=1, max_size=4)).map(
            lambda call: [call[0], call[1], *call[2]]
        ),
    ),
    min_size=2,
    max_size=12,
)


def _one_by_one(ctx, batch):  # type: ignore[no-untyped-def]
    return [execute(ctx, argv) for argv in batch]


def _as_pipelined(ctx, batch):  # type: ignore[no-untyped-def]
    replies, pos = [], 0
    while pos < len(batch):
        run = execute_run(ctx, batch, pos) or [execute(ctx, batch[pos])]
        replies += run
        pos += len(run)
    return replies


def _state(ctx):  # type: ignore[no-untyped-def]
    state = [execute(ctx, [b"TYPE", key]) for key in (b"s", b"s2", b"l", b"gone")]
    for key in (b"s", b"s2", b"gone"):
        members = execute(ctx, [b"SMEMBERS", key])
        assert isinstance(members, SetReply)
        state += [sorted(members.items), execute(ctx, [b"OBJECT", b"ENCODING", key])]
    return state


@settings(max_examples=60, deadline=None)
@given(batch=_CALLS)
def test_runs_answer_and_change_what_calls_one_by_one_do(tmp_path_factory, batch) -> None:  # type: ignore[no-untyped-def]
    results = []
    for run in (_one_by_one, _as_pipelined):
        server, ctx = server_with_client(tmp_path_factory.mktemp("runs"))
        try:
            execute(ctx, [b"CONFIG", b"SET", b"set-max-intset-entries", b"3"])
            execute(ctx, [b"SADD", b"s", b"1"])
            execute(ctx, [b"RPUSH", b"l", b"x"])
            replies = run(ctx, batch)
            results.append(([r.message if type(r) is ErrorReply else r for r in replies], _state(ctx)))
        finally:
            server.engine.close()  # type: ignore[union-attr]
    assert results[0] == results[1]


def test_an_sadd_run_stops_where_maxmemory_refuses_the_next_call(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxmemory = 1200
        batch = [[b"SADD", b"a", b"x" * 300], [b"SADD", b"b", b"x" * 300], [b"SADD", b"c", b"x"]]
        assert execute_run(ctx, batch, 0) == [1, 1]  # over the limit after the second: the third runs alone
        assert error_text(execute(ctx, batch[2])).startswith(b"OOM ")
        assert execute(ctx, [b"EXISTS", b"c"]) == 0
        one_key = [[b"SADD", b"a", b"y"], [b"SADD", b"a", b"z"]]
        assert execute_run(ctx, one_key, 0) == []  # each call checked alone
        assert error_text(execute(ctx, one_key[0])).startswith(b"OOM ")
        assert execute_run(ctx, [[b"SISMEMBER", b"a", b"x" * 300], [b"SISMEMBER", b"b", b"q"]], 0) == [1, 0]
    finally:
        engine.close()


def test_an_sadd_run_on_one_key_replays_to_the_same_set(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    batch = [[b"SADD", b"s", b"1", b"2"], [b"SADD", b"s", b"2", b"3"], [b"SADD", b"s", b"x"]]
    assert execute_run(ctx, batch, 0) == [2, 1, 1]
    assert execute(ctx, [b"OBJECT", b"ENCODING", b"s"]) == b"hashtable"
    engine = server.engine
    assert engine is not None
    engine.sync(engine.flush())
    engine.abandon()  # a crash: the journal alone brings the set back
    server2, ctx2 = server_with_client(tmp_path)
    try:
        members = execute(ctx2, [b"SMEMBERS", b"s"])
        assert isinstance(members, SetReply) and sorted(members.items) == [b"1", b"2", b"3", b"x"]
        assert execute(ctx2, [b"OBJECT", b"ENCODING", b"s"]) == b"hashtable"
    finally:
        server2.engine.close()  # type: ignore[union-attr]
