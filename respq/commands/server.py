"""Server commands: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME, SHUTDOWN, DEBUG."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

from respq import REDIS_COMPAT_VERSION, __version__, errors, speedups
from respq.commands.args import parse_int32, strtod_prefix
from respq.commands.connection import help_lines
from respq.commands.table import command, container
from respq.config import ConfigSetError, config_get, config_rewrite, config_set
from respq.errors import CommandError
from respq.replies import OK, Verbatim

if TYPE_CHECKING:
    from respq.client import Client
    from respq.server import Server

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
def dbsize(client: Client, argv: list[bytes]) -> Any:
    return client.server.keyspace.dbsize(client.db)


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
def flushdb(client: Client, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    client.server.keyspace.flushdb(client.db)
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
def flushall(client: Client, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    client.server.keyspace.flushall()
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
def swapdb(client: Client, argv: list[bytes]) -> Any:
    first = parse_int32(argv[1], INVALID_FIRST_DB)
    second = parse_int32(argv[2], INVALID_SECOND_DB)
    databases = client.server.config.databases
    if not (0 <= first < databases and 0 <= second < databases):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    if first != second:
        client.server.keyspace.swapdb(first, second)
    return OK


@command("time", 1, "loading stale fast", group=G, summary="Reports the server's clock.", since="2.6.0", acl=("@fast",))
def time_(client: Client, argv: list[bytes]) -> Any:
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
def shutdown(client: Client, argv: list[bytes]) -> Any:
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
    # Every write is already in the journal; SAVE and NOSAVE both mean "flush, sync and stop".
    client.server.request_shutdown()
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
def debug(client: Client, argv: list[bytes]) -> Any:
    setting = client.server.config.enable_debug_command
    if setting == "no" or (setting == "local" and not client.is_local):
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
def config_get_(client: Client, argv: list[bytes]) -> Any:
    return config_get(client.server.config, argv[2:])


@command(
    "config|set",
    -4,
    "admin noscript loading stale",
    group=G,
    summary="Changes one or more settings at run time, all of them or none.",
    since="2.0.0",
    complexity="O(N) in the settings given",
)
def config_set_(client: Client, argv: list[bytes]) -> Any:
    if len(argv) % 2 != 0:
        raise CommandError(errors.SYNTAX)
    pairs = [(argv[i], argv[i + 1]) for i in range(2, len(argv), 2)]
    server = client.server
    try:
        changed = config_set(server.config, pairs, client_is_local=client.is_local)
    except ConfigSetError as error:
        raise CommandError(error.message) from None
    server.apply_config(changed)
    return OK


@command(
    "config|resetstat",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Zeroes the counters that INFO reports.",
    since="2.0.0",
)
def config_resetstat(client: Client, argv: list[bytes]) -> Any:
    client.server.stats.reset()
    return OK


@command(
    "config|rewrite",
    2,
    "admin noscript loading stale",
    group=G,
    summary="Writes the current settings back to the configuration file.",
    since="2.8.0",
)
def config_rewrite_(client: Client, argv: list[bytes]) -> Any:
    try:
        config_rewrite(client.server.config)
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
def config_help(client: Client, argv: list[bytes]) -> Any:
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
DEFAULT_SECTIONS = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
)
ALL_SECTIONS = (*DEFAULT_SECTIONS[:-3], "commandstats", "errorstats", "latencystats", "cluster", "keyspace")


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
def info(client: Client, argv: list[bytes]) -> Any:
    requested = [arg.decode("latin-1").lower() for arg in argv[1:]] or ["default"]
    sections: list[str] = []
    for name in requested:
        if name in ("all", "everything"):
            sections += ALL_SECTIONS
        elif name == "default":
            sections += DEFAULT_SECTIONS
        else:
            sections.append(name)
    text = render_info(client.server, list(dict.fromkeys(sections)))
    return Verbatim(text.encode())


def render_info(server: Server, sections: list[str]) -> str:
    parts = []
    for name in sections:
        renderer = _SECTIONS.get(name)
        if renderer is None:
            continue
        title = "Keyspace" if name == "keyspace" else name.capitalize()
        title = {
            "cpu": "CPU",
            "commandstats": "Commandstats",
            "errorstats": "Errorstats",
            "latencystats": "Latencystats",
        }.get(name, title)
        lines = renderer(server)
        parts.append("# " + title + "\r\n" + "".join(f"{key}:{value}\r\n" for key, value in lines))
    return "\r\n".join(parts)


def _server_section(server: Server) -> list[tuple[str, object]]:
    now = time.time()
    uptime = int(time.monotonic() - server.started_monotonic)
    uname = platform.uname()
    return [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("atomicvar_api", "c11-builtin"),
        ("gcc_version", "0.0.0"),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", server.run_id),
        ("tcp_port", server.port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", 10),
        ("configured_hz", 10),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", os.path.abspath(sys.argv[0])),
        ("config_file", server.config.config_file or ""),
        ("io_threads_active", 0),
        ("respq_version", __version__),
        ("respq_request_parser", speedups.REQUEST_PARSER),
    ]


def _clients_section(server: Server) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(server.clients)),
        ("cluster_connections", 0),
        ("maxclients", server.config.maxclients),
        ("client_recent_max_input_buffer", max(server.stats.peak_input)),
        ("client_recent_max_output_buffer", max(server.stats.peak_output)),
        ("blocked_clients", len(server.blocking)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", len(server.blocking)),
    ]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"


def _memory_section(server: Server) -> list[tuple[str, object]]:
    rss = _rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return [
        ("used_memory", rss),
        ("used_memory_human", _human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human(peak)),
        ("total_system_memory", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        ("maxmemory", 0),
        ("maxmemory_human", "0B"),
        ("maxmemory_policy", "noeviction"),
        ("mem_allocator", "libc"),
    ]


def _persistence_section(server: Server) -> list[tuple[str, object]]:
    lines: list[tuple[str, object]] = [
        ("loading", int(server.loading)),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(server.started)),
        ("rdb_last_bgsave_status", "ok"),
        ("aof_enabled", 1),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_write_status", "ok" if server.engine is None or not server.engine.write_error else "err"),
    ]
    if server.engine is not None:
        lines += [("respq_" + key, value) for key, value in server.engine.stats().items()]
        lines.append(("respq_syncs_per_sec", server.stats.syncs_rate.per_second()))
    scrub = server.scrub
    if scrub is not None:
        fault = scrub.last_fault
        lines += [
            ("respq_scrub_status", scrub.status),
            ("respq_scrub_bytes", scrub.bytes_verified),
            ("respq_scrub_errors", scrub.errors),
            ("respq_last_scrub_error", f"{fault.path}@{fault.offset}" if fault else ""),
        ]
    return lines


def _stats_section(server: Server) -> list[tuple[str, object]]:
    stats = server.stats
    return [
        ("total_connections_received", stats.total_connections),
        ("total_commands_processed", stats.total_commands),
        ("instantaneous_ops_per_sec", stats.ops_rate.per_second()),
        ("total_net_input_bytes", stats.net_input_bytes),
        ("total_net_output_bytes", stats.net_output_bytes),
        ("rejected_connections", stats.rejected_connections),
        ("expired_keys", stats.expired_keys),
        ("evicted_keys", 0),
        ("evicted_clients", stats.evicted_clients),
        ("keyspace_hits", stats.keyspace_hits),
        ("keyspace_misses", stats.keyspace_misses),
        ("pubsub_channels", len(server.pubsub.channels)),
        ("pubsub_patterns", len(server.pubsub.patterns)),
        ("total_error_replies", stats.total_error_replies),
    ]


def _replication_section(server: Server) -> list[tuple[str, object]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", server.run_id),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", 1048576),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu_section(server: Server) -> list[tuple[str, object]]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{usage.ru_stime:.6f}"),
        ("used_cpu_user", f"{usage.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
    ]


def _commandstats_section(server: Server) -> list[tuple[str, object]]:
    lines = []
    for name, stat in server.stats.commands.items():
        per_call = stat.usec / stat.calls if stat.calls else 0.0
        lines.append(
            (
                f"cmdstat_{name}",
                f"calls={stat.calls},usec={stat.usec},usec_per_call={per_call:.2f},"
                f"rejected_calls={stat.rejected_calls},failed_calls={stat.failed_calls}",
            )
        )
    return lines


def _errorstats_section(server: Server) -> list[tuple[str, object]]:
    return [(f"errorstat_{code.decode('latin-1')}", f"count={count}") for code, count in server.stats.errors.items()]


def _keyspace_section(server: Server) -> list[tuple[str, object]]:
    if server.keyspace is None:
        return []
    lines: list[tuple[str, object]] = []
    for db in range(server.config.databases):
        keys = server.keyspace.dbsize(db)
        if keys:
            expires = len(server.keyspace.volatile[db])
            lines.append((f"db{db}", f"keys={keys},expires={expires},avg_ttl=0"))
    return lines


_SECTIONS = {
    "server": _server_section,
    "clients": _clients_section,
    "memory": _memory_section,
    "persistence": _persistence_section,
    "stats": _stats_section,
    "replication": _replication_section,
    "cpu": _cpu_section,
    "modules": lambda server: [],
    "commandstats": _commandstats_section,
    "errorstats": _errorstats_section,
    "latencystats": lambda server: [],
    "cluster": lambda server: [("cluster_enabled", 0)],
    "keyspace": _keyspace_section,
}
