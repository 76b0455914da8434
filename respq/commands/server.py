"""Server commands: INFO (rendered by respq.info), CONFIG, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME, SHUTDOWN, DEBUG."""

from __future__ import annotations

import time
from typing import Any

from respq import errors
from respq.commands.args import parse_int32, strtod_prefix
from respq.commands.cluster import SWAPDB_IN_CLUSTER
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.config import ConfigSetError, config_get, config_rewrite, config_set
from respq.errors import CommandError
from respq.info import render_info, selected_sections
from respq.replies import OK, Verbatim

G = "server"

DEBUG_NOT_ALLOWED = (
    b'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a '
    b"local connection, otherwise you need to set this option in the configuration file, and then restart the server."
)
INVALID_FIRST_DB = b"ERR invalid first DB index"
INVALID_SECOND_DB = b"ERR invalid second DB index"


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) > 2:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2 and argv[1].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError(errors.SYNTAX)


@command(
    "dbsize",
    1,
    "readonly fast",
    group=G,
    summary="Reports how many keys the selected database holds.",
    since="1.0.0",
    acl=("@keyspace", "@read", "@fast"),
)
def dbsize(ctx: Context, argv: list[bytes]) -> Any:
    return ctx.keyspace.dbsize(ctx.client.db)


@command(
    "flushdb",
    -1,
    "write",
    group=G,
    options=("ASYNC", "SYNC"),
    summary="Deletes every key of the selected database.",
    since="1.0.0",
    complexity="O(N) in the keys of the database",
    acl=("@keyspace", "@write", "@slow", "@dangerous"),
)
def flushdb(ctx: Context, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    ctx.keyspace.flushdb(ctx.client.db)
    return OK


@command(
    "flushall",
    -1,
    "write",
    group=G,
    options=("ASYNC", "SYNC"),
    summary="Deletes every key of every database.",
    since="1.0.0",
    complexity="O(N) in the keys of all databases",
    acl=("@keyspace", "@write", "@slow", "@dangerous"),
)
def flushall(ctx: Context, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    ctx.keyspace.flushall()
    return OK


@command(
    "swapdb",
    3,
    "write fast",
    group=G,
    summary="Exchanges the contents of two databases, waking clients blocked on their keys.",
    since="4.0.0",
    complexity="O(N) in the keys of both databases",
    acl=("@keyspace", "@write", "@fast", "@dangerous"),
)
def swapdb(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.cluster is not None:
        raise CommandError(SWAPDB_IN_CLUSTER)
    first = parse_int32(argv[1], INVALID_FIRST_DB)
    second = parse_int32(argv[2], INVALID_SECOND_DB)
    databases = ctx.config.databases
    if not (0 <= first < databases and 0 <= second < databases):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    if first != second:
        ctx.keyspace.swapdb(first, second)
    return OK


@command("time", 1, "loading stale fast", group=G, summary="Reports the server's clock.", since="2.6.0", acl=("@fast",))
def time_(ctx: Context, argv: list[bytes]) -> Any:
    now = time.time_ns() // 1000
    return [str(now // 1_000_000).encode(), str(now % 1_000_000).encode()]


@command(
    "shutdown",
    -1,
    "admin noscript loading stale no_multi allow_busy",
    group=G,
    options=("NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"),
    summary="Makes every acknowledged write durable on disk, then stops the server.",
    since="1.0.0",
)
def shutdown(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    flags = set()
    for arg in argv[1:]:
        option = arg.upper()
        if option not in (b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"):
            raise CommandError(errors.SYNTAX)
        flags.add(option)
    if {b"NOSAVE", b"SAVE"} <= flags or (b"ABORT" in flags and len(flags) > 1):
        raise CommandError(errors.SYNTAX)
    if b"ABORT" in flags:
        raise CommandError(b"ERR No shutdown in progress.")
    busy = ctx.server.busy_error
    if busy is not None and b"NOSAVE" not in flags:  # during a script only SHUTDOWN NOSAVE may end the server
        raise CommandError(busy)
    # Every write is already in the journal; SAVE and NOSAVE both mean "flush, sync and stop".
    ctx.server.request_shutdown()
    client.closing = True
    client.reply_mode = b"off"
    return None


# ---- DEBUG --------------------------------------------------------------------------------------------------------
@command(
    "debug",
    -2,
    "admin noscript loading stale",
    group=G,
    options=("SLEEP",),
    summary="Runs a debugging action; respq offers only SLEEP.",
    since="1.0.0",
)
def debug(ctx: Context, argv: list[bytes]) -> Any:
    setting = ctx.config.enable_debug_command
    if setting == "no" or (setting == "local" and not ctx.client.is_local):
        raise CommandError(DEBUG_NOT_ALLOWED)
    sub = argv[1].upper()
    if sub == b"SLEEP" and len(argv) == 3:
        seconds = strtod_prefix(argv[2])
        time.sleep(max(0.0, seconds))  # blocks the whole server on purpose, as in Redis
        return OK
    raise CommandError(b"ERR unknown subcommand or wrong number of arguments for '" + argv[1] + b"'. Try DEBUG HELP.")


# ---- CONFIG -------------------------------------------------------------------------------------------------------
container("config", group=G, summary="Groups the subcommands that read and change server settings.", since="2.0.0")


@command(
    "config|get",
    -3,
    "admin noscript loading stale",
    group=G,
    summary="Replies with the current values of the settings matching the given patterns.",
    since="2.0.0",
    complexity="O(N*M): N known settings, M patterns given",
)
def config_get_(ctx: Context, argv: list[bytes]) -> Any:
    return config_get(ctx.config, argv[2:])


@command(
    "config|set",
    -4,
    "admin noscript loading stale",
    group=G,
    summary="Changes one or more settings at run time, all of them or none.",
    since="2.0.0",
    complexity="O(N) in the settings given",
)
def config_set_(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) % 2 != 0:
        raise CommandError(errors.SYNTAX)
    pairs = [(argv[i], argv[i + 1]) for i in range(2, len(argv), 2)]
    previous = ctx.config.values  # config_set replaces the dict: this one keeps the values before
    try:
        changed = config_set(ctx.config, pairs, client_is_local=ctx.client.is_local)
        ctx.server.apply_config(changed)
    except ConfigSetError as error:
        ctx.config.values = previous
        raise CommandError(error.message) from None
    return OK


@command(
    "config|resetstat",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Zeroes the counters that INFO reports.",
    since="2.0.0",
)
def config_resetstat(ctx: Context, argv: list[bytes]) -> Any:
    ctx.stats.reset()
    return OK


@command(
    "config|rewrite",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Writes the current settings back to the configuration file.",
    since="2.8.0",
)
def config_rewrite_(ctx: Context, argv: list[bytes]) -> Any:
    try:
        config_rewrite(ctx.config, [line.decode("latin-1") for line in ctx.acl.describe_all()])
    except ConfigSetError as error:
        raise CommandError(error.message) from None
    return OK


@command(
    "config|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the CONFIG subcommands with a line or two on each.",
    since="5.0.0",
)
def config_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"CONFIG",
        [
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )


# ---- INFO ---------------------------------------------------------------------------------------------------------
@command(
    "info",
    -1,
    "loading stale",
    group=G,
    summary="Reports server status and counters, section by section.",
    since="1.0.0",
    options=(
        "SERVER",
        "CLIENTS",
        "MEMORY",
        "PERSISTENCE",
        "STATS",
        "REPLICATION",
        "CPU",
        "COMMANDSTATS",
        "ERRORSTATS",
        "KEYSPACE",
        "ALL",
        "DEFAULT",
        "EVERYTHING",
    ),
    acl=("@slow", "@dangerous"),
)
def info(ctx: Context, argv: list[bytes]) -> Any:
    requested = [arg.decode("latin-1").lower() for arg in argv[1:]]
    return Verbatim(render_info(ctx.server, selected_sections(requested)).encode())
