"""Pipelined pushes spread over many keys run as one storage call; each call still answers as it would alone:
expired keys are expired first, keys of another type fail alone, new lists are created once."""

from __future__ import annotations

from pathlib import Path

from respq import keyspace as keyspace_module
from respq.client import Client
from respq.commands.dispatch import execute, execute_run
from respq.replies import NULL_ARRAY, ErrorReply, SimpleString
from respq.types.lists import model as listlog
from tests.unit.test_dispatch_order import server_with_client


def test_a_spread_run_expires_due_keys_and_fails_other_types_alone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, ctx = server_with_client(tmp_path)
    assert server.engine is not None
    try:
        execute(ctx, [b"RPUSH", b"a", b"a1"])
        execute(ctx, [b"RPUSH", b"due", b"old"])
        execute(ctx, [b"RPUSH", b"ttl", b"t1"])
        execute(ctx, [b"XADD", b"s", b"1-1", b"f", b"v"])
        now = keyspace_module.now_ms()
        execute(ctx, [b"PEXPIREAT", b"due", b"%d" % (now + 1000)])
        execute(ctx, [b"PEXPIREAT", b"ttl", b"%d" % (now + 100_000)])
        monkeypatch.setattr(keyspace_module, "now_ms", lambda: now + 2000)  # "due" has expired, not yet deleted
        batch = [
            [b"RPUSH", b"a", b"a2"],
            [b"RPUSH", b"due", b"new"],
            [b"RPUSH", b"fresh", b"f1"],
            [b"RPUSH", b"ttl", b"t2"],
            [b"RPUSH", b"fresh", b"f2"],
        ]
        assert execute_run(ctx, batch, 0) == [2, 1, 1, 2, 2]
        replies = execute_run(ctx, [[b"RPUSH", b"a", b"a3"], [b"RPUSH", b"s", b"x"], [b"RPUSH", b"b", b"b1"]], 0)
        assert replies[0] == 3 and replies[2] == 1
        assert isinstance(replies[1], ErrorReply) and bytes(replies[1].message).startswith(b"WRONGTYPE")
        assert execute(ctx, [b"LRANGE", b"due", b"0", b"-1"]) == [b"new"]
        assert execute(ctx, [b"PTTL", b"due"]) == -1
        assert execute(ctx, [b"PTTL", b"ttl"]) > 0  # kept its expiry
        assert execute(ctx, [b"LRANGE", b"fresh", b"0", b"-1"]) == [b"f1", b"f2"]
        assert execute(ctx, [b"XLEN", b"s"]) == 1
    finally:
        server.engine.close()


def test_a_spread_run_refused_for_a_full_disk_creates_nothing(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        engine.maxdisk = 1  # every write is over it
        assert execute_run(ctx, [[b"LPUSH", b"k1", b"v"], [b"LPUSH", b"k2", b"v"]], 0) == []
        assert execute(ctx, [b"DBSIZE"]) == 0
    finally:
        engine.maxdisk = 0
        engine.close()


def test_a_spread_run_stopped_by_a_full_disk_half_way_answers_for_what_it_did(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(listlog, "BACKLOG_VALUES", 100)  # pushes onto "big" write its segment as well
    server, ctx = server_with_client(tmp_path)
    engine = server.engine
    assert engine is not None
    try:
        execute(ctx, [b"RPUSH", b"big"] + [b"%d" % n for n in range(100)])
        execute(ctx, [b"RPUSH", b"other", b"o"])
        engine.flush()
        # Room for what the run's check counts, not for the segment copy the backlog push also writes.
        engine.maxdisk = engine._disk_used() + listlog.push_growth([b"X"]) + listlog.push_growth([b"Y"])
        batch = [[b"RPUSH", b"big", b"X"], [b"RPUSH", b"other", b"Y"], [b"RPUSH", b"new", b"Z"]]
        assert execute_run(ctx, batch, 0) == [101]  # the next call runs alone and answers for itself
        engine.maxdisk = 0
        assert execute(ctx, [b"LRANGE", b"big", b"-2", b"-1"]) == [b"99", b"X"]
        assert execute(ctx, [b"LRANGE", b"other", b"0", b"-1"]) == [b"o"]
        assert execute(ctx, [b"EXISTS", b"new"]) == 0
    finally:
        engine.maxdisk = 0
        engine.close()


def test_a_spread_run_invalidates_watches_on_the_keys_it_pushed_to_only(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    watcher = ctx.for_client(Client("127.0.0.1:3", "127.0.0.1:4", authenticated=True))
    assert server.engine is not None
    try:
        execute(ctx, [b"XADD", b"s", b"1-1", b"f", b"v"])
        for key, expected in ((b"s", [SimpleString(b"PONG")]), (b"b", NULL_ARRAY)):
            execute(watcher, [b"WATCH", key])
            execute(watcher, [b"MULTI"])
            execute(watcher, [b"PING"])
            execute_run(ctx, [[b"LPUSH", b"a", b"x"], [b"LPUSH", b"s", b"y"], [b"LPUSH", b"b", b"z"]], 0)
            assert execute(watcher, [b"EXEC"]) == expected, key  # a WRONGTYPE call changed nothing
    finally:
        server.engine.close()
