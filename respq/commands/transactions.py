"""MULTI, EXEC, DISCARD, WATCH, UNWATCH."""

from __future__ import annotations

from typing import Any

from respq import errors
from respq.acl.log import MULTI
from respq.blocking import Block
from respq.commands.context import Context
from respq.commands.dispatch import acl_denial, call
from respq.commands.table import command
from respq.errors import CommandError
from respq.replies import NULL_ARRAY, OK, ErrorReply, Replies

G = "transactions"


@command("multi", 1, "noscript loading stale fast allow_busy", group=G, summary="Opens a transaction.", since="1.2.0")
def multi(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    if client.multi is not None:
        raise CommandError(errors.MULTI_NESTED)
    client.multi = []
    client.multi_error = False
    return OK


def _end_transaction(ctx: Context) -> None:
    client = ctx.client
    client.multi = None
    client.multi_error = False
    _unwatch(ctx)


def _unwatch(ctx: Context) -> None:
    if ctx.keyspace is None:  # still loading: the watches are the client's alone (see watch)
        ctx.client.watched.clear()
        ctx.client.dirty_cas = False
    else:
        ctx.keyspace.unwatch_all(ctx.client)


@command(
    "discard",
    1,
    "noscript loading stale fast allow_busy",
    group=G,
    summary="Drops the queued commands and ends the transaction.",
    since="2.0.0",
    complexity="O(N) in the queued commands",
)
def discard(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.client.multi is None:
        raise CommandError(errors.DISCARD_WITHOUT_MULTI)
    _end_transaction(ctx)
    return OK


@command(
    "exec",
    1,
    "noscript loading stale skip_slowlog",
    group=G,
    summary="Runs every queued command at once, unless a watched key changed first.",
    since="1.2.0",
    complexity="The sum of the queued commands' costs",
)
def exec_(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    queued = client.multi
    if queued is None:
        raise CommandError(errors.EXEC_WITHOUT_MULTI)
    if client.multi_error:
        _end_transaction(ctx)
        raise CommandError(errors.EXECABORT)
    if client.dirty_cas or _watched_key_expired(ctx):
        _end_transaction(ctx)
        return NULL_ARRAY
    client.multi = None
    replies = []
    client.deny_blocking = True
    # One atomic block: the transaction's writes reach the journal as one record, so a torn journal tail after a
    # power cut loses all of them or none. Nothing queued needs to run outside it: SAVE and SHUTDOWN are refused
    # in MULTI (no_multi), and BGSAVE/BGREWRITEAOF only schedule a checkpoint, which starts after EXEC returns.
    engine = ctx.engine
    if engine is not None:  # still loading: nothing queued may write (EXEC answers each one LOADING)
        engine.begin_atomic()  # engine.atomic() without a generator's cost
    try:
        restricted = not client.user.unrestricted
        for cmd, args in queued:
            denial = restricted and acl_denial(ctx, cmd, args, MULTI)
            if denial:
                reply: Any = ErrorReply(errors.noperm_exec(denial))
            else:
                reply = call(ctx, cmd, args)
            if type(reply) is Block:  # blocking commands never block inside a transaction
                reply = reply.timeout_reply
            if type(reply) is Replies:
                replies += reply.items
            else:
                replies.append(reply)
    finally:
        client.deny_blocking = False
        if engine is not None:
            engine.end_atomic()
    _end_transaction(ctx)
    return replies


def _watched_key_expired(ctx: Context) -> bool:
    client = ctx.client
    keyspace = ctx.keyspace
    if keyspace is not None:
        for db, key in client.watched:
            keyspace.lookup(db, key)  # expiring it now marks the watchers dirty
    return client.dirty_cas


@command(
    "watch",
    -2,
    "noscript loading stale fast allow_busy",
    (1, -1, 1),
    group=G,
    summary="Marks keys so the next EXEC aborts if any of them changes before it.",
    since="2.2.0",
    complexity="O(1) per key",
)
def watch(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    if client.multi is not None:
        raise CommandError(errors.WATCH_INSIDE_MULTI)
    keyspace = ctx.keyspace
    if keyspace is None:  # still loading: nothing can change a key yet; the keyspace adopts these once loaded
        client.watched.update((client.db, key) for key in argv[1:])
        return OK
    for key in argv[1:]:
        keyspace.lookup(client.db, key)  # a key already expired now is deleted before watching starts
        keyspace.watch(client, client.db, key)
    return OK


@command(
    "unwatch",
    1,
    "noscript loading stale fast allow_busy",
    group=G,
    summary="Stops watching every key this connection watches.",
    since="2.2.0",
    complexity="O(N) in the keys watched",
)
def unwatch(ctx: Context, argv: list[bytes]) -> Any:
    _unwatch(ctx)
    return OK
