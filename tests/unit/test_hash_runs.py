"""Pipelined HSET and HGET run without the dispatch around each call (dispatch.execute_run); every call still
answers, and changes, what it would alone: keys of another type fail alone, a wrong arity answers its own error,
and a run of HSETs stops where maxmemory or the disk would refuse the next one."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from respq.commands.dispatch import execute, execute_run
from respq.replies import ErrorReply
from tests.unit.test_dispatch_order import error_text, server_with_client

_KEYS = st.sampled_from([b"h", b"h2", b"l", b"gone"])
_FIELDS = st.sampled_from([b"a", b"b", b"c"])
_CALLS = st.lists(
    st.one_of(
        st.tuples(st.just(b"HGET"), _KEYS, _FIELDS).map(list),
        st.tuples(st.just(b"HSET"), _KEYS, st.lists(_FIELDS, min_size=1, max_size=5)).map(
            lambda call: [call[0], call[1], *call[2]]  # an odd number of arguments answers a wrong arity
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
    return [execute(ctx, [b"TYPE", key]) for key in (b"h", b"h2", b"l", b"gone")] + [
        execute(ctx, [b"HGETALL", key]) for key in (b"h", b"h2", b"gone")
    ]


@settings(max_examples=60, deadline=None)
@given(batch=_CALLS)
def test_runs_answer_and_change_what_calls_one_by_one_do(tmp_path_factory, batch) -> None:  # type: ignore[no-untyped-def]
    results = []
    for run in (_one_by_one, _as_pipelined):
        server, ctx = server_with_client(tmp_path_factory.mktemp("runs"))
        try:
            execute(ctx, [b"HSET", b"h", b"a", b"1"])
            execute(ctx, [b"RPUSH", b"l", b"x"])
            replies = run(ctx, batch)
            results.append(([r.message if type(r) is ErrorReply else r for r in replies], _state(ctx)))
        finally:
            server.engine.close()  # type: ignore[union-attr]
    assert results[0] == results[1]


def test_an_hset_run_stops_where_maxmemory_refuses_the_next_call(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxmemory = 1000
        batch = [[b"HSET", b"a", b"f", b"x" * 300], [b"HSET", b"b", b"f", b"x" * 300], [b"HSET", b"c", b"f", b"x"]]
        assert execute_run(ctx, batch, 0) == [1, 1]  # over the limit after the second: the third runs alone
        assert error_text(execute(ctx, batch[2])).startswith(b"OOM ")
        assert execute(ctx, [b"EXISTS", b"c"]) == 0
        assert execute_run(ctx, [[b"HGET", b"a", b"f"], [b"HGET", b"b", b"f"]], 0) == [b"x" * 300] * 2  # reads go on
    finally:
        engine.close()


def test_an_hset_run_refused_for_a_full_disk_creates_nothing(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxdisk = 1
        assert execute_run(ctx, [[b"HSET", b"a", b"f", b"v"], [b"HSET", b"b", b"f", b"v"]], 0) == []
        engine.maxdisk = 0
        assert execute(ctx, [b"DBSIZE"]) == 0
    finally:
        engine.close()
