"""Handlers run over a context built by hand (tests/unit/contexts.py): a keyspace over an engine on a temporary
directory, no Server, no sockets, no subprocess."""

from __future__ import annotations

from pathlib import Path

from respq.blocking import Block
from respq.commands.dispatch import execute
from respq.replies import NULL_ARRAY, OK, QUEUED, ErrorReply
from respq.types.lists import commands as lists
from tests.unit.contexts import bare_context, new_client


def test_list_handlers_called_directly_and_through_the_dispatcher(tmp_path: Path) -> None:
    ctx = bare_context(tmp_path)
    try:
        assert lists.lpush(ctx, [b"LPUSH", b"q", b"a", b"b"]) == 2
        assert lists.lrange(ctx, [b"LRANGE", b"q", b"0", b"-1"]) == [b"b", b"a"]
        assert execute(ctx, [b"RPOP", b"q"]) == b"a"
        assert execute(ctx, [b"SELECT", b"1"]) == OK and ctx.client.db == 1
        assert execute(ctx, [b"LLEN", b"q"]) == 0  # database 1 is empty
        reply = execute(ctx, [b"XADD", b"q", b"1-1", b"f", b"v"])
        assert reply == b"1-1"
        reply = execute(ctx, [b"LPUSH", b"q", b"x"])
        assert isinstance(reply, ErrorReply) and bytes(reply.message).startswith(b"WRONGTYPE")
        assert ctx.stats.commands["lpush"].failed_calls == 1
    finally:
        ctx.engine.close()


def test_two_clients_of_one_context_see_watches_and_blocked_pops(tmp_path: Path) -> None:
    ctx = bare_context(tmp_path)
    other = ctx.for_client(new_client())
    try:
        assert execute(ctx, [b"WATCH", b"q"]) == OK
        assert execute(ctx, [b"MULTI"]) == OK
        assert execute(ctx, [b"LLEN", b"q"]) == QUEUED
        assert execute(other, [b"RPUSH", b"q", b"a"]) == 1
        assert execute(ctx, [b"EXEC"]) == NULL_ARRAY  # the watched key changed
        assert execute(ctx, [b"LPOP", b"q"]) == b"a"
        block = execute(ctx, [b"BLPOP", b"q", b"0"])
        assert type(block) is Block  # the connection would park the client here
        assert block.retry(b"q") is None  # still nothing to pop
        assert execute(other, [b"RPUSH", b"q", b"b"]) == 1
        assert block.retry(b"q") == [b"q", b"b"]
        assert execute(other, [b"LLEN", b"q"]) == 0
    finally:
        ctx.engine.close()
