"""Pipelined GET, SET and MGET run without the dispatch around each call (dispatch.execute_run); every call still
answers, and changes what it would alone: keys of another type fail alone, expired keys are expired, watches are
invalidated, and a run of SETs stops where maxmemory or the disk would refuse the next one."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from respq import keyspace as keyspace_module
from respq.client import Client
from respq.commands.dispatch import execute, execute_run
from respq.replies import NULL_ARRAY, OK, ErrorReply, SimpleString
from tests.unit.test_dispatch_order import error_text, server_with_client

_KEYS = st.sampled_from([b"a", b"b", b"l", b"gone"])
_CALLS = st.lists(
    st.one_of(
        st.tuples(st.just(b"GET"), _KEYS).map(list),
        st.tuples(st.just(b"SET"), _KEYS, st.binary(max_size=4)).map(list),
        st.lists(_KEYS, min_size=1, max_size=3).map(lambda keys: [b"MGET", *keys]),
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
    return [execute(ctx, [b"TYPE", key]) for key in (b"a", b"b", b"l", b"gone")] + [
        execute(ctx, [b"MGET", b"a", b"b", b"l", b"gone"])
    ]


@settings(max_examples=60, deadline=None)
@given(batch=_CALLS)
def test_runs_answer_and_change_what_calls_one_by_one_do(tmp_path_factory, batch) -> None:  # type: ignore[no-untyped-def]
    results = []
    for run in (_one_by_one, _as_pipelined):
        server, ctx = server_with_client(tmp_path_factory.mktemp("runs"))
        try:
            execute(ctx, [b"SET", b"a", b"1"])
            execute(ctx, [b"RPUSH", b"l", b"x"])
            replies = run(ctx, batch)
            results.append(([r.message if type(r) is ErrorReply else r for r in replies], _state(ctx)))
        finally:
            server.engine.close()  # type: ignore[union-attr]
    assert results[0] == results[1]


def test_a_get_run_fails_each_call_on_another_type_and_expires_due_keys(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, ctx = server_with_client(tmp_path)
    assert server.engine is not None
    try:
        execute(ctx, [b"RPUSH", b"l", b"x"])
        execute(ctx, [b"SET", b"due", b"v", b"PX", b"1000"])
        replies = execute_run(ctx, [[b"GET", b"l"], [b"GET", b"l"]], 0)
        assert [error_text(reply)[:9] for reply in replies] == [b"WRONGTYPE"] * 2
        now = keyspace_module.now_ms()
        monkeypatch.setattr(keyspace_module, "now_ms", lambda: now + 2000)
        assert execute_run(ctx, [[b"GET", b"due"], [b"GET", b"due"], [b"GET", b"l"]], 0)[:2] == [None, None]
        assert execute(ctx, [b"DBSIZE"]) == 1
    finally:
        server.engine.close()


def test_a_set_run_stops_where_maxmemory_refuses_the_next_call(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxmemory = 1000
        batch = [[b"SET", b"a", b"x" * 600], [b"SET", b"b", b"x" * 600], [b"SET", b"c", b"x"]]
        assert execute_run(ctx, batch, 0) == [OK, OK]  # over the limit after the second: the third runs alone
        assert error_text(execute(ctx, batch[2])).startswith(b"OOM ")
        assert execute(ctx, [b"EXISTS", b"c"]) == 0
    finally:
        engine.close()


def test_a_set_run_refused_for_a_full_disk_creates_nothing(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxdisk = 1
        assert execute_run(ctx, [[b"SET", b"a", b"v"], [b"SET", b"b", b"v"]], 0) == []
        engine.maxdisk = 0
        assert execute(ctx, [b"DBSIZE"]) == 0
    finally:
        engine.close()


def test_a_set_run_invalidates_the_watches_of_the_keys_it_sets(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    watcher = ctx.for_client(Client("127.0.0.1:3", "127.0.0.1:4", authenticated=True))
    assert server.engine is not None
    try:
        for key, expected in ((b"other", [SimpleString(b"PONG")]), (b"b", NULL_ARRAY)):
            execute(watcher, [b"WATCH", key])
            execute(watcher, [b"MULTI"])
            execute(watcher, [b"PING"])
            execute_run(ctx, [[b"SET", b"a", b"x"], [b"SET", b"b", b"y"]], 0)
            assert execute(watcher, [b"EXEC"]) == expected, key
    finally:
        server.engine.close()


def test_mget_expires_due_keys_as_it_reads_them(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, ctx = server_with_client(tmp_path)
    assert server.engine is not None
    try:
        execute(ctx, [b"SET", b"due", b"v", b"PX", b"1000"])
        execute(ctx, [b"SET", b"kept", b"w", b"PX", b"100000"])
        execute(ctx, [b"RPUSH", b"l", b"x"])
        now = keyspace_module.now_ms()
        monkeypatch.setattr(keyspace_module, "now_ms", lambda: now + 2000)
        assert execute(ctx, [b"MGET", b"due", b"kept", b"l", b"due"]) == [None, b"w", None, None]
        assert execute(ctx, [b"DBSIZE"]) == 2
        assert ctx.stats.expired_keys == 1
    finally:
        server.engine.close()
