"""Runs one command for one client: the generic checks Redis makes before any handler, in Redis's order.

Every entry point takes the calling client's context (respq.commands.context), made once per client; the handler gets
the same context."""

from __future__ import annotations

import time
from typing import Any

from respq import acl, errors
from respq.acl.log import MULTI, TOPLEVEL
from respq.blocking import Block
from respq.client import Client
from respq.cluster import key_slot
from respq.commands.connection import client_line
from respq.commands.context import Context
from respq.commands.effects import effects
from respq.commands.table import COMMANDS, Command
from respq.errors import CommandError
from respq.replies import QUEUED, ErrorReply
from respq.storage.errors import CorruptionError, StorageError, StorageReadError

# Allowed while a RESP2 client has subscriptions.
_PUBSUB_ALLOWED = frozenset(
    {
        b"subscribe",
        b"unsubscribe",
        b"psubscribe",
        b"punsubscribe",
        b"ping",
        b"quit",
        b"reset",
        b"ssubscribe",
        b"sunsubscribe",
    }
)
NOT_IN_TRANSACTION = b"ERR Command not allowed inside a transaction"  # for commands flagged no_multi
# Executed at once inside MULTI instead of being queued.
_MULTI_IMMEDIATE = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
_NEVER_REFUSED_IN_MULTI = frozenset({b"discard", b"quit", b"reset"})  # over maxmemory, while queuing
# A MONITOR client (a replica, to Redis) may not run commands that read or write keys.
_KEYSPACE_FLAGS = frozenset({"readonly", "write", "may_replicate"})
MAX_RUN = 1024  # calls one run may take: bounds the values a single storage operation gathers


def lookup(argv: list[bytes]) -> Command | bytes:
    """The command or subcommand argv names, or the error text when there is none."""
    name = argv[0].lower()
    cmd = COMMANDS.get(name)
    if cmd is None:
        return errors.unknown_command(argv[0], argv[1:])
    if cmd.subcommands and len(argv) > 1:
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None:
            return errors.unknown_subcommand(argv[1], argv[0])
        cmd = sub
    return cmd


def resolve(argv: list[bytes]) -> Command | bytes:
    """The command argv names, or the error text for an unknown command/subcommand or a wrong arity."""
    cmd = lookup(argv)
    if isinstance(cmd, bytes) or cmd.accepts_arity(len(argv)):
        return cmd
    return errors.wrong_arity(cmd.name.encode())


def execute(ctx: Context, argv: list[bytes]) -> Any:
    """Returns the reply value for argv (an ErrorReply for errors). Never raises for a client's mistake."""
    cmd = lookup(argv)
    if isinstance(cmd, bytes):
        return _reject(ctx, argv, cmd, None)  # an unknown name has no commandstats line to count it on
    refusal = _refusal(ctx, cmd, argv)
    if refusal is not None:
        return _reject(ctx, argv, refusal, cmd)
    cluster = ctx.cluster
    # The only cost of cluster mode when it is off is the first test; when on, keyless commands cost one more and
    # one key of a slot served here (the common case) one C call and one lookup.
    if cluster is not None and cmd.routed and (not cmd.one_key or not cluster.local[key_slot(argv[1])]):
        redirect = cluster_refusal(ctx, cmd, argv)
        if redirect is not None:
            return _redirect(ctx, redirect, cmd)
    multi = ctx.client.multi
    if multi is not None and (cmd.parent or cmd).name.encode() not in _MULTI_IMMEDIATE:
        multi.append((cmd, argv))
        return QUEUED
    if ctx.replication.feeding:  # checked here rather than in call(): the common path takes no extra frame
        return _call_propagating(ctx, cmd, argv)
    return _call(ctx, cmd, argv)


def _refusal(ctx: Context, cmd: Command, argv: list[bytes]) -> bytes | None:
    """Why ``cmd`` may not run for this client now (the generic checks, in Redis's order), or None."""
    client = ctx.client
    if not cmd.accepts_arity(len(argv)):
        return errors.wrong_arity(cmd.name.encode())
    if not client.authenticated and "no_auth" not in cmd.flags and ctx.acl.auth_required:
        return errors.NOAUTH
    if client.multi is not None and "no_multi" in cmd.flags:
        return NOT_IN_TRANSACTION
    if not client.user.unrestricted:  # the default user with every permission skips the check
        denial = acl_denial(ctx, cmd, argv, MULTI if client.multi is not None else TOPLEVEL)
        if denial:
            return _NOPERM[denial](cmd)
    engine = ctx.engine
    if engine is not None and engine.maxmemory and engine.over_maxmemory() and _refused_when_oom(client, cmd):
        return errors.OOM
    if cmd.is_write and engine is not None and engine.write_error:
        return errors.misconf(engine.write_error)
    replication = ctx.replication
    if replication.guard_writes and cmd.is_write and not client.master:
        if replication.master is None:
            if replication.good_replicas(ctx.config.values["min-replicas-max-lag"]) < replication.min_replicas:
                return errors.NOREPLICAS
        elif ctx.config.values["replica-read-only"]:
            return errors.READONLY_REPLICA
    if client.monitoring and cmd.flags & _KEYSPACE_FLAGS:
        return errors.REPLICA_KEYSPACE
    if client.in_pubsub_mode and (cmd.parent or cmd).name.encode() not in _PUBSUB_ALLOWED:
        return errors.pubsub_context(cmd.name.encode())
    server = ctx.server
    if server.loading and "loading" not in cmd.flags:
        return errors.LOADING
    if server.busy_error is not None and "allow_busy" not in cmd.flags:
        return server.busy_error  # a script runs past busy-reply-threshold
    return None


def cluster_refusal(ctx: Context, cmd: Command, argv: list[bytes]) -> bytes | None:
    """Cluster mode: the redirect (MOVED, CROSSSLOT, CLUSTERDOWN) for a call whose keys this node does not serve.
    EXEC is checked over every queued call, whose keys must all share one slot, as Redis's getNodeByQuery does."""
    cluster = ctx.cluster
    assert cluster is not None
    client = ctx.client
    asking, client.asking = client.asking, False  # ASKING counts for one redirected command only
    if cmd.first_key > 0 or cmd.key_finder is not None:
        return cluster.route(call_keys(cmd, argv), shard_pubsub=cmd.not_key, asking=asking)
    if cmd.name == "exec" and ctx.client.multi:
        queued = ctx.client.multi
        keys = [key for queued_cmd, queued_argv in queued for key in call_keys(queued_cmd, queued_argv)]
        return cluster.route(keys, shard_pubsub=any(queued_cmd.not_key for queued_cmd, _ in queued))
    return None


def call_keys(cmd: Command, argv: list[bytes]) -> list[bytes]:
    """The keys a call names, from the command table's key positions (none when they cannot be found: the command
    then fails on its own). Shard channels count: Redis routes SPUBLISH/SSUBSCRIBE by their channel's slot."""
    if cmd.first_key <= 0 and cmd.key_finder is None:
        return []
    try:
        return [argv[position] for position in cmd.key_positions(argv, include_not_keys=True)]
    except CommandError:
        return []


def _redirect(ctx: Context, message: bytes, cmd: Command) -> ErrorReply:
    """A call sent to the wrong node: it flags an open transaction (EXEC then answers EXECABORT); a redirected EXEC
    discards the transaction and answers the redirect itself, as Redis does."""
    client = ctx.client
    if client.multi is not None:
        if cmd.name == "exec":
            client.multi = None
            client.multi_error = False
            ctx.keyspace.unwatch_all(client)
        else:
            client.multi_error = True
    return ctx.stats.rejected(message, cmd)


_NOPERM = {
    acl.DENIED_COMMAND: lambda cmd: errors.noperm_command(cmd.name),
    acl.DENIED_KEY: lambda cmd: errors.NOPERM_KEY,
    acl.DENIED_CHANNEL: lambda cmd: errors.NOPERM_CHANNEL,
}


def acl_denial(ctx: Context, cmd: Command, argv: list[bytes], context: bytes, caller: Client | None = None) -> int:
    """0 when the client's user may run the call; else the reason (acl.DENIED_*), logged in the ACL log with
    ``context`` and the client that asked (``caller``, for a script's call)."""
    client = ctx.client
    user = client.user
    denial, position = acl.check(user, cmd, argv)
    if denial:
        client.last_command = cmd.name  # Redis's client info names the command refused
        obj = cmd.name.encode() if denial == acl.DENIED_COMMAND else argv[position]
        ctx.acl.log.add(denial, context, obj, user.name, client_line(caller or client))
    return denial


def _refused_when_oom(client: Client, cmd: Command) -> bool:
    """Over maxmemory, Redis refuses commands that may add data (flagged denyoom), an EXEC queuing one, and
    anything but EXEC/DISCARD/QUIT/RESET while a transaction is being queued (queuing itself takes memory)."""
    name = (cmd.parent or cmd).name.encode()
    if client.multi is not None:
        if name != b"exec":
            return name not in _NEVER_REFUSED_IN_MULTI
        return any("denyoom" in queued.flags for queued, _ in client.multi)
    return "denyoom" in cmd.flags


def call(ctx: Context, cmd: Command, argv: list[bytes]) -> Any:
    """Runs a handler that passed the generic checks, counting it for INFO commandstats/errorstats; while replicas
    may attach (there is a backlog), a write that changed data is propagated."""
    if ctx.replication.feeding:
        return _call_propagating(ctx, cmd, argv)
    return _call(ctx, cmd, argv)


def _call_propagating(ctx: Context, cmd: Command, argv: list[bytes]) -> Any:
    """``call`` feeding the replication stream: the effects of every write that changed data (those of calls nested
    in this one, EXEC's or a script's, go out with it, as one transaction)."""
    replication = ctx.replication
    write = cmd.is_write
    engine = ctx.engine
    before = engine.change_mark() if write and engine is not None else 0
    replication.depth += 1
    try:
        reply = _call(ctx, cmd, argv)
    finally:
        replication.depth -= 1
    if write and type(reply) is not Block:
        # A memory engine counts nothing: every write that did not fail is taken as a change.
        changed = engine.change_mark() != before if before else type(reply) is not ErrorReply
        if changed:
            db = ctx.client.db
            for effect in effects(ctx, argv, reply):
                replication.pending.append((db, effect))
    if not replication.depth:
        replication.flush_call()
    return reply


def served(ctx: Context, argv: list[bytes], reply: Any) -> None:
    """A blocked call (``argv``) was served ``reply`` by a key: its effects, when replicas may attach."""
    replication = ctx.replication
    if replication.feeding and type(reply) is not ErrorReply:
        db = ctx.client.db
        replication.pending.extend((db, effect) for effect in effects(ctx, argv, reply))
        if not replication.depth:
            replication.flush_call()


def _call(ctx: Context, cmd: Command, argv: list[bytes]) -> Any:
    stats = ctx.stats
    ctx.client.last_command = cmd.name
    start = time.perf_counter_ns()
    try:
        reply = cmd.handler(ctx, argv)  # type: ignore[misc]
    except CommandError as error:
        message = error.message
        if error.counted:
            stats.count_call(cmd, time.perf_counter_ns() - start, failed=True)
            return ErrorReply(message)
    except (CorruptionError, StorageReadError) as error:
        message = errors.corrupt_data(str(error))
    except StorageError as error:  # a full disk, maxdisk, or writes disabled after an I/O failure
        message = errors.misconf(str(error))
    else:
        elapsed = time.perf_counter_ns() - start
        stats.count_call(cmd, elapsed, failed=False)
        if elapsed >= stats.watch_ns:
            _observe(ctx, cmd, argv, elapsed, blocked=type(reply) is Block)
        return reply
    elapsed = time.perf_counter_ns() - start
    stats.count_error(message)
    stats.count_call(cmd, elapsed, failed=True)
    if elapsed >= stats.watch_ns:
        _observe(ctx, cmd, argv, elapsed)
    return ErrorReply(message)


def _observe(ctx: Context, cmd: Command, argv: list[bytes], nanoseconds: int, *, blocked: bool = False) -> None:
    """A call the slow log, the latency monitor or a MONITOR client wants to see (Redis's call(): a blocked
    call is not slow-logged; admin commands and those flagged skip_monitor are not shown to monitors; a script's
    redis.call shows as coming from ``lua``, after the EVAL or FCALL that the script's handler showed first)."""
    observers = ctx.stats.observers
    client = ctx.client
    flags = cmd.flags
    if nanoseconds >= observers.slow_ns:
        logged = not blocked and "skip_slowlog" not in flags
        observers.slow_call(argv, nanoseconds, client.addr, client.name, fast="fast" in flags, log=logged)
    if observers.monitors and "admin" not in flags and "skip_monitor" not in flags:
        observers.feed(client.db, "lua" if client.script else client.addr, argv, client.id)


def blocked(ctx: Context, block: Block) -> None:
    """The call just counted blocked the client: as in Redis, its latency and slow-log entry wait until a key
    serves it (a timeout or CLIENT UNBLOCK records neither)."""
    stats = ctx.stats
    block.call_ns = stats.last_ns
    stats.track_latency_of(ctx.client.last_command, stats.last_ns, -1)


def unblocked(ctx: Context, argv: list[bytes], block: Block) -> None:
    """A key served the blocked call: its latency (the call's own time plus the time serving it took), its time in
    commandstats and its slow-log entry are recorded now, and the serving time as the latency monitor's
    command-unblocking event (Redis's updateStatsOnUnblock)."""
    serve_ns = block.serve_ns
    nanoseconds = block.call_ns + serve_ns
    stats = ctx.stats
    # commandstats: the call was counted when it blocked; its usec grows again by the call's own time plus the
    # serving time, as Redis 7.0 adds c->duration + reply_us on unblock (so the call's time counts twice there).
    stats.add_time_of(ctx.client.last_command, nanoseconds)
    stats.track_latency_of(ctx.client.last_command, nanoseconds, 1)
    observers = stats.observers
    if observers.latency_threshold:
        observers.add_latency("command-unblocking", serve_ns // 1_000_000)
    cmd = lookup(argv)
    if nanoseconds >= observers.slow_ns and not isinstance(cmd, bytes):
        client = ctx.client
        logged = "skip_slowlog" not in cmd.flags
        observers.slow_call(argv, nanoseconds, client.addr, client.name, fast="fast" in cmd.flags, log=logged)


def execute_run(ctx: Context, batch: list[list[bytes]], pos: int) -> list[Any]:
    """Replies to consecutive calls of one command on one key, from ``batch[pos]`` on, executed by the command's run
    handler as one storage operation: the LPUSHes of a pipelining producer become one push of all their values, its
    RPOPs one pop. Calls of a command with a spread handler on differing keys (a producer spreading over many
    queues) are executed by that handler in one loop. Empty when ``batch[pos]`` must run alone, as ``execute``.

    A run happens only where running the calls one by one gives the same replies and effects: every generic check
    of ``execute`` passes, no transaction is open, and no client is blocked on a key of the run (it would be served
    between two of the calls)."""
    argv = batch[pos]
    end = pos + 1
    if end == len(batch) or len(argv) < 2:
        return []
    word = argv[0]
    name = word.lower()
    cmd = COMMANDS.get(name)
    if cmd is None or cmd.run is None:
        return []
    fits = cmd.run.fits
    key = argv[1]
    if not fits(argv):
        return []
    limit = min(len(batch), pos + MAX_RUN)
    # A pipeline repeats its command word as it was spelled: comparing that first spares a lower() per call.
    while end < limit:
        following = batch[end]
        if (
            len(following) < 2
            or following[1] != key
            or (following[0] != word and following[0].lower() != name)
            or not fits(following)
        ):
            break
        end += 1
    spread = cmd.run.spread if end - pos < 2 else None
    if spread is not None:  # the next call names another key: take the calls of this command whatever their keys
        while end < limit:
            following = batch[end]
            if len(following) < 2 or (following[0] != word and following[0].lower() != name) or not fits(following):
                break
            end += 1
    if end - pos < 2:
        return []
    client = ctx.client
    waiters = ctx.blocking.waiters
    if waiters:  # a client blocked on a key is served right after the call that feeds it: the run stops before it
        end = next((i for i in range(pos, end) if (client.db, batch[i][1]) in waiters), end)
    if end - pos < 2 or client.multi is not None or not client.user.unrestricted or _refusal(ctx, cmd, argv):
        return []
    cluster = ctx.cluster
    if cluster is not None:  # the run stops before the first call whose key this node does not serve
        if spread is None:  # one key for the whole run
            if not cluster.local[key_slot(key)]:
                return []
        else:
            local = cluster.local
            end = next((i for i in range(pos, end) if not local[key_slot(batch[i][1])]), end)
        if end - pos < 2:
            return []
    stats = ctx.stats
    if not stats.watch_ns:  # a MONITOR client is attached: it is shown each call, at the time it runs
        return []
    replication = ctx.replication
    before = ctx.engine.change_mark() if replication.feeding else 0
    start = time.perf_counter_ns()
    replies = spread(ctx, batch[pos:end]) if spread is not None else cmd.run.handler(ctx, key, batch[pos:end])
    if replies and replication.feeding and cmd.is_write:
        _propagate_run(ctx, batch, pos, replies, before)
    if replies:
        client.last_command = cmd.name
        failed = [reply for reply in replies if type(reply) is ErrorReply]
        for error in failed:
            stats.count_error(error.message)
        elapsed = time.perf_counter_ns() - start
        stats.count_calls(cmd, len(replies), elapsed, failed=len(failed))
        share = elapsed // len(replies)
        if share >= stats.watch_ns:  # each call of the run counts as taking its share of the time
            for index in range(len(replies)):
                _observe(ctx, cmd, batch[pos + index], share)
    return replies


def _propagate_run(ctx: Context, batch: list[list[bytes]], pos: int, replies: list[Any], before: int) -> None:
    """The effects of a run's calls, when the run changed data: each call's that did not fail or find nothing."""
    if before and ctx.engine.change_mark() == before:
        return
    calls = [
        effects(ctx, batch[pos + index], reply)
        for index, reply in enumerate(replies)
        if reply is not None and type(reply) is not ErrorReply
    ]
    ctx.replication.feed_calls(ctx.client.db, calls)


def _reject(ctx: Context, argv: list[bytes], message: bytes, cmd: Command | None) -> ErrorReply:
    """A command refused before its handler: it poisons an open transaction, and a refused EXEC discards it.
    INFO counts it as a rejected call of ``cmd`` (not a call), as Redis does."""
    client = ctx.client
    if client.multi is not None:
        client.multi_error = True
    if argv[0].lower() == b"exec":
        observers = ctx.stats.observers
        if cmd is not None and observers.monitors:  # Redis shows the refused EXEC: the transaction is over
            observers.feed(client.db, client.addr, argv, client.id)
        if client.multi is not None:
            client.multi = None
            client.multi_error = False
            ctx.keyspace.unwatch_all(client)
        message = errors.execabort_because(message)
    return ctx.stats.rejected(message, cmd)
