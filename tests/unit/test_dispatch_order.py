"""The order of the dispatcher's refusals, where two apply at once (Redis 7.0's processCommand order).

The differential harness cannot make a real redis-server fail its AOF writes, so this runs the dispatcher in one
process with the storage engine's write error set by hand.
"""

from __future__ import annotations

from pathlib import Path

from respq.client import Client
from respq.commands.context import Context
from respq.commands.dispatch import execute
from respq.config import load_config
from respq.log import Logger
from respq.replies import ErrorReply
from respq.server import Server


def server_with_client(tmp_path: Path) -> tuple[Server, Context]:
    """A loaded server and the context of one client of it (``ctx.client``), as a connection would make."""
    server = Server(load_config(["--dir", str(tmp_path), "--loglevel", "warning"]), Logger("warning"))
    server._load()
    server.loading = False
    return server, server.context(Client("127.0.0.1:1", "127.0.0.1:2", authenticated=True))


def error_text(reply: object) -> bytes:
    assert isinstance(reply, ErrorReply), reply
    return bytes(reply.message)


def test_a_write_refused_for_a_failed_disk_says_so_before_the_pubsub_context(tmp_path: Path) -> None:
    server, ctx = server_with_client(tmp_path)
    assert server.engine is not None
    try:
        ctx.client.channels.add(b"news")  # a RESP2 subscriber
        server.engine.write_error = "fsync of the journal failed: [Errno 5] Input/output error"
        assert error_text(execute(ctx, [b"LPUSH", b"q", b"v"])).startswith(b"MISCONF ")
        assert error_text(execute(ctx, [b"LLEN", b"q"])).startswith(b"ERR Can't execute 'llen'")
        server.engine.write_error = None
        assert error_text(execute(ctx, [b"LPUSH", b"q", b"v"])).startswith(b"ERR Can't execute 'lpush'")
    finally:
        server.engine.close()


def test_over_maxmemory_comes_after_a_transaction_refusal_and_before_a_failed_disk(tmp_path: Path) -> None:
    """processCommand refuses no_multi commands in MULTI first, then denyoom ones over maxmemory, then writes for a
    failed disk; reads go on over maxmemory, writes that add nothing too."""
    server, ctx = server_with_client(tmp_path)
    assert server.engine is not None
    try:
        execute(ctx, [b"SET", b"k", b"v"])
        server.config.values["maxmemory"] = 1
        server.apply_config(["maxmemory"])
        server.engine.write_error = "fsync of the journal failed: [Errno 5] Input/output error"
        assert error_text(execute(ctx, [b"SET", b"k", b"w"])).startswith(b"OOM ")
        assert error_text(execute(ctx, [b"DEL", b"k"])).startswith(b"MISCONF ")
        assert execute(ctx, [b"GET", b"k"]) == b"v"
        server.engine.write_error = None
        execute(ctx, [b"MULTI"])
        assert error_text(execute(ctx, [b"SHUTDOWN"])) == b"ERR Command not allowed inside a transaction"
        assert error_text(execute(ctx, [b"PING"])).startswith(b"OOM ")  # anything queued, over maxmemory
        server.config.values["maxmemory"] = 0
        server.apply_config(["maxmemory"])
        assert error_text(execute(ctx, [b"EXEC"])).startswith(b"EXECABORT ")
        assert execute(ctx, [b"SET", b"k", b"w"]) is not None
    finally:
        server.engine.close()
